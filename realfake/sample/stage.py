"""The `sample` stage: balanced selection, the split, the packed arrays and the report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from realfake.core.atomic import write_json, write_parquet
from realfake.sample.packing import pack_split
from realfake.sample.sampling import (
    SPLITS,
    SampleConfig,
    balanced_sample,
    carve_holdout,
    leakage_counts,
    make_splits,
    stratum_keys,
    tv_distance,
)

log = logging.getLogger(__name__)


def split_table(metadata: pd.DataFrame, cfg: SampleConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every metadata row with its split, or no split and the reason it was left out."""
    pool, held = carve_holdout(metadata, cfg)
    result = balanced_sample(pool, cfg)
    placed = make_splits(result.selected, cfg)
    unplaced = result.unselected.assign(split=pd.array([pd.NA] * len(result.unselected), dtype="string"))
    held = held.assign(split="holdout", stratum=stratum_keys(held, cfg.strata),
                       exclude_reason=pd.array([pd.NA] * len(held), dtype="string"))
    table = pd.concat([part for part in (placed, unplaced, held) if len(part)], ignore_index=True)
    table = table.sort_values("face_id", kind="stable").reset_index(drop=True)
    # null outside the holdout split (the column is absent from placed/unplaced, or all-NA when nothing is held)
    table["holdout_for"] = table.get("holdout_for", pd.Series(pd.NA, index=table.index)).astype("string")
    info = {"dropped_strata": result.dropped_strata, "merged_strata": result.merged_strata}
    return table, info


def sample_report(metadata: pd.DataFrame, table: pd.DataFrame, cfg: SampleConfig, info: dict) -> dict[str, Any]:
    """metrics/sample.json: counts, distribution distances before/after, dropped strata, leakage checks."""
    placed = table[table["split"].isin(SPLITS)]
    fine = stratum_keys(placed, cfg.strata)
    counts = placed.groupby(["split", "label", "source"], observed=True).size()
    report = {
        "in": len(metadata),
        "placed": len(placed),
        "held_out": int((table["split"] == "holdout").sum()),
        "holdout": holdout_counts(table, cfg),
        "excluded": int(table["split"].isna().sum()),
        "excluded_by_reason": table["exclude_reason"].dropna().value_counts().sort_index().to_dict(),
        "counts": {s: {lab: counts[s][lab].to_dict() for lab in counts[s].index.get_level_values(0).unique()}
                   for s in SPLITS if s in counts.index.get_level_values(0)},
        "split_sizes": {s: {lab: int(((placed["split"] == s) & (placed["label"] == lab)).sum())
                            for lab in ("real", "fake")} for s in SPLITS},
        "tv_distance": {
            "before": tv_distance(metadata, stratum_keys(metadata, cfg.strata)),
            "after": tv_distance(placed, fine),
            "after_sampling_strata": tv_distance(placed, placed["stratum"]),
            **{f"{col}_before": tv_distance(metadata, stratum_keys(metadata, (col,))) for col in cfg.strata},
            **{f"{col}_after": tv_distance(placed, stratum_keys(placed, (col,))) for col in cfg.strata},
        },
        "dropped_strata": info["dropped_strata"],
        "dropped_strata_count": len(info["dropped_strata"]),
        "dropped_faces": int(sum(info["dropped_strata"].values())),
        "merged_strata_count": len(info["merged_strata"]),
        "leakage": leakage_counts(table),
    }
    assert report["in"] == report["placed"] + report["held_out"] + report["excluded"], report
    assert report["held_out"] == sum(sum(c.values()) for c in report["holdout"]["per_source"].values()), report
    return report


def holdout_counts(table: pd.DataFrame, cfg: SampleConfig) -> dict[str, Any]:
    """Held-out faces by class, and by the held-out source they count for (matched reals under their fake)."""
    held = table[table["split"] == "holdout"]
    if held["holdout_for"].isna().any():
        raise AssertionError(f"{int(held['holdout_for'].isna().sum())} held-out faces have no holdout_for")
    by_label = held["label"].astype(str).value_counts().reindex(["real", "fake"], fill_value=0)
    per = held.groupby([held["holdout_for"].astype(str), held["label"].astype(str)]).size()
    return {
        "sources": list(cfg.held_out),
        **{lab: int(n) for lab, n in by_label.items()},
        "per_source": {name: {lab: int(per.get((name, lab), 0)) for lab in ("real", "fake")}
                       for name in cfg.held_out},
    }


def distribution_plot(metadata: pd.DataFrame, placed: pd.DataFrame, strata: tuple[str, ...]) -> pd.DataFrame:
    """Long table of the share of each class per attribute value, before and after sampling (a DVC plot)."""
    rows = []
    for phase, frame in (("before", metadata), ("after", placed)):
        for col in strata:
            share = pd.crosstab(stratum_keys(frame, (col,)), frame["label"], normalize="columns")
            for value, rec in share.iterrows():
                for label in ("real", "fake"):
                    rows.append({"attribute": col, "value": f"{col}={value}", "label": label, "phase": phase,
                                 "series": f"{label} {phase}", "share": round(float(rec.get(label, 0.0)), 4)})
    return pd.DataFrame(rows)


def run_sample(metadata_path: Path, cfg: SampleConfig, size: int, out_dir: Path, splits_path: Path,
               metrics_path: Path, plot_path: Path) -> dict[str, Any]:
    """Select, split, pack and report."""
    metadata = pd.read_parquet(metadata_path)
    table, info = split_table(metadata, cfg)
    for split in (*SPLITS, "holdout"):
        rows = table[table["split"] == split].assign(path=lambda d: d["resized_path"], group=lambda d: d["split_group"])
        pack_split(rows, size, out_dir / f"{split}.npy", out_dir / f"{split}.parquet")
    keep = ["face_id", "source", "label", "split_group", "stratum", "split", "exclude_reason", "holdout_for"]
    write_parquet(table[keep].astype({"stratum": "string", "split": "string", "exclude_reason": "string"}),
                  splits_path)
    report = sample_report(metadata, table, cfg, info)
    write_json(metrics_path, report)
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    distribution_plot(metadata, table[table["split"].isin(SPLITS)], cfg.strata).to_csv(plot_path, index=False)
    log.info("sample: %s; TV distance %.3f -> %.3f; leakage %s", report["split_sizes"],
             report["tv_distance"]["before"], report["tv_distance"]["after"], report["leakage"])
    return report
