"""Stage `attributes`: train the gender/age/race CNN on UTKFace crops and predict for every surviving face."""

from __future__ import annotations

from pathlib import Path

from realfake.attributes.config import AttributesConfig
from realfake.attributes.stage import run_attributes_stage
from realfake.core.params import load_params, load_section
from realfake.core.sources import source_names
from realfake.core.stage import run_stage


def main() -> None:
    """Read params, run the stage on the paths dvc.yaml declares."""
    params = load_params()
    run_attributes_stage(load_section(AttributesConfig, params, "attributes"),
                         source_names(params), Path("data/faces"),
                         Path("data/dedupe.parquet"), Path("data/attributes.parquet"), Path("models/attributes.pt"),
                         Path("metrics/attributes.json"))


if __name__ == "__main__":
    run_stage(main)
