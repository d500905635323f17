"""Stage `metadata`: data/metadata.parquet (one row per surviving face), its metrics and the dataset card."""

from __future__ import annotations

from pathlib import Path

from realfake.attributes.config import AttributesConfig
from realfake.core.engine import ComputeConfig
from realfake.core.params import load_params, load_section
from realfake.core.sources import declared_watermarks, source_names
from realfake.core.stage import run_stage
from realfake.metadata.build import MetadataConfig
from realfake.metadata.stage import run_metadata_stage


def main() -> None:
    """Read params, run the stage on the paths dvc.yaml declares."""
    params = load_params()
    watermarks = {name: list(mark.box) for name, mark in declared_watermarks(params).items()}
    run_metadata_stage(load_section(MetadataConfig, params, "metadata"), source_names(params),
                       load_section(AttributesConfig, params, "attributes").age_bins, Path("data/faces"),
                       Path("data/dedupe.parquet"), Path("data/attributes.parquet"), Path("data/metadata.parquet"),
                       Path("metrics"), Path("reports/dataset.md"), watermarks=watermarks,
                       compute=load_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    run_stage(main)
