"""Stage `crops@<source>`: the native-resolution window and the wider aligned crop of every kept face (`crops`)."""

import argparse
import dataclasses

from realfake.core.params import load_params, load_section
from realfake.core.sources import source_watermark
from realfake.core.stage import run_stage
from realfake.core.training_image import ResizeConfig
from realfake.crops.stage import run_crops
from realfake.crops.views import crops_config
from realfake.faces.config import FacesConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, help="source name (data/faces/<source>.parquet)")
    # dvc.yaml passes ${crops.context.size} here: DVC's run-cache key drops params named `size` (stages/resize.py)
    parser.add_argument("--context-size", type=int, help="override crops.context.size (dvc.yaml passes it)")
    args = parser.parse_args()
    params = load_params()
    cfg = crops_config(params)
    if args.context_size is not None:
        cfg = dataclasses.replace(cfg, context=dataclasses.replace(cfg.context, size=args.context_size))
    faces = load_section(FacesConfig, params, "faces")
    run_crops(args.source, cfg, faces.margin, load_section(ResizeConfig, params, "resize"), faces.max_pixels,
              watermark=source_watermark(params, args.source))


if __name__ == "__main__":
    run_stage(main)
