"""Batched, CPU-cheap training augmentation on (N, 3, H, W) image tensors; label-blind (it never sees a label).

Order (default): random resized crop, horizontal flip, colour jitter, random grayscale, Gaussian blur, JPEG.
Blur then JPEG is the CNNDetection recipe (Wang et al. 2020, blur sigma in [0, 3], JPEG quality in
[30, 100]): it is what makes a detector survive recompression and resizing of the images it is shown.
Random grayscale is there because some real photos are grayscale and no fake is: without it the model
learns "grey means real".

Order with `chain: true` (chain matching, issue 15): random resampling (resample.py), JPEG, then crop, flip,
jitter, grayscale, blur. Resampling and JPEG come first because that is where they happened to the images:
the mirror downscaled large originals to 384 px and kept small ones, and files were JPEG-saved, all before
any face was cut. Drawn for real and fake alike, they leave "was downscaled" or "which JPEG quality" no use
as a label cue. The crop (and the train.patch crop, after this) comes later so it cuts from the resampled
image, as a face crop of a resized file would be; flip, colour and blur are camera and viewer effects.

SAFE's augmentations (Li et al., KDD 2025), off by default: random rotation (rotation.py, after the flip) and
patch masking (patch_mask.py, the very last step, as SAFE masks the finished tensor); SAFE's ColorJitter(0.5,
0.5, 0.5) is `jitter_p: 1` with brightness, contrast and saturation 0.5, and its crop-not-resize is
`crop_p: 0` with `train.patch: {size: <crop>, count: 1, test: center}` (patches.py). docs/generalize.md.

Each step is applied to a random subset of the batch (its own probability); a probability of 0 leaves
the images untouched, bit for bit. Randomness comes from a `torch.Generator`, so runs are repeatable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from realfake.core.errors import UserError
from realfake.core.imageio import gaussian_blur as blur_image
from realfake.core.imageio import jpeg_roundtrip
from realfake.detector.patch_mask import random_mask
from realfake.detector.resample import FILTERS, random_resample
from realfake.detector.rotation import random_rotation

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as PIL's convert("L")


@dataclass
class AugmentConfig:
    """Augmentation probabilities and ranges (params.yaml `train.augment`)."""

    hflip_p: float = 0.5
    crop_p: float = 0.5
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])  # area fraction kept
    crop_ratio: list[float] = field(default_factory=lambda: [0.9, 1.1])  # aspect ratio of the crop
    jitter_p: float = 0.5
    brightness: float = 0.2  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2
    grayscale_p: float = 0.1
    blur_p: float = 0.1
    blur_sigma: list[float] = field(default_factory=lambda: [0.0, 3.0])
    jpeg_p: float = 0.1
    jpeg_quality: list[int] = field(default_factory=lambda: [30, 100])
    # chain matching: resample (resample_*) then JPEG (jpeg_*) before the crop; false: no resampling, JPEG last
    chain: bool = False
    resample_p: float = 0.5  # used only with chain: true
    resample_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])  # linear downscale factor
    resample_filters: list[str] = field(default_factory=lambda: ["nearest", "bilinear", "bicubic", "area", "lanczos"])
    # SAFE (docs/generalize.md): rotation by U[-rotate_degrees, rotate_degrees] after the flip; patch masking last
    rotate_p: float = 0.0
    rotate_degrees: float = 180.0
    mask_p: float = 0.0
    mask_ratio: list[float] = field(default_factory=lambda: [0.0, 0.75])  # share of the image zeroed
    mask_patch: int = 16  # side of the zeroed grid cells in px

    def __post_init__(self) -> None:
        for name in ("hflip_p", "crop_p", "jitter_p", "grayscale_p", "blur_p", "jpeg_p", "resample_p", "rotate_p",
                     "mask_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"train.augment.{name} must be a probability in [0, 1], got {value!r}")
        for name in ("crop_scale", "crop_ratio", "blur_sigma", "jpeg_quality", "resample_scale", "mask_ratio"):
            bounds = getattr(self, name)
            if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1]:
                raise UserError(f"train.augment.{name} must be [low, high] with 0 <= low <= high, got {bounds!r}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise UserError("train.augment.jpeg_quality must lie within [1, 100]")
        if self.crop_scale[1] > 1.0:
            raise UserError("train.augment.crop_scale must not exceed 1.0")
        if not 0 < self.resample_scale[0] <= self.resample_scale[1] <= 1.0:
            raise UserError(f"train.augment.resample_scale must lie within (0, 1], got {self.resample_scale!r}")
        if self.mask_ratio[1] > 1.0:
            raise UserError(f"train.augment.mask_ratio must lie within [0, 1], got {self.mask_ratio!r}")
        if self.mask_patch < 1:
            raise UserError(f"train.augment.mask_patch must be >= 1 px, got {self.mask_patch!r}")
        if not 0.0 <= self.rotate_degrees <= 180.0:
            raise UserError(f"train.augment.rotate_degrees must be in [0, 180], got {self.rotate_degrees!r}")
        unknown = [f for f in self.resample_filters if f not in FILTERS]
        if unknown or not self.resample_filters:
            raise UserError(f"train.augment.resample_filters must be a non-empty list of {list(FILTERS)}, "
                            f"got {self.resample_filters!r}")


def _pick(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """Indices of the images (out of n) that get a step applied with probability p."""
    if p <= 0.0:
        return torch.empty(0, dtype=torch.long)
    return torch.nonzero(torch.rand(n, generator=gen) < p).flatten()


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """n draws from U[low, high)."""
    return low + (high - low) * torch.rand(n, generator=gen)


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma of float RGB images, repeated over the 3 channels."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand_as(x)  # 80x faster than a 1x1 conv on CPU


def random_resized_crop(x: torch.Tensor, scale, ratio, gen: torch.Generator) -> torch.Tensor:
    """Crop a random box (area fraction in `scale`, aspect in `ratio`) per image and resize it back."""
    n = x.shape[0]
    area = _uniform(n, *scale, gen)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), gen)
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # width and height as fractions of the image
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1.0 - w) * (2.0 * torch.rand(n, generator=gen) - 1.0)  # centre in [-1, 1] coordinates
    cy = (1.0 - h) * (2.0 * torch.rand(n, generator=gen) - 1.0)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float, gen) -> torch.Tensor:
    """Per-image random brightness, contrast and saturation factors (float images in [0, 1]).

    Brightness and contrast are folded into one affine map per image and clipped once at the end,
    which is several times cheaper than torchvision's clip-after-every-step ColorJitter.
    """
    n = x.shape[0]
    b = _uniform(n, 1 - brightness, 1 + brightness, gen).view(n, 1, 1, 1)
    c = _uniform(n, 1 - contrast, 1 + contrast, gen).view(n, 1, 1, 1)
    s = _uniform(n, 1 - saturation, 1 + saturation, gen).view(n, 1, 1, 1)
    luma_mean = (x.mean((2, 3)) @ torch.tensor(GRAY_WEIGHTS, dtype=x.dtype)).view(n, 1, 1, 1)
    x = x * (b * c) + (1 - c) * b * luma_mean  # contrast blends the brightened image with its mean luma
    return torch.lerp(to_grayscale(x), x, s).clamp_(0, 1)


def _hwc(image: torch.Tensor) -> np.ndarray:
    """A CHW tensor as a contiguous HWC numpy array (what OpenCV expects)."""
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


def gaussian_blur(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of float images with one sigma per image (sigma 0 leaves an image as it is)."""
    out = x.clone()
    for i, sigma in enumerate(sigmas.tolist()):
        if sigma > 1e-3:
            out[i] = torch.from_numpy(blur_image(_hwc(x[i]), sigma)).permute(2, 0, 1)
    return out


def jpeg_batch(x: torch.Tensor, qualities: torch.Tensor) -> torch.Tensor:
    """Really encode and decode each uint8 RGB image as JPEG at its own quality (realfake.core.imageio's encoder)."""
    out = x.clone()
    for i, quality in enumerate(qualities.tolist()):
        out[i] = torch.from_numpy(jpeg_roundtrip(_hwc(x[i]), quality)).permute(2, 0, 1)
    return out


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Augment a batch (uint8 0-255 or float 0-1, shape (N, 3, H, W)); returns the same dtype."""
    is_uint8 = x.dtype == torch.uint8
    out = x.float().div(255.0) if is_uint8 else x.clone()
    n = out.shape[0]
    if cfg.chain:  # the processing chain first, in the order it happened to the files
        idx = _pick(n, cfg.resample_p, gen)
        if len(idx):
            resampled = random_resample(to_uint8(out[idx]), cfg.resample_scale, cfg.resample_filters, gen)
            out[idx] = resampled.float().div(255.0)
        out = random_jpeg(out, cfg, gen)
    idx = _pick(n, cfg.crop_p, gen)
    if len(idx):
        out[idx] = random_resized_crop(out[idx], cfg.crop_scale, cfg.crop_ratio, gen)
    idx = _pick(n, cfg.hflip_p, gen)
    if len(idx):
        out[idx] = out[idx].flip(-1)
    idx = _pick(n, cfg.rotate_p, gen)
    if len(idx):
        out[idx] = random_rotation(out[idx], cfg.rotate_degrees, gen)
    idx = _pick(n, cfg.jitter_p, gen)
    if len(idx):
        out[idx] = color_jitter(out[idx], cfg.brightness, cfg.contrast, cfg.saturation, gen)
    idx = _pick(n, cfg.grayscale_p, gen)
    if len(idx):
        out[idx] = to_grayscale(out[idx])
    idx = _pick(n, cfg.blur_p, gen)
    if len(idx):
        out[idx] = gaussian_blur(out[idx], _uniform(len(idx), *cfg.blur_sigma, gen))
    if not cfg.chain:
        out = random_jpeg(out, cfg, gen)
    idx = _pick(n, cfg.mask_p, gen)
    if len(idx):
        out[idx] = random_mask(out[idx], cfg.mask_ratio, cfg.mask_patch, gen)
    return to_uint8(out) if is_uint8 else out


def random_jpeg(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """A JPEG round trip (quality drawn from `jpeg_quality`) for each float image with probability `jpeg_p`."""
    idx = _pick(x.shape[0], cfg.jpeg_p, gen)
    if len(idx):
        qualities = torch.randint(int(cfg.jpeg_quality[0]), int(cfg.jpeg_quality[1]) + 1, (len(idx),), generator=gen)
        x[idx] = jpeg_batch(to_uint8(x[idx]), qualities).float().div(255.0)
    return x


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] to uint8 0-255 (rounded)."""
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
