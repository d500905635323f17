"""Stage `resize@<source>`: training-size copies of the aligned crops (params.yaml section `resize`)."""

import argparse
import dataclasses

from realfake.core.engine import ComputeConfig
from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.core.training_image import ResizeConfig
from realfake.resize.images import run_resize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="source name (data/faces/<source>.parquet)")
    # dvc.yaml passes ${resize.size} here on purpose: DVC's run-cache key drops every key named `size`
    # (dvc/stage/cache.py excludes "size"/"nfiles"), so a params-only dependency would restore the output
    # of another size. Putting the value in the command makes it part of the key. The other keys (reencode,
    # jpeg_quality) are ordinary params: the run cache keys on them.
    parser.add_argument("--size", type=int, help="override resize.size (dvc.yaml passes it)")
    args = parser.parse_args()
    params = load_params()
    cfg = load_section(ResizeConfig, params, "resize")
    run_resize(args.source, cfg if args.size is None else dataclasses.replace(cfg, size=args.size),
               compute=load_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    run_stage(main)
