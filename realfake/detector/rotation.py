"""Random rotation (`train.augment.rotate_p`, `rotate_degrees`), batched: SAFE's `RandomRotation(180)`.

SAFE (Li et al., KDD 2025) rotates every training image by an angle drawn from [-180, 180] degrees: generator
artefacts (up-sampling grids, spectral peaks) are tied to the pixel grid, not to the face's orientation, so a
rotated image keeps them only where the resampling keeps them. That pushes the detector off "which way faces
point in this data set" and the low-frequency layout toward local texture. As torchvision's RandomRotation:
rotation about the centre, the same size out, corners that come from outside the image filled with 0 (black);
bilinear here (torchvision's default is nearest), one `grid_sample` call for the whole batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each float image of (N, C, H, W) by its angle in degrees (counter-clockwise), black corners."""
    n, _, h, w = x.shape
    radians = degrees.to(x.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    # affine_grid works in [-1, 1] coordinates per axis: scale by the aspect so non-square images rotate rigidly
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_rotation(x: torch.Tensor, max_degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Rotate each float image by an angle drawn from U[-max_degrees, max_degrees]."""
    degrees = (2.0 * torch.rand(x.shape[0], generator=gen) - 1.0) * max_degrees
    return rotate(x, degrees)
