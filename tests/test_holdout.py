"""Held-out sources in evaluate: the per-source table on hand-made scores, and on a packed holdout split scored by a
real checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from realfake.detector.checkpoint import preprocessing_for, save_checkpoint
from realfake.detector.model import ModelConfig, build_model
from realfake.detector.scorer import Scorer
from realfake.evaluation.evaluate import held_out_lines, held_out_rates, score_held_out_rates
from realfake.evaluation.metrics import numeric_only, to_jsonable
from realfake.sample.config import SampleConfig
from realfake.sample.stage import run_sample

SIZE = 32

# (source, holdout_for, y, p_fake): two held-out real sources, two held-out fakes with their matched reals
ROWS = [
    *[("ciplab-real", "ciplab-real", 0, p) for p in (0.1, 0.2, 0.7, 0.4)],
    *[("lfw", "lfw", 0, p) for p in (0.6, 0.3)],
    *[("tpdne", "tpdne", 1, p) for p in (0.9, 0.4, 0.8)],
    *[("utkface", "tpdne", 0, p) for p in (0.2, 0.85, 0.3)],
    *[("sg", "sg", 1, p) for p in (0.7, 0.2)],
    *[("ffhq", "sg", 0, p) for p in (0.1, 0.3)],
]


def hand_made() -> pd.DataFrame:
    """ROWS in a shuffled order, so nothing relies on rows of one source being adjacent."""
    frame = pd.DataFrame(ROWS, columns=["source", "holdout_for", "y", "p"])
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


def test_held_out_rates_on_hand_made_scores():
    f = hand_made()
    out = held_out_rates(f["p"].to_numpy(), f["y"].to_numpy(), f["source"].to_numpy(), f["holdout_for"].to_numpy(), 0.5)
    assert out["n"] == len(ROWS)
    assert out["ciplab-real"] == {"n": 4, "called_right": 0.75}  # real sources: no AUC, no matched faces
    assert out["lfw"] == {"n": 2, "called_right": 0.5}
    auc_tpdne = roc_auc_score([1, 1, 1, 0, 0, 0], [0.9, 0.4, 0.8, 0.2, 0.85, 0.3])
    auc_sg = roc_auc_score([1, 1, 0, 0], [0.7, 0.2, 0.1, 0.3])
    assert out["tpdne"] == pytest.approx({"n": 3, "called_right": 2 / 3, "n_matched_reals": 3,
                                          "matched_reals_called_real": 2 / 3, "auc": auc_tpdne})
    assert out["sg"] == pytest.approx({"n": 2, "called_right": 0.5, "n_matched_reals": 2,
                                       "matched_reals_called_real": 1.0, "auc": auc_sg})
    assert out["real_called_real"] == pytest.approx(4 / 6)  # pooled over the faces, not averaged over sources
    assert out["fake_auc_mean"] == pytest.approx((auc_tpdne + auc_sg) / 2)
    assert numeric_only(to_jsonable(out)) == out  # all numbers: nothing is lost on the way to evaluate.json


def test_held_out_rates_with_only_a_real_source_and_a_threshold_on_a_score():
    out = held_out_rates(np.array([0.2, 0.5, 0.49]), np.zeros(3), np.array(["r"] * 3), np.array(["r"] * 3), 0.5)
    assert out == {"n": 3, "r": {"n": 3, "called_right": pytest.approx(2 / 3)}, "real_called_real": pytest.approx(2 / 3)}
    assert "fake_auc_mean" not in out  # p >= threshold is called fake, as everywhere else


def test_held_out_lines_renders_one_row_per_source():
    f = hand_made()
    out = held_out_rates(f["p"].to_numpy(), f["y"].to_numpy(), f["source"].to_numpy(), f["holdout_for"].to_numpy(), 0.5)
    text = "\n".join(held_out_lines(out))
    rows = [line for line in text.splitlines() if line.startswith("| ") and "held-out source" not in line]
    assert sorted(line.split(" | ")[0][2:] for line in rows) == ["ciplab-real", "lfw", "sg", "tpdne"]
    assert "real_called_real: 0.6667" in text and held_out_lines({}) == []


def packed_holdout(root: Path) -> Path:
    """Run the sample stage on a small metadata table of real PNGs, holding out lfw (real) and tpdne (fake)."""
    rng = np.random.default_rng(0)
    counts = {("lfw", "real"): 30, ("utkface", "real"): 90, ("tpdne", "fake"): 20, ("sg", "fake"): 100}
    rows = [(source, label) for (source, label), n in counts.items() for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["source", "label"])
    frame["face_id"] = [f"f{i:04d}" for i in range(len(frame))]
    frame["split_group"] = np.where(frame["source"] == "lfw", [f"lfw:p{i // 3}" for i in range(len(frame))],
                                    frame["face_id"])
    frame["gender"] = rng.choice(["male", "female"], len(frame))
    paths = []
    for face_id, label in zip(frame["face_id"], frame["label"], strict=True):
        image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        if label == "fake":  # something for the scores to depend on
            image[::2, ::2] = 255
        path = root / "resized" / f"{face_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        paths.append(str(path))
    frame["resized_path"] = paths
    frame.to_parquet(root / "metadata.parquet")
    cfg = SampleConfig(strata=("gender",), min_per_stratum=2, seed=0, holdout_sources=("lfw",),
                       holdout_source="tpdne", view="aligned")  # the resized images: no crops stage here
    run_sample(root / "metadata.parquet", cfg, SIZE, root / "packed", root / "splits.parquet",
               root / "sample.json", root / "plots")
    return root / "packed"


def real_checkpoint(path: Path) -> Path:
    """A small untrained detector saved exactly as training saves one (random weights give spread-out scores)."""
    torch.manual_seed(0)
    cfg = ModelConfig(widths=[8, 16, 32, 32])
    model = build_model(cfg).eval()
    torch.nn.init.normal_(model.fc.weight, std=2.0)
    save_checkpoint(path, model, cfg, preprocessing_for(SIZE), {"best_epoch": 0})
    return path


def test_score_held_out_rates_on_a_packed_holdout_scored_by_a_real_checkpoint(tmp_path):
    packed = packed_holdout(tmp_path)
    scorer = Scorer(real_checkpoint(tmp_path / "m.pt"))
    images, meta = np.load(packed / "holdout.npy"), pd.read_parquet(packed / "holdout.parquet")
    p = scorer(images)
    threshold = float(np.median(p))
    out = score_held_out_rates(scorer, packed, SIZE, threshold, batch=7)  # batches that do not divide the split

    assert set(out) == {"n", "lfw", "tpdne", "real_called_real", "fake_auc_mean"} and out["n"] == len(meta)
    lfw = (meta["holdout_for"] == "lfw").to_numpy()
    assert out["lfw"] == pytest.approx({"n": 30, "called_right": float((p[lfw] < threshold).mean())})
    assert out["real_called_real"] == pytest.approx(out["lfw"]["called_right"])
    tp = (meta["holdout_for"] == "tpdne").to_numpy()
    fake, real = tp & (meta["label"] == "fake").to_numpy(), tp & (meta["label"] == "real").to_numpy()
    assert set(meta.loc[real, "source"]) == {"utkface"} and real.sum() == fake.sum() == 20
    expected_auc = roc_auc_score(meta.loc[tp, "y"], p[tp])
    assert out["tpdne"] == pytest.approx({
        "n": 20, "called_right": float((p[fake] >= threshold).mean()), "n_matched_reals": 20,
        "matched_reals_called_real": float((p[real] < threshold).mean()), "auc": expected_auc})
    assert out["fake_auc_mean"] == pytest.approx(expected_auc)
    assert 0 < out["lfw"]["called_right"] < 1  # the threshold splits the scores: the shares are not trivial


def test_score_held_out_rates_without_a_holdout_split_is_empty(tmp_path):
    assert score_held_out_rates(None, tmp_path, SIZE, 0.5, 8) == {}
