"""The metadata stage: assemble and validate data/metadata.parquet, then its metrics and the dataset card."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from realfake.core.engine import ComputeConfig
from realfake.core.stage_metrics import counts, write_stage_metrics
from realfake.core.tables import read_dedupe, read_faces
from realfake.metadata.build import MetadataConfig, build_metadata, metadata_metrics
from realfake.metadata.dataset_card import write_card
from realfake.metadata.schema import write_metadata

log = logging.getLogger("stages.metadata")


def run_metadata_stage(cfg: MetadataConfig, sources: list[str], age_bins, faces_dir: Path, dedupe_path: Path,
                       attributes_path: Path, out: Path, metrics_dir: Path, report: Path,
                       resized_dir: Path = Path("data/resized"), raw_dir: Path = Path("data/raw"),
                       reports_dir: Path = Path("reports"), watermarks: dict[str, list[float]] | None = None,
                       compute: ComputeConfig | None = None) -> dict:
    """Write the table, metrics_dir/metadata.json (headline), reports_dir/metadata.json, the card `report`, its figures
    and plot tables; the card reads the attributes, dedupe, faces and crops details from reports_dir.

    `watermarks` maps a source to its declared watermark box (params `sources.<name>.watermark.box`) for the card;
    `compute` picks the engine that measures the crops.
    """
    faces = read_faces(faces_dir, sources)
    dedupe = read_dedupe(dedupe_path)
    attributes = pd.read_parquet(attributes_path) if attributes_path.is_file() else None
    if attributes is None:
        log.warning("%s not found: *_pred columns stay null", attributes_path)
    meta = build_metadata(faces, dedupe, attributes, sources, age_bins, faces_dir, resized_dir, raw_dir, cfg,
                          compute=compute)
    write_metadata(meta, out, sources, age_bins)
    attr_report = reports_dir / "attributes.json"  # the attributes stage's details (held-out, agreement)
    attr_metrics = json.loads(attr_report.read_text()) if attr_report.is_file() else None
    summary = write_card(meta, metrics_dir, report, report.parent / "figures", report.parent / "plots", attr_metrics,
                         reports_dir / "dedupe.json", watermarks, reports_dir / "faces", reports_dir / "crops")
    metrics = metadata_metrics(meta, dedupe)
    metrics["real_vs_fake"] = summary
    top = counts(metrics["in_surviving_dedupe"], metrics["rows"], metrics["skipped_no_faces_row"])
    write_stage_metrics(metrics_dir / "metadata.json", top, metrics, reports_dir / "metadata.json")
    log.info("metadata: %d rows written to %s; card %s", len(meta), out, report)
    return metrics
