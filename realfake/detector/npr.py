"""Neighbouring Pixel Relationships (NPR; Tan et al., CVPR 2024): the input residual x - up(down(x)), factor 2.

"Rethinking the Up-Sampling Operations in CNN-based Generative Network for Generalizable Deepfake Detection":
generators up-sample feature maps, which ties the values of neighbouring pixels inside each 2x2 cell; the
residual of an image against its own nearest-neighbour down-and-up copy keeps exactly those local relations
and drops the image content a detector would otherwise fit. As in the paper's code, down is nearest at 1/2
(the top-left pixel of each 2x2 cell) and up is nearest at 2, and the residual is scaled by 2/3.

Caveats: the residual is exactly zero for an image that was nearest-upsampled by 2 (every 2x2 cell is flat),
and any resampling or JPEG after generation rewrites these relations: a downscale by a non-integer factor
(the mirror's 384 px resize, the 64 px packing) or a JPEG 8x8 block quantisation changes what the network
sees. Hence chain-matching augmentation (train.augment.chain) for both classes, and the robustness table.
The height and width must be even (packed views are).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_SCALE = 2.0 / 3.0  # the paper's code; batch norm after the first conv makes it an initial scale only


def neighbour_residual(x: torch.Tensor) -> torch.Tensor:
    """x - up2(down2(x)), both nearest: each pixel minus the top-left pixel of its 2x2 cell."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"the NPR input needs an even height and width, got {h}x{w}")
    corner = x[..., ::2, ::2]  # F.interpolate(x, scale_factor=0.5, mode="nearest") keeps exactly these pixels
    return x - F.interpolate(corner, scale_factor=2.0, mode="nearest")


class NeighbourResidual(nn.Module):
    """The NPR input layer (no parameters): RESIDUAL_SCALE * (x - up2(down2(x)))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return neighbour_residual(x) * RESIDUAL_SCALE
