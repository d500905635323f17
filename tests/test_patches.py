"""Patch-level detector (Chai et al.) and source-balanced batches: what each switch says it does."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.detector.checkpoint import load_detector, to_model_input
from realfake.detector.model import ModelConfig
from realfake.detector.packed import PackedSplit, epoch_batches
from realfake.detector.patches import (
    PatchConfig,
    image_logits,
    patch_positions,
    patch_probabilities,
    random_patches,
)
from realfake.detector.run import TrainRun
from realfake.detector.scorer import Scorer
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig
from realfake.detector.verdict import calibrate
from tests.test_train import write_packed

TINY = ModelConfig(widths=[8, 16, 32, 32])


class MeanOfTopLeftPixel(nn.Module):
    """A model whose logit is a known function of its input: the first channel's top-left pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, 0]


def test_patch_scorer_averages_probabilities_of_the_fixed_patches():
    cfg = PatchConfig(size=8, count=5, seed=3)
    x = torch.randn(4, 3, 32, 32)
    positions = patch_positions(32, cfg)
    assert len(positions) == 5 and positions == patch_positions(32, cfg)  # same positions every call
    assert all(0 <= t <= 24 and 0 <= left <= 24 for t, left in positions)
    expected = torch.stack([torch.sigmoid(x[:, 0, t, left]) for t, left in positions], dim=1).mean(dim=1)
    probs = patch_probabilities(MeanOfTopLeftPixel(), x, cfg)
    assert probs.shape == (4, 5)
    logits = image_logits(MeanOfTopLeftPixel(), x, cfg)
    assert torch.allclose(torch.sigmoid(logits), expected, atol=1e-5)
    # the mean of probabilities, not the probability of the mean logit
    assert not torch.allclose(torch.sigmoid(probs.logit().mean(dim=1)), expected, atol=1e-4)


def test_without_patches_the_model_sees_the_whole_image():
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(image_logits(MeanOfTopLeftPixel(), x, PatchConfig()), x[:, 0, 0, 0])


def test_random_patches_are_crops_of_each_image_at_full_resolution():
    x = torch.arange(2 * 3 * 20 * 20, dtype=torch.float32).view(2, 3, 20, 20)
    patches = random_patches(x, 6, torch.Generator().manual_seed(0))
    assert patches.shape == (2, 3, 6, 6)
    for i in range(2):  # every patch is an exact window of its own image: nothing resampled
        t, left = divmod(int(patches[i, 0, 0, 0] - x[i, 0, 0, 0]), 20)
        assert torch.equal(patches[i], x[i, :, t:t + 6, left:left + 6])


def test_bad_patch_params_are_user_errors(tmp_path):
    with pytest.raises(UserError):
        PatchConfig(size=4)
    with pytest.raises(UserError):
        PatchConfig(size=16, count=0)
    with pytest.raises(UserError):
        load_section(TrainConfig, {"train": {"patch": {"size": 16, "stride": 2}}}, "train")
    packed = tmp_path / "packed"
    write_packed(packed, "train", 8, 8, 16, seed=0)
    write_packed(packed, "val", 4, 4, 16, seed=1)
    with pytest.raises(UserError, match="larger than"):
        train(TrainRun(TINY, TrainConfig(epochs=1, threads=1, patch=PatchConfig(size=24)), size=16), packed,
              tmp_path / "m.pt", tmp_path / "live")


@pytest.mark.slow  # trains a model (~6 s here)
def test_patch_training_learns_and_stores_how_to_score(tmp_path):
    packed = tmp_path / "packed"
    write_packed(packed, "train", 120, 120, 48, seed=0)
    write_packed(packed, "val", 40, 40, 48, seed=1)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=3e-3, warmup_epochs=0.5, min_epochs=4, threads=1,
                      patch=PatchConfig(size=16, count=6, seed=1))
    summary = train(TrainRun(TINY, cfg, size=48), packed, tmp_path / "m.pt", tmp_path / "live")
    assert summary["best_val_auc"] > 0.8  # the period-4 trace is visible in any 16 px window
    model, checkpoint = load_detector(tmp_path / "m.pt")
    assert checkpoint["preprocessing"]["patch"] == {"size": 16, "count": 6, "seed": 1}
    images = np.load(packed / "val.npy")[:8]  # the evaluate stage and `predict` score through Scorer
    x = to_model_input(torch.from_numpy(images), checkpoint["preprocessing"], channels_last=True)
    with torch.no_grad():
        expected = patch_probabilities(model, x, PatchConfig(16, 6, 1)).mean(dim=1).double().numpy()
    scorer = Scorer(tmp_path / "m.pt")  # the mean patch probability's logit, calibrated (detector/verdict.py)
    assert np.allclose(scorer(images), calibrate(np.log(expected) - np.log1p(-expected), scorer.temperature,
                                                scorer.bias), atol=1e-5)


def split_of(sources: list[str], labels: list[int]) -> PackedSplit:
    meta = pd.DataFrame({"source": sources})
    return PackedSplit("train", np.zeros((len(labels), 3, 4, 4), np.uint8), np.arange(len(labels)),
                       np.asarray(labels, dtype=np.int64), meta, {})


def test_source_balanced_batches_give_every_source_an_equal_share_of_its_class():
    # real: 900 "big" + 100 "small"; fake: 300 "gan"
    split = split_of(["big"] * 900 + ["small"] * 100 + ["gan"] * 300, [0] * 1000 + [1] * 300)
    gen = torch.Generator().manual_seed(0)
    drawn = Counter()
    for _ in range(10):
        for batch in epoch_batches(split, "source_balanced", 64, gen):
            drawn.update(split.meta["source"].to_numpy()[batch])
    total = sum(drawn.values())
    assert total == 10 * 1300  # an epoch keeps its length
    assert drawn["gan"] / total == pytest.approx(0.5, abs=0.02)
    assert drawn["big"] / total == pytest.approx(0.25, abs=0.02)
    assert drawn["small"] / total == pytest.approx(0.25, abs=0.02)


def test_shuffle_sees_every_image_once_per_epoch():
    split = split_of(["big"] * 90 + ["gan"] * 30, [0] * 90 + [1] * 30)
    batches = epoch_batches(split, "shuffle", 16, torch.Generator().manual_seed(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(120))
    with pytest.raises(UserError):
        load_section(TrainConfig, {"train": {"sampler": "by_size"}}, "train")
