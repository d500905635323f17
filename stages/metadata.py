"""Stage `metadata`: data/metadata.parquet (one row per surviving face), its metrics and the dataset card."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from realfake.attributes import AttributesConfig
from realfake.cli import run_stage
from realfake.dataset_card import write_card
from realfake.metadata import (
    MetadataConfig,
    build_metadata,
    metadata_metrics,
    read_dedupe,
    read_faces,
    write_metadata,
)
from realfake.params import load_params
from realfake.stage_metrics import counts, write_stage_metrics

log = logging.getLogger("stages.metadata")


def main() -> None:
    """Assemble, validate and write the table; then metrics and the card."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", default="data/faces", type=Path)
    parser.add_argument("--dedupe", default="data/dedupe.parquet", type=Path)
    parser.add_argument("--attributes", default="data/attributes.parquet", type=Path)
    parser.add_argument("--out", default="data/metadata.parquet", type=Path)
    parser.add_argument("--metrics-dir", default="metrics", type=Path)
    parser.add_argument("--report", default="reports/dataset.md", type=Path)
    parser.add_argument("--reports-dir", default="reports", type=Path, help="details of this and earlier stages")
    args = parser.parse_args()
    params = load_params()
    cfg = MetadataConfig.from_params(params.get("metadata"))
    age_bins = AttributesConfig.from_params(params.get("attributes")).age_bins
    sources = sorted((params.get("sources") or {}).keys())
    faces = read_faces(args.faces, sources)
    dedupe = read_dedupe(args.dedupe)
    attributes = pd.read_parquet(args.attributes) if args.attributes.is_file() else None
    if attributes is None:
        log.warning("%s not found: *_pred columns stay null", args.attributes)
    meta = build_metadata(faces, dedupe, attributes, sources, age_bins, args.faces, Path("data/resized"),
                          Path("data/raw"), cfg)
    write_metadata(meta, args.out, sources, age_bins)
    attr_report = args.reports_dir / "attributes.json"  # the attributes stage's details (held-out, agreement)
    attr_metrics = json.loads(attr_report.read_text()) if attr_report.is_file() else None
    summary = write_card(meta, args.metrics_dir, args.report, args.report.parent / "figures",
                         args.report.parent / "plots", attr_metrics, args.reports_dir / "dedupe.json")
    metrics = metadata_metrics(meta, dedupe)
    metrics["real_vs_fake"] = summary
    top = counts(metrics["in_surviving_dedupe"], metrics["rows"], metrics["skipped_no_faces_row"])
    write_stage_metrics(args.metrics_dir / "metadata.json", top, metrics, args.reports_dir / "metadata.json")
    log.info("metadata: %d rows written to %s; card %s", len(meta), args.out, args.report)


if __name__ == "__main__":
    run_stage(main)
