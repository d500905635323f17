"""Stage `dedupe`: exact and near-duplicate faces across all sources (see docs/dedupe.md).

Reads data/faces/<source>.parquet and the crops for every source in params.yaml `sources:`, writes
data/dedupe.parquet, metrics/dedupe.json and plots/dedupe/pairs.png.
"""

from __future__ import annotations

import logging
from pathlib import Path

from realfake.atomic import atomic_path, write_json, write_parquet
from realfake.cli import run_stage
from realfake.dedupe.calibrate import calibrate
from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.pipeline import run_dedupe
from realfake.dedupe.report import SCHEMA, build_metrics, gallery
from realfake.engine import ComputeConfig
from realfake.errors import UserError
from realfake.params import load_params

log = logging.getLogger("stages.dedupe")

FACES_DIR = Path("data/faces")
RAW_DIR = Path("data/raw")  # the download stage's files, for matching the original images
OUT_TABLE = Path("data/dedupe.parquet")
OUT_METRICS = Path("metrics/dedupe.json")
OUT_GALLERY = Path("plots/dedupe/pairs.png")


def main() -> None:
    """Run the stage from the repository root."""
    params = load_params()
    cfg = DedupeConfig.from_params(params.get("dedupe"))
    sources = sorted((params.get("sources") or {}).keys())
    if not sources:
        raise UserError("params.yaml has no `sources:`: nothing to dedupe")
    result = run_dedupe(FACES_DIR, sources, cfg, RAW_DIR, ComputeConfig.from_params(params.get("compute")))
    calibration = calibrate(result.table, result.hashes, result.roots, cfg)
    metrics = build_metrics(result.table, result.edges, result.not_kept, cfg, calibration)
    write_parquet(result.table, OUT_TABLE, schema=SCHEMA)
    write_json(OUT_METRICS, metrics)
    with atomic_path(OUT_GALLERY, suffix=".png") as tmp:
        gallery(result.table, result.edges, FACES_DIR, cfg.gallery_tile).save(tmp, format="PNG")
    cal = metrics["calibration"]
    log.info(
        "dedupe: in %d = kept %d + dropped %d %s; calibration recall %s on %d pairs, %d false merges in %d negatives",
        metrics["faces_in"], metrics["faces_kept"], metrics["faces_dropped"], metrics["dropped_by_reason"],
        cal["recall"], cal["positives"], cal["false_merges"], cal["negatives"],
    )  # fmt: skip
    if not cal["passed"]:
        log.warning(
            "calibration target missed (see metrics/dedupe.json calibration.sweep to re-pick thresholds)"
        )


if __name__ == "__main__":
    run_stage(main)
