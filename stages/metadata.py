"""Stage `metadata`: data/metadata.parquet (one row per surviving face), its metrics and the dataset card."""

from __future__ import annotations

import argparse
from pathlib import Path

from realfake.attributes.model import AttributesConfig
from realfake.core.engine import ComputeConfig
from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.metadata.build import MetadataConfig
from realfake.metadata.stage import run_metadata_stage


def main() -> None:
    """Read params and the paths, run the stage."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", default="data/faces", type=Path)
    parser.add_argument("--dedupe", default="data/dedupe.parquet", type=Path)
    parser.add_argument("--attributes", default="data/attributes.parquet", type=Path)
    parser.add_argument("--out", default="data/metadata.parquet", type=Path)
    parser.add_argument("--metrics-dir", default="metrics", type=Path)
    parser.add_argument("--report", default="reports/dataset.md", type=Path)
    args = parser.parse_args()
    params = load_params()
    sources = params.get("sources") or {}
    watermarks = {name: spec["watermark"]["box"] for name, spec in sources.items()
                  if isinstance(spec, dict) and isinstance(spec.get("watermark"), dict)}
    run_metadata_stage(load_section(MetadataConfig, params, "metadata"), sorted(sources),
                       load_section(AttributesConfig, params, "attributes").age_bins, args.faces, args.dedupe,
                       args.attributes, args.out, args.metrics_dir, args.report, watermarks=watermarks,
                       compute=load_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    run_stage(main)
