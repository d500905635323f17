"""Balanced sampling and the group-aware split on crafted tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.sample.config import SampleConfig
from realfake.sample.sampling import (
    balanced_sample,
    carve_holdout,
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


CFG = SampleConfig(strata=("gender", "age_group", "race_group"), min_per_stratum=3, seed=7, holdout_sources=())


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

    from realfake.sample.packing import open_packed
    from realfake.sample.stage import run_sample

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
    cfg = SampleConfig(strata=("gender", "age_group"), min_per_stratum=2, seed=0, holdout_sources=(),
                       view="aligned")  # the resized images: no crops stage here
    report = run_sample(Path("metadata.parquet"), cfg, 16, Path("packed"), Path("splits.parquet"),
                        Path("sample.json"), Path("plots"))
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
    for name in ("real_before", "fake_before", "real_after", "fake_after"):
        shares = pd.read_csv(f"plots/{name}.csv")
        assert shares["share"].between(0, 1).all()
        # one row per attribute value in each file: a DVC bar chart then draws one bar per value, not a stack
        assert not shares["value"].duplicated().any() and len(shares) > 1
    headline = json.loads(Path("sample.json").read_text())
    assert headline["in"] == headline["kept"] + headline["rejected"] == 240 and headline["leakage"] == 0


def tiny_pngs(frame: pd.DataFrame, folder: Path) -> list[str]:
    """One 8x8 PNG per face in `folder`, coloured by its id; their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for face_id in frame["face_id"]:
        Image.new("RGB", (8, 8), (int(face_id[1:]) % 256, 0, 0)).save(folder / f"{face_id}.png")
    return [str(folder / f"{f}.png") for f in frame["face_id"]]


@pytest.mark.slow  # builds and reads back a ZIP of images (~4 s here)
def test_export_mini_is_balanced_complete_and_round_trips(tmp_path, monkeypatch):
    import io
    import zipfile

    from realfake.cli import main

    monkeypatch.chdir(tmp_path)
    frame = crafted(1200, seed=4)
    frame["crop_path"] = tiny_pngs(frame, Path("data/faces/x"))
    frame["raw_path"] = [f"data/raw/x/{f}.jpg" for f in frame["face_id"]]
    # columns the docs describe only beside a neighbour (pred/conf, value/from) and the sample's quality bands
    frame["gender_pred"], frame["gender_conf"], frame["gender_from"] = frame["gender"], 0.9, "model"
    frame["face_px_band"] = "face_px<114.61"
    Path("data").mkdir(exist_ok=True)
    frame.to_parquet("data/metadata.parquet")
    Path("params.yaml").write_text("data:\n  profile: mirror\n")
    main(["export-mini", "--per-class", "60", "--out", "mini.zip"])
    crops = frame.set_index("face_id")["crop_path"]
    with zipfile.ZipFile("mini.zip") as zf:
        names = set(zf.namelist())
        mini = pd.read_parquet(io.BytesIO(zf.read("metadata.parquet")))
        assert {"README.md", "DATA_DICTIONARY.md"} <= names
        for row in mini.itertuples():
            assert row.file in names
            assert zf.read(row.file) == Path(crops[row.face_id]).read_bytes()
        # every path the table holds is a file of the archive: the producer's data/ paths are not
        paths = [c for c in mini.columns if "path" in c or c == "file"]
        assert paths == ["file"], paths
        card, dictionary = zf.read("README.md").decode(), zf.read("DATA_DICTIONARY.md").decode()
        licence = zf.read("LICENCES.md").decode()  # the file the card points to is in the archive
    assert "DATA_DICTIONARY.md" in card and "`LICENCES.md`" in card and "data/sample/README.md" not in card
    assert "FFHQ" in licence and "UTKFace" in licence and "non-commercial" in licence
    assert "`mirror` data profile" in card
    described = {line.split("`")[1]: line for line in dictionary.splitlines() if line.startswith("| `")}
    assert set(described) == set(mini.columns)
    assert "not described" not in described["face_id"] and "not described" not in described["file"]
    meaning = {name: line.rsplit("|", 2)[-2].strip() for name, line in described.items()}
    assert not [c for c, m in meaning.items() if "not described" in m]
    assert meaning["gender_conf"] != meaning["gender_pred"] and "probability" in meaning["gender_conf"]
    assert meaning["gender_from"] != meaning["gender"] and "`model`" in meaning["gender_from"]
    assert "quality band of `face_px`" in meaning["face_px_band"]
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
    from realfake.sample.stage import split_table

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


def two_holdouts(frame: pd.DataFrame, **extra) -> SampleConfig:
    """CFG with a real source always held out (holdout_sources) and a fake one switched on (holdout_source)."""
    return SampleConfig(**{**CFG.__dict__, "holdout_sources": ("lfw",), "holdout_source": "tpdne", **extra})


def smaller_tpdne(seed: int) -> pd.DataFrame:
    """crafted() with half of tpdne moved to sg, so the free reals can match tpdne's fakes."""
    frame = crafted(1200, seed=seed)
    tpdne = frame.index[frame["source"] == "tpdne"]
    frame.loc[tpdne[::2], "source"] = "sg"
    return frame


def test_a_real_and_a_fake_source_held_out_at_once():
    from realfake.sample.stage import split_table

    frame = smaller_tpdne(6)
    table, _ = split_table(frame, two_holdouts(frame))
    hold = table[table["split"] == "holdout"]
    placed = table[table["split"].isin(["train", "val", "test"])]
    assert len(table) == len(frame) and table["face_id"].is_unique
    assert {"lfw", "tpdne"}.isdisjoint(placed["source"])
    assert set(hold["split_group"]).isdisjoint(table.loc[table["split"] != "holdout", "split_group"])
    for name in ("lfw", "tpdne"):  # every face of a held-out source counts for it
        assert (hold["source"] == name).sum() == (frame["source"] == name).sum()
        assert (hold.loc[hold["source"] == name, "holdout_for"] == name).all()
    matched = hold[hold["source"] != hold["holdout_for"]]
    assert (matched["holdout_for"] == "tpdne").all() and (matched["label"] == "real").all()
    assert set(matched["source"]) == {"utkface"}  # drawn from reals that are not held out themselves
    assert len(matched) == (frame["source"] == "tpdne").sum()  # utkface groups are single faces: an exact match
    assert table.loc[table["split"] != "holdout", "holdout_for"].isna().all()


def test_matched_reals_are_seeded_whole_groups_and_duplicates_are_harmless():
    from realfake.sample.stage import split_table

    frame = smaller_tpdne(6)
    frame.loc[frame["source"] == "utkface", "split_group"] = [
        f"utk:p{i // 3}" for i in range((frame["source"] == "utkface").sum())]  # people with 3 photos each

    def matched(cfg: SampleConfig) -> pd.DataFrame:
        hold = split_table(frame, cfg)[0].query("split == 'holdout'")
        return hold[hold["source"] != hold["holdout_for"]]

    first = matched(two_holdouts(frame))
    again = matched(two_holdouts(frame, holdout_sources=("tpdne", "lfw", "lfw")))
    assert first["face_id"].tolist() == again["face_id"].tolist()
    other = matched(two_holdouts(frame, seed=CFG.seed + 1))
    assert set(other["face_id"]) != set(first["face_id"])
    in_groups = frame[frame["split_group"].isin(first["split_group"])]
    assert set(in_groups["face_id"]) == set(first["face_id"])  # whole groups only
    need = (frame["source"] == "tpdne").sum()
    assert need <= len(first) < need + 3


def test_groups_mixing_labels_are_never_matched_reals_and_go_whole_with_their_source():
    from realfake.sample.stage import split_table

    frame = smaller_tpdne(7)
    utk, sg = frame.index[frame["source"] == "utkface"], frame.index[frame["source"] == "sg"]
    pairs = [f"orig{i}" for i in range(150)]  # DFDC-like: an original and its face swap share a group
    frame.loc[utk[:150], "split_group"] = pairs
    frame.loc[sg[:150], "split_group"] = pairs
    cfg = SampleConfig(**{**CFG.__dict__, "holdout_sources": ("sg",), "holdout_source": "tpdne"})
    table, _ = split_table(frame, cfg)
    hold = table[table["split"] == "holdout"]
    # sg takes its originals along (as its matched reals); tpdne's matched reals come only from all-real groups
    assert set(hold.loc[hold["split_group"].isin(pairs), "holdout_for"]) == {"sg"}
    tp = hold[hold["holdout_for"] == "tpdne"]
    assert set(tp.loc[tp["label"] == "fake", "source"]) == {"tpdne"}
    assert not tp["split_group"].isin(pairs).any()
    sg_reals = hold[(hold["holdout_for"] == "sg") & (hold["label"] == "real")]
    n_sg, biggest = (frame["source"] == "sg").sum(), frame["split_group"].value_counts().max()
    assert n_sg <= len(sg_reals) < n_sg + biggest  # 150 originals + random whole real groups up to the fakes' count


def test_too_few_free_reals_are_all_matched_and_the_shortfall_is_logged(caplog):
    frame = crafted(1200, seed=6)  # tpdne has more fakes than utkface has reals once lfw is held out
    pool, held = carve_holdout(frame, two_holdouts(frame))
    assert "utkface" not in set(pool["source"]) and "only 288 free real faces" in caplog.text
    assert (held.loc[held["source"] == "utkface", "holdout_for"] == "tpdne").all()


def test_holdout_sources_from_params_and_bad_names():
    from realfake.core.errors import UserError
    from realfake.sample.stage import split_table

    def load(section):
        return load_section(SampleConfig, {"sample": section}, "sample")

    assert load({"holdout_sources": ["lfw"], "holdout_source": "lfw"}).held_out == ("lfw",)
    assert load({"holdout_sources": ["lfw", "tpdne"], "holdout_source": None}).held_out == ("lfw", "tpdne")
    with pytest.raises(UserError, match="sample.holdout_sources must be a list of strings"):
        load({"holdout_sources": "lfw"})  # validated, not coerced: a bare name is not a list
    with pytest.raises(ValueError, match="no-such-source"):
        split_table(crafted(200), SampleConfig(**{**CFG.__dict__, "holdout_sources": ("lfw", "no-such-source")}))
    with pytest.raises(UserError, match="must be a list of strings"):
        load({"holdout_sources": [3]})
    with pytest.raises(UserError, match="must be source names"):
        load({"holdout_sources": [""]})
    with pytest.raises(UserError, match="summing to 1"):
        load({"fractions": {"train": 0.8, "val": 0.15, "test": 0.15}})
    with pytest.raises(UserError, match="unknown key 'vall'"):
        load({"fractions": {"train": 0.7, "vall": 0.15, "test": 0.15}})


def test_sample_stage_packs_the_holdout_with_its_sources_and_reconciles(tmp_path, monkeypatch):

    from realfake.sample.stage import run_sample

    monkeypatch.chdir(tmp_path)
    frame = crafted(240, seed=8)
    frame["resized_path"] = tiny_pngs(frame, Path("data/resized/x"))
    frame.to_parquet("metadata.parquet")
    cfg = SampleConfig(strata=("gender",), min_per_stratum=2, seed=0, holdout_sources=("lfw",),
                       holdout_source="tpdne", view="aligned")
    report = run_sample(Path("metadata.parquet"), cfg, 8, Path("packed"), Path("splits.parquet"),
                        Path("sample.json"), Path("plots"))
    holdout = pd.read_parquet("packed/holdout.parquet")
    splits = pd.read_parquet("splits.parquet")
    assert set(holdout["holdout_for"]) == {"lfw", "tpdne"}
    assert splits.set_index("face_id").loc[holdout["face_id"], "holdout_for"].tolist() == holdout[
        "holdout_for"].tolist()
    per = holdout.groupby(["holdout_for", "label"]).size()
    assert report["holdout"]["per_source"] == {
        "lfw": {"real": int(per["lfw", "real"]), "fake": 0},
        "tpdne": {"real": int(per["tpdne", "real"]), "fake": int(per["tpdne", "fake"])}}
    assert report["held_out"] == len(holdout) == (splits["split"] == "holdout").sum()
    assert report["in"] == 240 == report["placed"] + report["held_out"] + report["excluded"]
    for split in ("train", "val", "test"):
        table = pd.read_parquet(Path("packed") / f"{split}.parquet")
        assert table["holdout_for"].isna().all() and not {"lfw", "tpdne"} & set(table["source"])


def with_quality(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The crafted table plus quality measures that tell the classes apart: soft small reals, sharp large fakes."""
    rng = np.random.default_rng(seed)
    fake = (frame["label"] == "fake").to_numpy()
    return frame.assign(sharpness=np.exp(rng.normal(np.where(fake, 3.6, 2.2), 0.8)),
                        face_px=rng.normal(np.where(fake, 220, 150), 60).clip(64),
                        jpeg_quality=pd.array(np.where(rng.random(len(frame)) < 0.1, None, 75), dtype="Int16"))


def test_quality_strata_match_real_and_fake_within_quality_bands():
    from realfake.sample.quality_cells import band_column

    frame = with_quality(crafted(3000, seed=2))
    plain = balanced_sample(frame, CFG)
    matched_cfg = SampleConfig(**{**CFG.__dict__, "quality_strata": ("sharpness", "face_px")})
    matched = balanced_sample(frame, matched_cfg)
    assert set(plain.quality_edges) == set(matched.quality_edges) == {"sharpness", "face_px", "jpeg_quality"}
    assert len(plain.quality_edges["sharpness"]) == 4  # terciles over the pool: -inf, q1, q2, inf

    def tv(result, measure):
        sel = result.selected
        return tv_distance(sel, sel[band_column(measure)].fillna("unknown"))

    # measured on this table: sharpness 0.56 -> 0.06, face size 0.41 -> 0.15 (small strata merge the bands away)
    assert tv(plain, "sharpness") > 0.5 and tv(matched, "sharpness") < 0.1
    assert tv(plain, "face_px") > 0.35 and tv(matched, "face_px") < 0.2
    counts = matched.selected.groupby(["stratum", "label"]).size().unstack()
    assert (counts["real"] == counts["fake"]).all() and len(matched.selected) < len(plain.selected)
    demographic = tv_distance(matched.selected, stratum_keys(matched.selected, CFG.strata))
    assert demographic < 0.05  # quality_position last: the bands split demographic cells, never replace them
    first = balanced_sample(frame, SampleConfig(**{**matched_cfg.__dict__, "quality_position": "first"}))
    assert all(key.startswith("sharpness") for key in first.selected["stratum"] if key != "all")


def test_quality_params_are_validated():
    base = {"strata": ["gender"]}
    for bad, message in [({"quality_strata": ["sharpness"], "quality_bins": {}}, "need an entry"),
                         ({"quality_bins": {"sharpness": 1}}, "quantile bands"),
                         ({"quality_bins": {"sharpness": [3, 2]}}, "increasing"),
                         ({"quality_bins": {"mood": 3}}, "unknown measure"),
                         ({"quality_position": "middle"}, "one of first, last")]:
        with pytest.raises(UserError, match=message):
            load_section(SampleConfig, {"sample": {**base, **bad}}, "sample")
    cfg = load_section(SampleConfig, {"sample": {**base, "quality_strata": ["sharpness"]}}, "sample")
    assert cfg.all_strata == ("gender", "sharpness_band")
    with pytest.raises(UserError, match="no .sharpness. column"):
        balanced_sample(crafted(100), cfg)


def test_sample_report_gives_quality_tv_and_the_cost_of_balancing(tmp_path):
    from realfake.sample.stage import sample_report, split_table

    frame = with_quality(crafted(2000, seed=4))
    reports = {}
    for arm, strata in (("today", ()), ("quality", ("sharpness",))):
        cfg = SampleConfig(**{**CFG.__dict__, "quality_strata": strata})
        table, info = split_table(frame, cfg)
        reports[arm] = sample_report(frame, table, cfg, info)
    today, quality = reports["today"], reports["quality"]
    assert today["quality"]["tv_before"]["sharpness"] == quality["quality"]["tv_before"]["sharpness"] > 0.5
    assert quality["quality"]["tv_after"]["sharpness"] < 0.5 * today["quality"]["tv_after"]["sharpness"]
    assert quality["quality"]["edges"]["sharpness"][0] is None  # open lower band, JSON-safe
    for r in (today, quality):
        lost = r["lost_to_balancing"]
        assert lost["lost"] == lost["real"] + lost["fake"] == sum(
            r["excluded_by_reason"].get(k, 0) for k in ("stratum-too-small", "not-drawn", "balance-trim"))
    assert quality["lost_to_balancing"]["lost"] > today["lost_to_balancing"]["lost"]
