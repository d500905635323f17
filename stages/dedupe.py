"""Stage `dedupe`: exact and near-duplicate faces across all sources (see docs/dedupe.md).

Reads data/faces/<source>.parquet and the crops for every source in params.yaml `sources:`, writes
data/dedupe.parquet, metrics/dedupe.json (headline), reports/dedupe.json (details) and plots/dedupe/pairs.png.
"""

from __future__ import annotations

from pathlib import Path

from realfake.core.engine import ComputeConfig
from realfake.core.params import load_params, load_section
from realfake.core.sources import source_names
from realfake.core.stage import run_stage
from realfake.dedupe.config import DedupeConfig
from realfake.dedupe.stage import run_dedupe_stage


def main() -> None:
    """Run the stage from the repository root."""
    params = load_params()
    run_dedupe_stage(load_section(DedupeConfig, params, "dedupe"), source_names(params),
                     Path("data/faces"), Path("data/raw"), Path("data/dedupe.parquet"), Path("metrics/dedupe.json"),
                     Path("plots/dedupe/pairs.png"), compute=load_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    run_stage(main)
