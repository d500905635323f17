"""Self-blended pseudo-fakes (`train.sbi`; Shiohara & Yamasaki, CVPR 2022, "Detecting Deepfakes with
Self-Blended Images"; repo mapooon/SelfBlendedImages).

A real face blended with a slightly transformed copy of itself is a fake with no generator in it: only a blending
boundary and a small mismatch of colour, scale and position inside it, which is what face swaps and composites
leave. Training on such pseudo-fakes teaches those traces from real data alone, the cheapest route to the face
swaps and Photoshop edits the detector otherwise scores at chance.

Here, batched on the training images (the aligned and context views centre the face, and the packed arrays
carry no landmarks): the copy gets a colour jitter and a small zoom and shift (SBI's source-target
augmentation); the mask is an ellipse around the image centre with a random size, offset and a low-frequency
wobble of its outline (standing in for SBI's deformed landmark hull), softened towards its edge, times a blend
ratio drawn from `blend` (SBI: 0.25-1). The blend is mask * copy + (1 - mask) * image, so the pseudo-fake equals
its source exactly wherever the mask is 0, outside the ellipse.

Each real image of a training batch is replaced by its self-blend with probability `p` and labelled fake (kind
`sbi`); validation and test never see one, and the train report counts them (metrics/train.json `sbi`).
With `p: 0` (default) nothing is drawn and training is as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from realfake.core.errors import UserError
from realfake.detector.augment import color_jitter, to_uint8

KIND = "sbi"  # the pseudo-fakes' kind in the train report


@dataclass
class SbiConfig:
    """Self-blended pseudo-fakes (params.yaml `train.sbi`)."""

    p: float = 0.0  # each real training image becomes a pseudo-fake with this probability; 0: off
    blend: list[float] = field(default_factory=lambda: [0.25, 1.0])  # blend ratio inside the mask
    mask_scale: list[float] = field(default_factory=lambda: [0.45, 0.75])  # ellipse half-axes / half the side
    shift: float = 0.03  # the copy's largest shift, as a fraction of the side
    zoom: list[float] = field(default_factory=lambda: [0.95, 1.05])  # the copy's scale
    color: float = 0.1  # the copy's brightness, contrast and saturation factors from [1 - color, 1 + color]

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise UserError(f"train.sbi.p must be a probability in [0, 1], got {self.p!r}")
        for name, high in (("blend", 1.0), ("mask_scale", 1.0), ("zoom", 2.0)):
            bounds = getattr(self, name)
            if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1] <= high:
                raise UserError(f"train.sbi.{name} must be [low, high] with 0 < low <= high <= {high}, got {bounds!r}")
        if not 0.0 <= self.shift <= 0.5 or not 0.0 <= self.color < 1.0:
            raise UserError(f"train.sbi.shift must be in [0, 0.5] and train.sbi.color in [0, 1), "
                            f"got {self.shift!r}, {self.color!r}")

    @property
    def enabled(self) -> bool:
        """True when training draws pseudo-fakes."""
        return self.p > 0


def _uniform(n: int, bounds, gen: torch.Generator) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=gen)


def blend_mask(n: int, h: int, w: int, cfg: SbiConfig, gen: torch.Generator) -> torch.Tensor:
    """(N, 1, H, W) soft masks in [0, 1]: an ellipse with a wobbling outline, 0 outside it, times a blend ratio."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    view = (n, 1, 1)
    cx, cy = (_uniform(n, (-0.08, 0.08), gen).view(view) for _ in range(2))
    ax, ay = (_uniform(n, cfg.mask_scale, gen).view(view) for _ in range(2))
    wobble, phase = _uniform(n, (0.0, 0.15), gen).view(view), _uniform(n, (0.0, 2 * math.pi), gen).view(view)
    soft = _uniform(n, (0.1, 0.5), gen).view(view)  # how far in (share of the radius) the mask reaches 1
    blend = _uniform(n, cfg.blend, gen).view(n, 1, 1, 1)
    u, v = (xx - cx) / ax, (yy - cy) / ay
    radius = torch.sqrt(u * u + v * v) / (1 + wobble * torch.sin(3 * torch.atan2(v, u) + phase))
    mask = ((1 - radius) / soft).clamp(0, 1)
    return mask.unsqueeze(1) * blend


def transformed_copy(x: torch.Tensor, cfg: SbiConfig, gen: torch.Generator) -> torch.Tensor:
    """The copy to blend in: colour jitter, then a small zoom and shift (float images, border pixels repeated)."""
    n = x.shape[0]
    copy = color_jitter(x, cfg.color, cfg.color, cfg.color, gen) if cfg.color else x
    scale = 1.0 / _uniform(n, cfg.zoom, gen)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = scale, scale
    theta[:, 0, 2], theta[:, 1, 2] = (_uniform(n, (-2 * cfg.shift, 2 * cfg.shift), gen) for _ in range(2))
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(copy, grid, mode="bilinear", padding_mode="border", align_corners=False)


def self_blend(x: torch.Tensor, cfg: SbiConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-blended images of a float (N, 3, H, W) batch in [0, 1], and their masks (N, 1, H, W)."""
    mask = blend_mask(x.shape[0], x.shape[2], x.shape[3], cfg, gen)
    copy = transformed_copy(x, cfg, gen)
    return torch.where(mask > 0, mask * copy + (1 - mask) * x, x), mask


def add_pseudo_fakes(images: torch.Tensor, targets: torch.Tensor, cfg: SbiConfig,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Replace each real image (target 0) of a uint8 batch with its self-blend with probability `p`, labelled 1.

    Returns the images, the targets and how many pseudo-fakes were made. `p: 0` draws nothing.
    """
    if not cfg.enabled:
        return images, targets, 0
    reals = torch.nonzero(targets == 0).flatten()
    chosen = reals[torch.rand(len(reals), generator=gen) < cfg.p]
    if not len(chosen):
        return images, targets, 0
    images, targets = images.clone(), targets.clone()
    blended, _ = self_blend(images[chosen].float().div(255.0), cfg, gen)
    images[chosen] = to_uint8(blended)
    targets[chosen] = 1.0
    return images, targets, len(chosen)
