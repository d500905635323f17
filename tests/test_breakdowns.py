"""realfake.evaluation.breakdowns: the honest pair on exactly its two sources, disparity ratios, bins, tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from realfake.core.tables import markdown_table
from realfake.evaluation import breakdowns as B
from realfake.evaluation.metrics import to_jsonable

SOURCES = {"ffhq": 0, "lfw": 0, "utkface": 0, "stylegan-140k": 1, "tpdne": 1, "generated-faces": 1}


def scored_frame(seed: int = 0, n_per_source: int = 60) -> pd.DataFrame:
    """Scored faces of several sources, each with its own score quality, plus metadata columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for source, y in SOURCES.items():
        spread = 0.45 if source in ("ffhq", "stylegan-140k") else 0.15  # the pair is hard, the rest easy
        p = np.clip(0.5 + (0.25 if y else -0.25) + rng.normal(0, spread, n_per_source), 0, 1)
        for i, score in enumerate(p):
            rows.append({"face_id": f"{source}-{i}", "source": source, "y": y, "p_fake": float(score)})
    df = pd.DataFrame(rows)
    n = len(df)
    df["gender"] = rng.choice(["female", "male"], n)
    df["age_group"] = rng.choice(["0-19", "20-39", "40+"], n)
    df["race_group"] = rng.choice(["white", "black", "asian"], n)
    df["skin_tone"] = pd.Categorical(rng.choice(["light", "medium", "dark"], n))
    df["yaw"] = rng.uniform(-60, 60, n)
    df["sharpness"] = rng.gamma(2, 50, n)
    df["jpeg_quality"] = rng.choice([75, 90, 95], n)
    return df


def test_honest_pair_uses_exactly_the_two_sources():
    df = scored_frame()
    pair = df[df.source.isin(["ffhq", "stylegan-140k"])]
    out = B.honest_pair(df, 0.5)
    ffhq, sg = pair[pair.source == "ffhq"], pair[pair.source == "stylegan-140k"]
    assert out["real_accuracy"] == pytest.approx(((ffhq.p_fake < 0.5)).mean())
    assert out["fake_accuracy"] == pytest.approx(((sg.p_fake >= 0.5)).mean())
    assert out["pair_auc"] == pytest.approx(skm.roc_auc_score(pair.y, pair.p_fake))
    assert out["real_n"] == len(ffhq) and out["fake_n"] == len(sg)
    # scores of every other source do not move it
    other = df.copy()
    mask = ~other.source.isin(["ffhq", "stylegan-140k"])
    other.loc[mask, "p_fake"] = 1 - other.loc[mask, "p_fake"]
    assert B.honest_pair(other, 0.5) == out
    # and it is not the overall AUC
    assert out["pair_auc"] != pytest.approx(skm.roc_auc_score(df.y, df.p_fake))


def test_honest_pair_absent_source_is_nan_with_a_note():
    df = scored_frame()
    out = B.honest_pair(df[df.source != "stylegan-140k"], 0.5)
    assert math.isnan(out["fake_accuracy"]) and math.isnan(out["pair_auc"])
    assert any("stylegan-140k" in n for n in out["notes"])
    assert out["real_n"] == 60


def test_disparity_ratio_of_error_rates():
    rates = pd.DataFrame({
        "g": ["a", "b", "c", "(missing)", "tiny"],
        "n": [100, 100, 100, 100, 3],
        "accuracy": [0.9, 0.8, 0.6, 0.1, 0.0],
        "fpr": [0.1, 0.3, 0.2, 0.9, 1.0],
        "fnr": [0.05, 0.05, 0.2, 0.9, 1.0],
    })
    d = B.disparity(rates, "g", min_group=20)
    assert d["groups_compared"] == ["a", "b", "c"]  # tiny and (missing) left out
    assert d["fpr"]["ratio"] == pytest.approx(3.0) and d["fpr"]["max_group"] == "b" and d["fpr"]["min_group"] == "a"
    assert d["fnr"]["ratio"] == pytest.approx(4.0)
    assert d["accuracy"]["ratio"] == pytest.approx(1.5)
    assert d["largest_metric"] == "fnr" and d["largest_ratio"] == pytest.approx(4.0)


def test_disparity_zero_rate_is_infinite_with_a_note():
    rates = pd.DataFrame({"g": ["a", "b"], "n": [50, 50], "accuracy": [1.0, 0.9], "fpr": [0.0, 0.2], "fnr": [0.0, 0.0]})
    d = B.disparity(rates, "g")
    assert math.isinf(d["fpr"]["ratio"]) and d["fnr"]["ratio"] == 1.0
    assert any("fpr" in n for n in d["notes"])
    assert to_jsonable(d)["fpr"]["ratio"] is None


def test_per_source_error_rates_per_class():
    df = pd.DataFrame({"source": ["a"] * 4 + ["b"] * 4, "y": [0, 0, 0, 0, 1, 1, 1, 1],
                       "p_fake": [0.1, 0.9, 0.2, 0.3, 0.9, 0.8, 0.1, 0.7]})
    rates = B.per_source(df, 0.5).set_index("source")
    assert rates.loc["a", "fpr"] == 0.25 and rates.loc["a", "accuracy"] == 0.75 and math.isnan(rates.loc["a", "fnr"])
    assert rates.loc["b", "fnr"] == 0.25 and math.isnan(rates.loc["b", "fpr"])


def test_breakdowns_cover_every_face_and_serialise():
    df = scored_frame(seed=4)
    df.loc[df.index[:7], "gender"] = None
    out = B.breakdowns(df, 0.5)
    assert sum(r["n"] for r in out["per_source"]) == len(df)
    for attr in ("gender", "age_group", "race_group", "skin_tone"):
        groups = out["demographics"][attr]["groups"]
        assert sum(g["n"] for g in groups) == len(df)  # nothing lost, missing values get their own row
    assert {"(missing)"} <= {g["gender"] for g in out["demographics"]["gender"]["groups"]}
    assert sum(r["n"] for r in out["bins"]["abs_yaw"]) == len(df)
    assert len(out["bins"]["sharpness"]) == 4
    json.dumps(to_jsonable(out), allow_nan=False)


def test_breakdowns_note_missing_columns():
    df = scored_frame().drop(columns=["race_group", "yaw"])
    out = B.breakdowns(df, 0.5)
    assert "race_group" not in out["demographics"] and "abs_yaw" not in out["bins"]
    assert any("race_group" in n for n in out["notes"])


def test_attach_metadata_counts_missing():
    scores = pd.DataFrame({"face_id": ["a", "b", "c"], "y": [0, 1, 1], "p_fake": [0.1, 0.8, 0.4], "source": ["x", "y", "y"]})
    meta = pd.DataFrame({"face_id": ["a", "b"], "gender": ["male", "female"], "source": ["x", "y"]})
    merged, missing = B.attach_metadata(scores, meta)
    assert missing == 1 and len(merged) == 3 and list(merged.gender[:2]) == ["male", "female"]


def test_markdown_table():
    text = markdown_table([{"source": "ffhq", "accuracy": 0.51234, "fpr": float("nan")}])
    assert text.splitlines() == ["| source | accuracy | fpr |", "|---|---|---|", "| ffhq | 0.512 | — |"]


def test_side_by_side_puts_each_model_per_source():
    df = scored_frame(seed=5)
    df["p_audit"] = df["y"].astype(float)  # a perfect non-face model
    table = B.side_by_side(df, {"cnn": ("p_fake", 0.5), "audit": ("p_audit", 0.5)}).set_index("source")
    assert set(table.index) == set(SOURCES) and (table["audit_accuracy"] == 1.0).all()
    ffhq = df[df.source == "ffhq"]
    assert table.loc["ffhq", "cnn_accuracy"] == pytest.approx((ffhq.p_fake < 0.5).mean())
    assert table["n"].sum() == len(df)
