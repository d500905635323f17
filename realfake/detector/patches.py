"""Patch-level scoring (Chai et al. 2020, "What makes fake images detectable?").

Generator artefacts are local and high-frequency; resizing a whole face down to the training size blurs them
away. A patch detector instead trains on small random crops (e.g. 48 px) taken at the packed resolution, so no
pixel is resampled after the pipeline's one resize, and scores an image as the mean fake probability of
`count` patches at fixed positions. The positions are drawn once from `seed`, the same for every image, so
the evaluate stage and `realfake predict` score an image identically.

`positions: center` with `count: 1` is SAFE's crop-not-resize (Li et al., KDD 2025: `RandomCrop` in training,
`CenterCrop` at test): train on one random crop, score the one centre crop, so no pixel is resampled and the
model sees the same scale in training and at test. It needs a view larger than the crop (e.g. 80 px of the
context view's 96 px).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from realfake.core.errors import UserError
from realfake.core.params import load_section


@dataclass(frozen=True)
class PatchConfig:
    """Patch training and scoring (params.yaml `train.patch`; stored in the checkpoint)."""

    size: int | None = None  # patch side in px; None: whole images (no patches)
    count: int = 16  # patches averaged per image at test time
    seed: int = 0  # seeds the test-time positions
    positions: Literal["random", "center"] = "random"  # test-time positions: drawn from seed | the centre crop

    def __post_init__(self) -> None:
        if self.size is not None and not 8 <= int(self.size) <= 1024:
            raise UserError(f"train.patch.size must be null or in 8..1024, got {self.size!r}")
        if int(self.count) < 1:
            raise UserError(f"train.patch.count must be >= 1, got {self.count!r}")
        if self.positions == "center" and int(self.count) != 1:
            raise UserError(f"train.patch.positions: center scores one centre crop: set train.patch.count to 1, "
                            f"got {self.count!r}")

    @classmethod
    def from_preprocessing(cls, preprocessing: dict) -> PatchConfig:
        """The patch settings a checkpoint's preprocessing stores (whole images when it stores none)."""
        return load_section(cls, preprocessing, "patch")

    @property
    def enabled(self) -> bool:
        """True when the model trains and scores on patches."""
        return self.size is not None


def check_fits(cfg: PatchConfig, image_size: int) -> None:
    """A user error when the patch is larger than the images it is cut from."""
    if cfg.enabled and cfg.size > image_size:
        raise UserError(f"train.patch.size={cfg.size} is larger than the {image_size} px images (resize.size)")


def random_patches(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random size×size patch per image of an (N, C, H, W) batch (training)."""
    n, _, h, w = x.shape
    tops = torch.randint(0, h - size + 1, (n,), generator=gen).tolist()
    lefts = torch.randint(0, w - size + 1, (n,), generator=gen).tolist()
    return torch.stack([x[i, :, t:t + size, left:left + size] for i, (t, left) in enumerate(zip(tops, lefts, strict=True))])


def patch_positions(image_size: int, cfg: PatchConfig) -> list[tuple[int, int]]:
    """The (top, left) corners scored for every image: `count` positions drawn once from `seed`, or the centre."""
    if cfg.positions == "center":
        offset = (image_size - int(cfg.size)) // 2
        return [(offset, offset)]
    rng = np.random.default_rng(cfg.seed)
    span = image_size - int(cfg.size) + 1
    return [(int(t), int(left)) for t, left in rng.integers(0, span, size=(int(cfg.count), 2))]


def patch_probabilities(model: torch.nn.Module, x: torch.Tensor, cfg: PatchConfig) -> torch.Tensor:
    """(N, count) fake probabilities of each image's patches at the fixed positions."""
    s = int(cfg.size)
    cols = [torch.sigmoid(model(x[:, :, t:t + s, left:left + s].contiguous(memory_format=torch.channels_last)))
            for t, left in patch_positions(x.shape[-1], cfg)]
    return torch.stack(cols, dim=1)


def image_logits(model: torch.nn.Module, x: torch.Tensor, cfg: PatchConfig) -> torch.Tensor:
    """One logit per image: the model's own, or the logit of the mean patch probability."""
    if not cfg.enabled:
        return model(x)
    p = patch_probabilities(model, x, cfg).float().mean(dim=1).clamp(1e-6, 1 - 1e-6)  # float: bf16 rounds 1-1e-6 to 1
    return torch.log(p) - torch.log1p(-p)
