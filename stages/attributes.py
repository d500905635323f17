"""Stage `attributes`: train the gender/age/race CNN on UTKFace crops and predict for every surviving face."""

from __future__ import annotations

import argparse
from pathlib import Path

from realfake.attributes.model import AttributesConfig
from realfake.attributes.stage import run_attributes_stage
from realfake.core.params import load_params
from realfake.core.stage import run_stage


def main() -> None:
    """Read params and the paths, run the stage."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", default="data/faces", type=Path)
    parser.add_argument("--dedupe", default="data/dedupe.parquet", type=Path)
    parser.add_argument("--out", default="data/attributes.parquet", type=Path)
    parser.add_argument("--model", default="models/attributes.pt", type=Path)
    parser.add_argument("--metrics", default="metrics/attributes.json", type=Path)
    args = parser.parse_args()
    params = load_params()
    run_attributes_stage(AttributesConfig.from_params(params.get("attributes")),
                         sorted((params.get("sources") or {}).keys()), args.faces, args.dedupe, args.out,
                         args.model, args.metrics)


if __name__ == "__main__":
    run_stage(main)
