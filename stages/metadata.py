"""Stage `metadata`: data/metadata.parquet (one row per surviving face), its metrics and the dataset card."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from realfake.atomic import write_json
from realfake.attributes import AttributesConfig
from realfake.cli import run_stage
from realfake.dataset_card import write_card
from realfake.engine import ComputeConfig
from realfake.metadata import (
    MetadataConfig,
    build_metadata,
    metadata_metrics,
    read_dedupe,
    read_faces,
    write_metadata,
)
from realfake.params import load_params

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
                          Path("data/raw"), cfg, compute=ComputeConfig.from_params(params.get("compute")))
    write_metadata(meta, args.out, sources, age_bins)
    attr_metrics_path = args.metrics_dir / "attributes.json"
    attr_metrics = json.loads(attr_metrics_path.read_text()) if attr_metrics_path.is_file() else None
    summary = write_card(meta, args.metrics_dir, args.report, args.report.parent / "figures",
                         args.report.parent / "plots", attr_metrics)
    metrics = metadata_metrics(meta, dedupe)
    metrics["real_vs_fake"] = summary
    write_json(args.metrics_dir / "metadata.json", metrics)
    log.info("metadata: %d rows written to %s; card %s", len(meta), args.out, args.report)


if __name__ == "__main__":
    run_stage(main)
