"""The dedupe stage: run the search, calibrate, write the table, metrics and the gallery of pairs."""

from __future__ import annotations

import logging
from pathlib import Path

from realfake.core.atomic import atomic_path, write_parquet
from realfake.core.engine import ComputeConfig
from realfake.core.errors import UserError
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.dedupe.calibrate import calibrate
from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.pipeline import run_dedupe
from realfake.dedupe.report import SCHEMA, build_metrics, gallery

log = logging.getLogger("stages.dedupe")


def run_dedupe_stage(cfg: DedupeConfig, sources: list[str], faces_dir: Path, raw_dir: Path, out_table: Path,
                     out_metrics: Path, out_gallery: Path, out_report: Path | None = None,
                     compute: ComputeConfig | None = None) -> dict:
    """Dedupe the faces of `sources`; writes data/dedupe.parquet, metrics/dedupe.json (headline), reports/dedupe.json
    (details; `out_report`, default beside the headline under reports/) and plots/dedupe/pairs.png;
    `compute` picks the engine that hashes the crops."""
    if not sources:
        raise UserError("params.yaml has no `sources:`: nothing to dedupe")
    result = run_dedupe(faces_dir, sources, cfg, raw_dir, compute)
    calibration = calibrate(result.table, result.hashes, result.roots, cfg)
    metrics = build_metrics(result.table, result.edges, result.not_kept, cfg, calibration)
    write_parquet(result.table, out_table, schema=SCHEMA)
    top = {**counts(metrics["faces_in"], metrics["faces_kept"], metrics["faces_dropped"]),
           "dup_recall": metrics["calibration"]["recall"]}
    write_stage_metrics(out_metrics, top, metrics, out_report)
    with atomic_path(out_gallery, suffix=".png") as tmp:
        gallery(result.table, result.edges, faces_dir, cfg.gallery_tile).save(tmp, format="PNG")
    cal = metrics["calibration"]
    log.info(
        "dedupe: in %d = kept %d + dropped %d %s; calibration recall %s on %d pairs, %d false merges in %d negatives",
        metrics["faces_in"], metrics["faces_kept"], metrics["faces_dropped"], metrics["dropped_by_reason"],
        cal["recall"], cal["positives"], cal["false_merges"], cal["negatives"],
    )  # fmt: skip
    if not cal["passed"]:
        log.warning(
            "calibration target missed (see reports/dedupe.json calibration.sweep to re-pick thresholds)"
        )
    return metrics
