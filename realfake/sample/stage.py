"""The `sample` stage: balanced selection, the split, the packed arrays and the report."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from realfake.core.atomic import write_parquet, write_text
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.crops.views import write_view_record
from realfake.sample.config import SampleConfig
from realfake.sample.packing import pack_split
from realfake.sample.quality_cells import bands
from realfake.sample.sampling import (
    SPLITS,
    balanced_sample,
    carve_holdout,
    leakage_counts,
    make_splits,
    stratum_keys,
    tv_distance,
)
from realfake.sample.views import view_rows

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
    info = {"dropped_strata": result.dropped_strata, "merged_strata": result.merged_strata,
            "quality_edges": result.quality_edges}
    return table, info


def sample_report(metadata: pd.DataFrame, table: pd.DataFrame, cfg: SampleConfig, info: dict) -> dict[str, Any]:
    """reports/sample.json: counts, distribution distances before/after, dropped strata, leakage checks."""
    placed = table[table["split"].isin(SPLITS)]
    fine = stratum_keys(placed, cfg.strata)
    by_split = placed.groupby(["split", "label", "source"], observed=True).size()
    report = {
        "in": len(metadata),
        "placed": len(placed),
        "held_out": int((table["split"] == "holdout").sum()),
        "holdout": holdout_counts(table, cfg),
        "excluded": int(table["split"].isna().sum()),
        "excluded_by_reason": table["exclude_reason"].dropna().value_counts().sort_index().to_dict(),
        "counts": {s: {lab: by_split[s][lab].to_dict() for lab in by_split[s].index.get_level_values(0).unique()}
                   for s in SPLITS if s in by_split.index.get_level_values(0)},
        "split_sizes": {s: {lab: int(((placed["split"] == s) & (placed["label"] == lab)).sum())
                            for lab in ("real", "fake")} for s in SPLITS},
        "tv_distance": {
            "before": tv_distance(metadata, stratum_keys(metadata, cfg.strata)),
            "after": tv_distance(placed, fine),
            "after_sampling_strata": tv_distance(placed, placed["stratum"]),
            **{f"{col}_before": tv_distance(metadata, stratum_keys(metadata, (col,))) for col in cfg.strata},
            **{f"{col}_after": tv_distance(placed, stratum_keys(placed, (col,))) for col in cfg.strata},
        },
        "quality": quality_report(metadata, placed, cfg, info["quality_edges"]),
        "lost_to_balancing": balancing_cost(table),
        "dropped_strata": info["dropped_strata"],
        "dropped_strata_count": len(info["dropped_strata"]),
        "dropped_faces": int(sum(info["dropped_strata"].values())),
        "merged_strata_count": len(info["merged_strata"]),
        "leakage": leakage_counts(table),
    }
    assert report["in"] == report["placed"] + report["held_out"] + report["excluded"], report
    assert report["held_out"] == sum(sum(c.values()) for c in report["holdout"]["per_source"].values()), report
    return report


def quality_report(metadata: pd.DataFrame, placed: pd.DataFrame, cfg: SampleConfig,
                   edges: dict[str, list[float]]) -> dict[str, Any]:
    """Real-vs-fake TV distance over each quality measure's bands, before (all metadata) and after (placed)."""
    def tv(frame: pd.DataFrame, measure: str) -> float:
        return tv_distance(frame, bands(frame, measure, edges[measure]).fillna("unknown"))

    return {
        "strata": list(cfg.quality_strata),
        "position": cfg.quality_position,
        "edges": {m: [None if abs(v) == float("inf") else v for v in e] for m, e in edges.items()},
        "tv_before": {m: tv(metadata, m) for m in edges},
        "tv_after": {m: tv(placed, m) for m in edges},
    }


def balancing_cost(table: pd.DataFrame) -> dict[str, Any]:
    """Faces the balancing gave up: strata too small, not drawn (the larger class's surplus) and eval-split trims."""
    split, reason = table["split"].astype("object").fillna(""), table["exclude_reason"].astype("object").fillna("")
    eligible = table[(split != "holdout") & ~reason.isin(["excluded-source", "source-cap"])]
    lost = reason[eligible.index].isin(["stratum-too-small", "not-drawn", "balance-trim"])
    by = eligible.loc[lost, "label"].astype(str).value_counts().reindex(["real", "fake"], fill_value=0)
    return {"eligible": len(eligible), "lost": int(lost.sum()), "real": int(by["real"]), "fake": int(by["fake"]),
            "share": round(float(lost.mean()), 4) if len(eligible) else 0.0}


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


def distribution_plot(metadata: pd.DataFrame, placed: pd.DataFrame, strata: tuple[str, ...],
                      edges: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """Long table of the share of each class per attribute value (quality bands too), before and after sampling."""
    rows = []
    for phase, frame in (("before", metadata), ("after", placed)):
        for col in (*strata, *(edges or {})):
            values = (bands(frame, col, edges[col]).fillna("unknown") if col not in strata
                      else stratum_keys(frame, (col,)))
            share = pd.crosstab(values, frame["label"], normalize="columns")
            names = ({str(v): str(v) for v in share.index} if col in strata
                     else readable_bands([str(v) for v in share.index]))
            for value, rec in share.iterrows():
                # a band name already names its measure; an unmeasured face is '<measure> unknown'
                shown = (f"{col}={value}" if col in strata
                         else f"{col} unknown" if value == "unknown" else names[str(value)])
                for label in ("real", "fake"):
                    rows.append({"attribute": col, "value": shown, "label": label, "phase": phase,
                                 "share": round(float(rec.get(label, 0.0)), 4)})
    return pd.DataFrame(rows, columns=["attribute", "value", "label", "phase", "share"])


def _round_edge(text: str) -> str:
    """A band edge for a chart label: whole numbers from 10 up, 2 significant digits below."""
    value = float(text)
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


def readable_bands(names: list[str]) -> dict[str, str]:
    """Chart labels of quality band names: 'face_px<114.61' -> 'face_px < 115', 'face_px 114.61-240.3' ->
    'face_px 115–240', 'face_px>=240.3' -> 'face_px ≥ 240' (the exact edges where rounding would merge two)."""
    pattern = re.compile(r"^(?P<m>\S+?)(?:<(?P<hi>[-\d.e+]+)|>=(?P<lo>[-\d.e+]+)| (?P<a>[-\d.e+]+)-(?P<b>[-\d.e+]+))$")

    def label(name: str, edge) -> str:
        match = pattern.match(name)
        if match is None:
            return name
        m = match["m"]
        if match["hi"] is not None:
            return f"{m} < {edge(match['hi'])}"
        if match["lo"] is not None:
            return f"{m} ≥ {edge(match['lo'])}"
        return f"{m} {edge(match['a'])}–{edge(match['b'])}"

    rounded = {name: label(name, _round_edge) for name in names}
    if len(set(rounded.values())) < len(rounded):
        return {name: label(name, lambda t: t) for name in names}
    return rounded


def write_distribution_plots(table: pd.DataFrame, plots_dir: Path) -> list[Path]:
    """One CSV per class and phase (`<label>_<phase>.csv`: value, share) so a DVC bar chart draws one bar per value.

    A single long file would stack the four (class, phase) shares of a value into one bar.
    """
    paths = []
    for phase in ("before", "after"):
        for label in ("real", "fake"):
            part = table[(table["phase"] == phase) & (table["label"] == label)][["value", "share"]]
            path = plots_dir / f"{label}_{phase}.csv"
            write_text(path, part.to_csv(index=False))
            paths.append(path)
    return paths


def sample_headline(report: dict[str, Any]) -> dict[str, Any]:
    """metrics/sample.json: in = kept (placed or held out) + rejected (not drawn), and the balance achieved."""
    return {**counts(report["in"], report["placed"] + report["held_out"], report["excluded"]),
            "held_out": report["held_out"], "tv_after": report["tv_distance"]["after"],
            "quality_tv_after": max(report["quality"]["tv_after"].values(), default=None),
            "lost_to_balancing": report["lost_to_balancing"]["lost"],
            "leakage": sum(report["leakage"].values()),
            # faces placed in a split whose view (sample.view, sample.require_views) the crops stage rejected
            "not_packed": sum(p["rejected"] for p in report.get("view", {}).get("per_split", {}).values())}


def run_sample(metadata_path: Path, cfg: SampleConfig, size: int, out_dir: Path, splits_path: Path,
               metrics_path: Path, plots_dir: Path, report_path: Path | None = None,
               view: dict[str, Any] | None = None, crops_root: Path = Path("data/crops")) -> dict[str, Any]:
    """Select, split, pack and report (headline in metrics_path, details in report_path, plots in plots_dir).

    `view` (realfake.crops.views.view_record; None: aligned at `size`) picks the packed pixels, after the split.
    """
    metadata = pd.read_parquet(metadata_path)
    table, info = split_table(metadata, cfg)
    view = view or {"name": "aligned", "size": size}
    if view["name"] != cfg.view:
        raise ValueError(f"run_sample got the {view['name']!r} view record but sample.view is {cfg.view!r}")
    packed = {}
    for split in (*SPLITS, "holdout"):
        rows = table[table["split"] == split].assign(group=lambda d: d["split_group"])
        chosen = view_rows(rows, view["name"], crops_root, tuple(cfg.require_views))
        pack_split(chosen.rows, int(view["size"]), out_dir / f"{split}.npy", out_dir / f"{split}.parquet")
        packed[split] = chosen.report(len(rows))
    write_view_record(out_dir, view)
    keep = ["face_id", "source", "label", "split_group", "stratum", "split", "exclude_reason", "holdout_for"]
    write_parquet(table[keep].astype({"stratum": "string", "split": "string", "exclude_reason": "string"}),
                  splits_path)
    report = sample_report(metadata, table, cfg, info)
    report["view"] = {**view, "require_views": list(cfg.require_views), "per_split": packed}
    write_stage_metrics(metrics_path, sample_headline(report), report, report_path)
    write_distribution_plots(distribution_plot(metadata, table[table["split"].isin(SPLITS)], cfg.strata,
                                               info["quality_edges"]), plots_dir)
    log.info("sample: %s; TV distance %.3f -> %.3f; quality TV %s -> %s; lost to balancing %s; leakage %s",
             report["split_sizes"], report["tv_distance"]["before"], report["tv_distance"]["after"],
             _rounded(report["quality"]["tv_before"]), _rounded(report["quality"]["tv_after"]),
             report["lost_to_balancing"]["lost"], report["leakage"])
    return report


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in values.items()}
