"""DVC stage `train`: fit the detector on data/packed/{train,val}; write the checkpoint, metrics and card.

Params: `model`, `train` (with `train.augment`), `resize` and `faces` (stored in the checkpoint for `realfake
predict`) and `data.profile` (the fitness record) from params.yaml.
Outputs: models/detector.pt, models/MODEL_CARD.md, metrics/train.json, dvclive/train/.
"""

import argparse

from realfake.core.params import load_params, load_section
from realfake.core.stage import run_stage
from realfake.core.training_image import image_size
from realfake.detector.model import ModelConfig
from realfake.detector.packed import packed_image_size
from realfake.detector.stage import run_train_stage
from realfake.detector.train_config import load_train_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--packed", default="data/packed")
    parser.add_argument("--checkpoint", default="models/detector.pt")
    parser.add_argument("--card", default="models/MODEL_CARD.md")
    parser.add_argument("--metrics", default="metrics/train.json")
    parser.add_argument("--live", default="dvclive/train")
    args = parser.parse_args()
    params = load_params(args.params)
    model_cfg = load_section(ModelConfig, params, "model")  # every section is checked before anything is logged
    train_cfg, override = load_train_config(params)
    size = packed_image_size(args.packed, image_size(params))  # the packed view's (sample.view)
    run_train_stage(model_cfg, train_cfg, size, params.get("faces"),
                    args.packed, args.checkpoint, args.card, args.metrics, args.live, resize=params.get("resize"),
                    profile=(params.get("data") or {}).get("profile"), profile_overrides=override)


if __name__ == "__main__":
    run_stage(main)
