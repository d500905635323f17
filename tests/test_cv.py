"""Cross-validation: whole groups per fold, every fold trained and scored for real on packed arrays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from realfake.core.atomic import write_parquet
from realfake.core.errors import UserError
from realfake.core.tables import markdown_table
from realfake.cv import METRICS, CVConfig, apply_overrides, assign_folds, run_cv, summary_row
from realfake.sample.packing import PACKED_SCHEMA

SIZE = 32


def images(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey noise fields; fakes carry a period-4 checkerboard (an upsampling trace a small CNN learns quickly)."""
    img = rng.normal(128, 20, (len(y), 3, SIZE, SIZE))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img += 40 * y[:, None, None, None] * (np.cos(np.pi * xx / 2) * np.cos(np.pi * yy / 2))
    return img.round().clip(0, 255).astype(np.uint8)


def write_split(folder: Path, name: str, table: pd.DataFrame, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table = table.assign(y=(table["label"] == "fake").astype("int8"), path="", stratum=table.get("stratum", "all"))
    if "holdout_for" not in table:
        table["holdout_for"] = pd.array([pd.NA] * len(table), dtype="string")
    np.save(folder / f"{name}.npy", images(table["y"].to_numpy(), rng))
    write_parquet(table[PACKED_SCHEMA.names], folder / f"{name}.parquet", schema=PACKED_SCHEMA)


def pool_table(n: int, seed: int) -> pd.DataFrame:
    """ffhq/stylegan-140k (the honest pair) and other sources; reals come in groups of three (one person)."""
    rng = np.random.default_rng(seed)
    label = np.where(np.arange(n) % 2 == 0, "real", "fake")
    source = np.where(label == "real", rng.choice(["ffhq", "lfw"], n), rng.choice(["stylegan-140k", "tpdne"], n))
    group = [f"{s}:{i // 3 if lab == 'real' else i}" for i, (s, lab) in enumerate(zip(source, label, strict=True))]
    return pd.DataFrame({"face_id": [f"f{i:04d}" for i in range(n)], "label": label, "source": source,
                         "group": group, "stratum": rng.choice(["female", "male"], n)})


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    table = pool_table(480, seed=1)
    folder = tmp_path / "packed"
    write_split(folder, "train", table.iloc[:400], rng)
    write_split(folder, "val", table.iloc[400:], rng)
    held = pd.DataFrame({"face_id": [f"h{i}" for i in range(20)], "label": "real", "source": "ciplab-real",
                         "group": [f"h{i}" for i in range(20)], "holdout_for": "ciplab-real"})
    write_split(folder, "holdout", held.astype({"holdout_for": "string"}), rng)
    return folder


def test_folds_keep_groups_whole_and_both_labels_in_each():
    meta = pool_table(600, seed=3).rename(columns={"group": "split_group"})
    fold = assign_folds(meta, 5, seed=0)
    assert set(fold) == set(range(5))
    assert (meta.assign(fold=fold).groupby("split_group")["fold"].nunique() == 1).all()
    sizes = np.bincount(fold)
    assert sizes.max() - sizes.min() <= 6
    for k in range(5):
        labels = meta.loc[fold == k, "label"].value_counts()
        assert abs(labels["real"] - labels["fake"]) <= 6
    assert np.array_equal(fold, assign_folds(meta, 5, seed=0))
    assert not np.array_equal(fold, assign_folds(meta, 5, seed=1))


def params(**train) -> dict:
    return {"model": {"widths": [8, 16, 32, 32]}, "resize": {"size": SIZE},
            "train": {"epochs": 6, "batch_size": 32, "lr": 3e-3, "warmup_epochs": 0.5, "threads": 1,
                      "augment": {k: 0.0 for k in ("hflip_p", "crop_p", "jitter_p", "grayscale_p", "blur_p", "jpeg_p")},
                      **train},
            "evaluate": {"honest_pair": {"real": "ffhq", "fake": "stylegan-140k"}}}


@pytest.mark.slow
def test_cv_trains_every_fold_and_reports_mean_and_std(packed, tmp_path):
    out = tmp_path / "cv.json"
    result = run_cv(params(), CVConfig(folds=3, seed=0), packed, out)
    headline = json.loads(out.read_text())
    assert headline["folds"] == 3 and set(headline) == {"folds", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std"))}
    assert headline["roc_auc_mean"] == round(result["roc_auc"]["mean"], 4)
    details = json.loads((tmp_path / "cv.details.json").read_text())  # no metrics/ folder above: a sibling file
    assert details["per_fold"][0]["roc_auc"] == result["per_fold"][0]["roc_auc"] and "seconds" not in details
    assert [f["fold"] for f in result["per_fold"]] == [0, 1, 2] and result["pool"] == 480
    assert sum(f["n"] for f in result["per_fold"]) == 480  # every pool face scored exactly once
    for name in METRICS:
        assert result[name]["folds"] == 3 and result[name]["std"] is not None, name
    assert result["roc_auc"]["mean"] > 0.9 and result["honest_pair_auc"]["mean"] > 0.9
    assert 0 <= result["held_out_real_called_real"]["mean"] <= 1
    assert all(f["n_honest_pair"] > 0 for f in result["per_fold"])


def test_overrides_and_bad_config_are_clear():
    p = apply_overrides(params(), ["model.attention=false", "train.epochs=2"])
    assert p["model"]["attention"] is False and p["train"]["epochs"] == 2 and "attention" not in params()["model"]
    with pytest.raises(UserError, match="dotted.key=value"):
        apply_overrides(params(), ["model.attention"])
    with pytest.raises(UserError, match="no section"):
        apply_overrides(params(), ["nothing.here=1"])
    with pytest.raises(UserError, match="folds must be >= 3"):
        CVConfig(folds=2)


@pytest.mark.slow  # the realfake CLI in a subprocess (~5 s here)
def test_cv_command_without_packed_data_is_one_clear_line(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params()))
    proc = subprocess.run([sys.executable, "-m", "realfake.cli", "cv", "--folds", "3"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "dvc repro sample" in proc.stderr and "Traceback" not in proc.stderr


def test_the_printed_row_gives_mean_and_std_and_n_a_below_two_folds():
    summary = {m: {"mean": 0.75, "std": 0.025, "folds": 3} for m in METRICS}
    summary["mcc"] = {"mean": 0.5, "std": None, "folds": 1}
    assert markdown_table([summary_row("attention off", summary)]).splitlines() == [
        "| run | ROC-AUC | F1 | MCC | honest-pair AUC | held-out real called real |",
        "|---|---|---|---|---|---|",
        "| attention off | 0.750 ± 0.025 | 0.750 ± 0.025 | n/a | 0.750 ± 0.025 | 0.750 ± 0.025 |"]
