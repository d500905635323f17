"""Balanced sampling and the group-aware split on crafted tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realfake.sampling import (
    SampleConfig,
    balanced_sample,
    leakage_counts,
    make_splits,
    stratum_keys,
    tv_distance,
)


def crafted(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A metadata-like table: reals mostly young, fakes mostly old; LFW-like people with many images."""
    rng = np.random.default_rng(seed)
    label = np.where(np.arange(n) % 2 == 0, "real", "fake")
    young = np.where(label == "real", rng.random(n) < 0.9, rng.random(n) < 0.1)
    frame = pd.DataFrame({
        "face_id": [f"f{i:05d}" for i in range(n)],
        "label": label,
        "source": np.where(label == "real", rng.choice(["lfw", "utkface"], n), rng.choice(["tpdne", "sg"], n)),
        "gender": rng.choice(["male", "female"], n),
        "age_group": np.where(young, "0-19", "40-59"),
        "race_group": rng.choice(["white", "black", "asian", None], n, p=[0.5, 0.2, 0.2, 0.1]),
    })
    frame["split_group"] = frame["face_id"]
    lfw = frame.index[frame["source"] == "lfw"]
    frame.loc[lfw[:60], "split_group"] = "lfw:George_W_Bush"  # one person with many images
    people = lfw[60:200]
    frame.loc[people, "split_group"] = [f"lfw:p{i // 4}" for i in range(len(people))]
    return frame


CFG = SampleConfig(strata=("gender", "age_group", "race_group"), min_per_stratum=3, seed=7)


def test_balancing_within_strata_removes_the_skew():
    frame = crafted()
    before = tv_distance(frame, stratum_keys(frame, CFG.strata))
    result = balanced_sample(frame, CFG)
    sel = result.selected
    after = tv_distance(sel, sel["stratum"])
    assert before > 0.6 and after == pytest.approx(0.0, abs=1e-12)
    counts = sel.groupby(["stratum", "label"]).size().unstack()
    assert (counts["real"] == counts["fake"]).all()


def test_sampling_is_uniform_within_a_stratum():
    frame = crafted(4000, seed=1)
    stratum = stratum_keys(frame, CFG.strata)
    per = pd.crosstab(stratum, frame["label"])
    target = (per["real"] - per["fake"]).idxmax()  # reals outnumber fakes: only some reals can be drawn
    hits = pd.Series(0, index=frame.index[(stratum == target) & (frame["label"] == "real")])
    for seed in range(40):
        sel = balanced_sample(frame, SampleConfig(**{**CFG.__dict__, "seed": seed})).selected
        hits[hits.index[frame.loc[hits.index, "face_id"].isin(sel["face_id"])]] += 1
    rate = hits / 40
    assert 0 < rate.mean() < 1 and rate.std() < 0.25  # no face is systematically favoured


def test_small_strata_merge_into_parents_or_are_dropped_and_reported():
    frame = crafted(300, seed=2)
    result = balanced_sample(frame, SampleConfig(strata=CFG.strata, min_per_stratum=8, seed=0))
    assert result.merged_strata  # some fine strata were merged into a coarser one
    assert all(parent.count("|") < child.count("|") for child, parent in result.merged_strata.items())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_has_no_group_leakage_and_balanced_eval_sets(seed):
    cfg = SampleConfig(**{**CFG.__dict__, "seed": seed})
    split = make_splits(balanced_sample(crafted(), cfg).selected, cfg)
    assert leakage_counts(split) == {"split_group": 0, "face_id": 0}
    bush = split.loc[split["split_group"] == "lfw:George_W_Bush", "split"].dropna()
    assert bush.nunique() <= 1
    for name in ("val", "test"):
        n = split.loc[split["split"] == name, "label"].value_counts()
        assert n["real"] == n["fake"] > 0
    shares = split["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.06)
    assert shares["val"] == pytest.approx(0.15, abs=0.05) and shares["test"] == pytest.approx(0.15, abs=0.05)


def test_same_seed_same_split_and_different_seed_different_split():
    frame = crafted()
    a = make_splits(balanced_sample(frame, CFG).selected, CFG)
    b = make_splits(balanced_sample(frame, CFG).selected, CFG)
    other = SampleConfig(**{**CFG.__dict__, "seed": CFG.seed + 1})
    c = make_splits(balanced_sample(frame, other).selected, other)
    assert a.equals(b)
    joined = a.merge(c, on="face_id", suffixes=("_a", "_c"))
    assert (joined["split_a"] != joined["split_c"]).any()


def test_source_cap_limits_one_generator():
    frame = crafted()
    frame.loc[frame["label"] == "fake", "source"] = np.where(
        np.arange((frame["label"] == "fake").sum()) % 10 == 0, "rare", "dominant")
    cfg = SampleConfig(strata=("gender",), min_per_stratum=1, max_source_share=0.6, seed=0)
    sel = balanced_sample(frame, cfg).selected
    share = sel[sel["label"] == "fake"]["source"].value_counts(normalize=True)
    assert share["dominant"] <= 0.6 + 1e-9


def test_every_face_is_selected_or_has_a_reason():
    frame = crafted()
    result = balanced_sample(frame, SampleConfig(**{**CFG.__dict__, "max_source_share": 0.7}))
    assert len(result.selected) + len(result.unselected) == len(frame)
    assert set(result.selected["face_id"]).isdisjoint(result.unselected["face_id"])
    assert result.unselected["exclude_reason"].notna().all()


def test_sample_stage_packs_arrays_that_match_the_images_bit_for_bit(tmp_path, monkeypatch):
    from PIL import Image

    from realfake.packing import open_packed
    from realfake.sample_stage import run_sample

    monkeypatch.chdir(tmp_path)
    frame = crafted(240, seed=3)
    rng = np.random.default_rng(0)
    paths = []
    for face_id in frame["face_id"]:
        path = Path("data/resized/x") / f"{face_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    frame["resized_path"] = paths
    frame.to_parquet("metadata.parquet")
    cfg = SampleConfig(strata=("gender", "age_group"), min_per_stratum=2, seed=0)
    report = run_sample(Path("metadata.parquet"), cfg, 16, Path("packed"), Path("splits.parquet"),
                        Path("sample.json"), Path("plots/dist.csv"))
    assert report["leakage"]["split_group"] == 0 and report["in"] == 240
    total = 0
    for split in ("train", "val", "test"):
        arr = open_packed(Path("packed") / f"{split}.npy")
        table = pd.read_parquet(Path("packed") / f"{split}.parquet")
        assert arr.dtype == np.uint8 and arr.shape == (len(table), 3, 16, 16)
        for i, row in enumerate(table.itertuples()):
            expected = np.asarray(Image.open(row.path).convert("RGB")).transpose(2, 0, 1)
            assert np.array_equal(arr[i], expected)
        assert (table["y"] == (table["label"] == "fake")).all()
        total += len(table)
    splits = pd.read_parquet("splits.parquet")
    assert total == splits["split"].notna().sum() and len(splits) == 240
    assert pd.read_csv("plots/dist.csv")["share"].between(0, 1).all()


def test_export_mini_is_balanced_complete_and_round_trips(tmp_path, monkeypatch):
    import io
    import zipfile

    from PIL import Image

    from realfake.cli import main

    monkeypatch.chdir(tmp_path)
    frame = crafted(1200, seed=4)
    crops = []
    for face_id in frame["face_id"]:
        path = Path("data/faces/x") / f"{face_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (int(face_id[1:]) % 256, 0, 0)).save(path)
        crops.append(str(path))
    frame["crop_path"] = crops
    Path("data").mkdir(exist_ok=True)
    frame.to_parquet("data/metadata.parquet")
    main(["export-mini", "--per-class", "60", "--out", "mini.zip"])
    with zipfile.ZipFile("mini.zip") as zf:
        names = set(zf.namelist())
        mini = pd.read_parquet(io.BytesIO(zf.read("metadata.parquet")))
        assert "README.md" in names
        for row in mini.itertuples():
            assert row.file in names
            assert zf.read(row.file) == Path(row.crop_path).read_bytes()
    counts = mini["label"].value_counts()
    assert counts["real"] == counts["fake"] == 60
    per_stratum = mini.groupby(["stratum", "label"]).size().unstack()
    assert (per_stratum["real"] == per_stratum["fake"]).all()
    original = frame.set_index("face_id").loc[mini["face_id"]]
    assert list(mini["source"]) == list(original["source"])


def test_export_mini_without_metadata_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from realfake.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["export-mini", "--out", "mini.zip"])
    assert exc.value.code == 2


@pytest.mark.parametrize("held", ["tpdne", "lfw"])
def test_holdout_source_never_reaches_train_val_or_test(held):
    from realfake.sample_stage import split_table

    frame = crafted(1200, seed=5)
    cfg = SampleConfig(**{**CFG.__dict__, "holdout_source": held})
    table, _ = split_table(frame, cfg)
    hold = table[table["split"] == "holdout"]
    assert (hold["source"] == held).sum() == (frame["source"] == held).sum()
    placed = table[table["split"].isin(["train", "val", "test"])]
    assert held not in set(placed["source"])
    assert set(hold["split_group"]).isdisjoint(placed["split_group"])
    if held == "tpdne":  # a fake source comes with at least as many held-out reals, for an AUC
        assert (hold["label"] == "real").sum() >= (hold["label"] == "fake").sum()
    else:
        assert (hold["label"] == "fake").sum() == 0
    assert len(table) == len(frame)
