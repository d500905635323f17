"""Chain-matching augmentation: random resampling and JPEG before the crop, for real and fake alike (issue 15)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from test_train import OFF, synthetic_images, write_packed

from realfake.core.errors import UserError
from realfake.detector.augment import AugmentConfig, augment_batch, random_resized_crop
from realfake.detector.batches import train_batches
from realfake.detector.packed import load_split
from realfake.detector.resample import FILTERS, random_resample
from realfake.detector.train_config import TrainConfig

CHAIN = {**OFF, "chain": True}


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.from_numpy(synthetic_images(16, 64, True, np.random.default_rng(0), 25.0))


def high_frequency(x: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference of horizontal neighbours (what a downscale takes away)."""
    x = x.float()
    return (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))


def test_chain_with_nothing_drawn_is_identity(batch):
    cfg = AugmentConfig(**CHAIN, resample_p=0.0)
    assert torch.equal(augment_batch(batch, cfg, torch.Generator().manual_seed(0)), batch)


def test_resample_keeps_shape_dtype_and_range(batch):
    for name in FILTERS:
        cfg = AugmentConfig(**CHAIN, resample_p=1.0, resample_scale=[0.4, 0.6], resample_filters=[name])
        out = augment_batch(batch, cfg, torch.Generator().manual_seed(0))
        assert out.shape == batch.shape and out.dtype == torch.uint8
        assert 0 < (out.float() - batch.float()).abs().mean() < 30, name  # changed, still the same picture


def test_nearest_down_and_up_by_two_gives_two_by_two_blocks(batch):
    x = batch
    out = random_resample(x, [0.5, 0.5], ["nearest"], torch.Generator().manual_seed(0))
    blocks = out[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.equal(out, blocks)
    assert torch.equal(out[..., 1::2, 1::2], x[..., 1::2, 1::2])  # nearest-exact keeps the pixel centres at 2i + 1


def test_a_factor_of_one_changes_nothing(batch):
    assert torch.equal(random_resample(batch, [1.0, 1.0], list(FILTERS), torch.Generator().manual_seed(0)), batch)


def test_area_downscale_removes_high_frequencies(batch):
    cfg = AugmentConfig(**CHAIN, resample_p=1.0, resample_scale=[0.5, 0.5], resample_filters=["area"])
    out = augment_batch(batch, cfg, torch.Generator().manual_seed(0))
    assert (high_frequency(out) < 0.8 * high_frequency(batch)).all()


def test_resampling_runs_before_the_crop(batch):
    cfg = AugmentConfig(**{**CHAIN, "crop_p": 1.0}, resample_p=1.0, resample_scale=[0.5, 0.7])
    got = augment_batch(batch, cfg, torch.Generator().manual_seed(5))
    # the same draws in the documented order: pick + resample, (no JPEG), pick + crop
    gen = torch.Generator().manual_seed(5)
    torch.rand(len(batch), generator=gen)
    x = random_resample(batch, cfg.resample_scale, cfg.resample_filters, gen).float() / 255
    torch.rand(len(x), generator=gen)
    x = random_resized_crop(x, cfg.crop_scale, cfg.crop_ratio, gen)
    assert torch.equal(got, x.mul(255).round().clamp(0, 255).to(torch.uint8))


def test_chain_runs_jpeg_before_the_crop_and_default_runs_it_last(batch):
    steps = {"crop_p": 1.0, "jpeg_p": 1.0, "jpeg_quality": [40, 40]}
    first = augment_batch(batch, AugmentConfig(**{**CHAIN, **steps}, resample_p=0.0), torch.Generator().manual_seed(1))
    last = augment_batch(batch, AugmentConfig(**{**OFF, **steps}), torch.Generator().manual_seed(1))
    # JPEG last leaves its 8x8 block grid on the output; cropped and resized after JPEG, the grid is smeared
    def block_edges(x):
        d = (x.float()[..., 1:] - x.float()[..., :-1]).abs().mean((0, 1, 2))
        return d[7::8].mean() / d.mean()

    assert block_edges(last) > 1.1 * block_edges(first)


def test_chain_hides_the_was_downscaled_cue():
    # "real": native images; "fake": the same kind of image after a 0.5 area downscale and a bicubic upscale,
    # as the mirror resized some sources only. Without chain matching the sharpness alone separates them.
    rng = np.random.default_rng(1)
    real = torch.from_numpy(rng.integers(0, 256, (64, 3, 64, 64), dtype=np.uint8))
    small = F.interpolate(torch.from_numpy(rng.integers(0, 256, (64, 3, 64, 64), dtype=np.uint8)).float(),
                          size=(32, 32), mode="area")
    fake = F.interpolate(small, size=(64, 64), mode="bicubic", align_corners=False).round().clamp(0, 255)
    fake = fake.to(torch.uint8)
    y = np.r_[np.zeros(64), np.ones(64)]
    images = torch.cat([real, fake])

    def cue_auc(x):
        return roc_auc_score(y, -high_frequency(x).numpy())  # blurrier -> "fake"

    assert cue_auc(images) == 1.0
    # resampling can add a step to the real images, never take one away from the fakes: the cue weakens (to
    # 0.77 here, white noise being the sharpest image there is), it does not vanish
    cfg = AugmentConfig(**CHAIN, resample_p=1.0, resample_scale=[0.3, 0.6])
    assert cue_auc(augment_batch(images, cfg, torch.Generator().manual_seed(0))) < 0.85


def test_augmentation_is_label_blind(tmp_path):
    write_packed(tmp_path, "train", 12, 12, 32, seed=0)
    split = load_split(tmp_path, "train")
    flipped = dataclasses.replace(split, y=1 - split.y)
    cfg = TrainConfig(batch_size=8, augment=AugmentConfig(chain=True, resample_p=0.5, jpeg_p=0.5))
    runs = []
    for s in (split, flipped):
        gen = torch.Generator().manual_seed(0)
        runs.append([(augment_batch(images, cfg.augment, gen), targets) for images, targets in train_batches(s, cfg, gen)])
    for (a, ya), (b, yb) in zip(*runs, strict=True):
        assert torch.equal(a, b) and torch.equal(ya, 1 - yb)  # the same pixels, whatever the labels


def test_bad_chain_params_are_user_errors():
    with pytest.raises(UserError, match="resample_scale"):
        AugmentConfig(resample_scale=[0.0, 1.0])
    with pytest.raises(UserError, match="resample_scale"):
        AugmentConfig(resample_scale=[0.5, 1.5])
    with pytest.raises(UserError, match="resample_filters"):
        AugmentConfig(resample_filters=["lanczos3"])
    with pytest.raises(UserError, match="resample_filters"):
        AugmentConfig(resample_filters=[])
    with pytest.raises(UserError, match="probability"):
        AugmentConfig(resample_p=2.0)
