"""Where the detector fails and for whom: per-source, per-group and per-bin error rates, and the honest pair.

Input is one DataFrame of scored faces (`y` 0 real / 1 fake, `p_fake`) joined to `data/metadata.parquet`.
Every column name this module reads sits in `Columns`, so a renamed metadata column is a one-line change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from realfake.evaluation.metrics import binary_metrics

NAN = float("nan")


@dataclass(frozen=True)
class Columns:
    """The column names breakdowns read (scores table + metadata)."""

    face_id: str = "face_id"
    y: str = "y"
    score: str = "p_fake"
    source: str = "source"
    demographics: tuple[str, ...] = ("gender", "age_group", "race_group", "skin_tone")
    yaw: str = "yaw"
    quality: tuple[str, ...] = ("sharpness", "jpeg_quality")


@dataclass(frozen=True)
class BreakdownConfig:
    """Binning and the minimum group size for the disparity ratio."""

    yaw_edges: tuple[float, ...] = (0, 15, 30, 45, 180)
    quality_quantiles: int = 4
    min_group: int = 20  # groups smaller than this are reported but left out of disparity ratios
    honest_real: str = "ffhq"
    honest_fake: str = "stylegan-140k"
    cols: Columns = field(default_factory=Columns)


def attach_metadata(scores: pd.DataFrame, metadata: pd.DataFrame, cols: Columns = Columns()) -> tuple[pd.DataFrame, int]:
    """Left-join scores to metadata by face_id; returns the frame and how many faces had no metadata row."""
    meta = metadata.drop(columns=[c for c in (cols.y, cols.score) if c in metadata.columns])
    dup = [c for c in meta.columns if c in scores.columns and c != cols.face_id]
    merged = scores.merge(meta.drop(columns=dup), on=cols.face_id, how="left", indicator=True)
    missing = int((merged["_merge"] == "left_only").sum())
    return merged.drop(columns="_merge"), missing


def group_rates(df: pd.DataFrame, by: str, threshold: float, cols: Columns = Columns()) -> pd.DataFrame:
    """Per value of `by`: n, n_real, n_fake, accuracy, FPR (real called fake), FNR (fake called real), AUC."""
    rows = []
    keys = df[by].astype("object").where(df[by].notna(), "(missing)")
    for key, part in df.groupby(keys, sort=True, observed=True):
        m = binary_metrics(part[cols.y].to_numpy(), part[cols.score].to_numpy(), threshold)
        rows.append({by: str(key), "n": m["n"], "n_real": m["n_real"], "n_fake": m["n_fake"],
                     "accuracy": m["accuracy"], "fpr": m["fpr"], "fnr": m["fnr"], "roc_auc": m["roc_auc"]})
    return pd.DataFrame(rows, columns=[by, "n", "n_real", "n_fake", "accuracy", "fpr", "fnr", "roc_auc"])


def per_source(df: pd.DataFrame, threshold: float, cols: Columns = Columns()) -> pd.DataFrame:
    """Accuracy per source and, per class, the error rate (FPR on real rows, FNR on fake rows)."""
    return group_rates(df, cols.source, threshold, cols)


def disparity(rates: pd.DataFrame, by: str, min_group: int = 20) -> dict[str, Any]:
    """Largest ratio max/min across groups (n >= min_group) of accuracy, FPR and FNR, and which is largest.

    A ratio over a zero rate is infinite (reported as None in JSON) with a note; groups labelled
    "(missing)" are left out, since they are not a group of people.
    """
    eligible = rates[(rates["n"] >= min_group) & (rates[by] != "(missing)")]
    out: dict[str, Any] = {"groups_compared": eligible[by].tolist(), "min_group": min_group, "notes": []}
    if len(eligible) < 2:
        out.update(largest_ratio=NAN, largest_metric=None)
        out["notes"].append(f"fewer than 2 groups with >= {min_group} faces")
        return out
    best_metric, best_ratio = None, -1.0
    for metric in ("accuracy", "fpr", "fnr"):
        values = eligible[[by, metric]].dropna()
        if len(values) < 2:
            out[metric] = {"ratio": NAN}
            continue
        hi, lo = values.loc[values[metric].idxmax()], values.loc[values[metric].idxmin()]
        ratio = float(hi[metric] / lo[metric]) if lo[metric] > 0 else (1.0 if hi[metric] == 0 else math.inf)
        if math.isinf(ratio):
            out["notes"].append(f"{metric}: group {lo[by]!r} has a zero rate, ratio is infinite")
        out[metric] = {"ratio": ratio, "max_group": hi[by], "max": float(hi[metric]),
                       "min_group": lo[by], "min": float(lo[metric])}
        if ratio > best_ratio:
            best_metric, best_ratio = metric, ratio
    out.update(largest_ratio=best_ratio if best_metric else NAN, largest_metric=best_metric)
    return out


def bin_column(values: pd.Series, edges: tuple[float, ...] | None = None, quantiles: int | None = None) -> pd.Series:
    """Bin a numeric column by fixed edges or by quantiles; labels are the interval strings."""
    numeric = pd.to_numeric(values, errors="coerce").astype("float64")
    if edges is not None:
        binned = pd.cut(numeric, bins=list(edges), include_lowest=True)
    else:
        if numeric.notna().sum() == 0:
            return pd.Series(pd.NA, index=values.index, dtype="object")
        binned = pd.qcut(numeric, q=quantiles, duplicates="drop")
    return binned.astype("object").map(lambda iv: pd.NA if pd.isna(iv) else f"{iv.left:g}–{iv.right:g}")


def honest_pair(df: pd.DataFrame, threshold: float, real_source: str = "ffhq", fake_source: str = "stylegan-140k",
                cols: Columns = Columns()) -> dict[str, Any]:
    """Accuracy on each of the two same-pipeline sources and the AUC of the pair (real source vs fake source)."""
    notes: list[str] = []
    out: dict[str, Any] = {"real_source": real_source, "fake_source": fake_source, "threshold": float(threshold)}
    parts = {}
    for role, name in (("real", real_source), ("fake", fake_source)):
        part = df[df[cols.source].astype("object") == name]
        parts[role] = part
        m = binary_metrics(part[cols.y].to_numpy(), part[cols.score].to_numpy(), threshold)
        out[f"{role}_n"] = m["n"]
        out[f"{role}_accuracy"] = m["accuracy"]
        if not m["n"]:
            notes.append(f"source {name!r} absent from the scored faces")
    pair = pd.concat([parts["real"], parts["fake"]])
    pm = binary_metrics(pair[cols.y].to_numpy(), pair[cols.score].to_numpy(), threshold)
    out["pair_auc"] = pm["roc_auc"]
    out["pair_balanced_accuracy"] = pm["balanced_accuracy"]
    if math.isnan(pm["roc_auc"]) and not notes:
        notes.append("the pair holds one class only: AUC is NaN")
    out["notes"] = notes
    return out


def table_records(rates: pd.DataFrame) -> list[dict[str, Any]]:
    """A rates table as JSON-ready records."""
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in rates.to_dict(orient="records")]


def breakdowns(df: pd.DataFrame, threshold: float, cfg: BreakdownConfig = BreakdownConfig()) -> dict[str, Any]:
    """Every breakdown at one threshold: per source, demographics (+ disparity), pose, quality, honest pair."""
    cols = cfg.cols
    out: dict[str, Any] = {"threshold": float(threshold), "notes": []}
    out["per_source"] = table_records(per_source(df, threshold, cols))
    out["demographics"] = {}
    for attr in cols.demographics:
        if attr not in df.columns:
            out["notes"].append(f"column {attr!r} missing: no {attr} breakdown")
            continue
        rates = group_rates(df, attr, threshold, cols)
        out["demographics"][attr] = {"groups": table_records(rates), "disparity": disparity(rates, attr, cfg.min_group)}
    binned = {}
    if cols.yaw in df.columns:
        binned["abs_yaw"] = bin_column(df[cols.yaw].abs(), edges=cfg.yaw_edges)
    for col in cols.quality:
        if col in df.columns:
            binned[col] = bin_column(df[col], quantiles=cfg.quality_quantiles)
    out["bins"] = {}
    for name, series in binned.items():
        rates = group_rates(df.assign(**{f"{name}_bin": series}), f"{name}_bin", threshold, cols)
        out["bins"][name] = table_records(rates)
    out["honest_pair"] = honest_pair(df, threshold, cfg.honest_real, cfg.honest_fake, cols)
    return out


def side_by_side(df: pd.DataFrame, models: dict[str, tuple[str, float]], by: str = "source",
                 cols: Columns = Columns()) -> pd.DataFrame:
    """One row per group, each model's accuracy beside the others': models = {name: (score column, threshold)}.

    This is the table where the CNN, the spectral baseline and the file-level audit meet per source.
    """
    merged: pd.DataFrame | None = None
    for name, (score_col, threshold) in models.items():
        rates = group_rates(df.assign(**{cols.score: df[score_col]}), by, threshold, cols)
        rates = rates[[by, "n", "n_real", "n_fake", "accuracy"]].rename(columns={"accuracy": f"{name}_accuracy"})
        merged = rates if merged is None else merged.merge(rates[[by, f"{name}_accuracy"]], on=by, how="outer")
    return merged if merged is not None else pd.DataFrame(columns=[by])
