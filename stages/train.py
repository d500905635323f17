"""DVC stage `train`: fit the detector on data/packed/{train,val}; write the checkpoint, metrics and card.

Params: `model`, `train` (with `train.augment`), `resize` and `faces` (stored in the checkpoint for `realfake
predict`) and `data.profile` (the fitness record) from params.yaml.
Outputs: models/detector.pt, models/MODEL_CARD.md, metrics/train.json, dvclive/train/.
"""

import argparse

from realfake.core.params import load_params
from realfake.core.stage import run_stage
from realfake.detector.run import train_run
from realfake.detector.stage import run_train_stage


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
    run = train_run(params, args.packed)  # every section is checked before anything is logged
    run_train_stage(run, args.packed, args.checkpoint, args.card, args.metrics, args.live)


if __name__ == "__main__":
    run_stage(main)
