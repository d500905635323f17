"""The metadata stage: assemble and validate data/metadata.parquet, then its metrics and the dataset card."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from realfake.core.atomic import write_json
from realfake.core.engine import ComputeConfig
from realfake.core.tables import read_dedupe, read_faces
from realfake.metadata.build import MetadataConfig, build_metadata, metadata_metrics
from realfake.metadata.dataset_card import write_card
from realfake.metadata.schema import write_metadata

log = logging.getLogger("stages.metadata")


def run_metadata_stage(cfg: MetadataConfig, sources: list[str], age_bins, faces_dir: Path, dedupe_path: Path,
                       attributes_path: Path, out: Path, metrics_dir: Path, report: Path,
                       resized_dir: Path = Path("data/resized"), raw_dir: Path = Path("data/raw"),
                       compute: ComputeConfig | None = None) -> dict:
    """Write the table, metrics_dir/metadata.json, the card `report` and its figures and plot tables."""
    faces = read_faces(faces_dir, sources)
    dedupe = read_dedupe(dedupe_path)
    attributes = pd.read_parquet(attributes_path) if attributes_path.is_file() else None
    if attributes is None:
        log.warning("%s not found: *_pred columns stay null", attributes_path)
    meta = build_metadata(faces, dedupe, attributes, sources, age_bins, faces_dir, resized_dir, raw_dir, cfg,
                          compute=compute)
    write_metadata(meta, out, sources, age_bins)
    attr_metrics_path = metrics_dir / "attributes.json"
    attr_metrics = json.loads(attr_metrics_path.read_text()) if attr_metrics_path.is_file() else None
    summary = write_card(meta, metrics_dir, report, report.parent / "figures", report.parent / "plots", attr_metrics)
    metrics = metadata_metrics(meta, dedupe)
    metrics["real_vs_fake"] = summary
    write_json(metrics_dir / "metadata.json", metrics)
    log.info("metadata: %d rows written to %s; card %s", len(meta), out, report)
    return metrics
