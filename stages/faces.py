"""Stage `faces@<source>`: detect, align and crop one face per raw image (params.yaml section `faces`)."""

import argparse

from realfake.core.engine import ComputeConfig
from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.faces.config import FacesConfig
from realfake.faces.stage import run_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="source name (data/raw/<source>.parquet)")
    args = parser.parse_args()
    params = load_params()
    run_source(args.source, load_section(FacesConfig, params, "faces"),
               compute=load_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    run_stage(main)
