"""DVC stage `train`: fit the detector on data/packed/{train,val}; write the checkpoint, metrics and card.

Params: `model`, `train` (with `train.augment`) and `resize.size` from params.yaml.
Outputs: models/detector.pt, models/MODEL_CARD.md, metrics/train.json (headline), reports/train.json, dvclive/train/.
"""

import argparse
import logging

from realfake.cli import run_stage
from realfake.model_card import write_model_card
from realfake.params import load_params
from realfake.stage_metrics import write_stage_metrics
from realfake.timings import record_timing
from realfake.train import load_configs, train

log = logging.getLogger("stages.train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--packed", default="data/packed")
    parser.add_argument("--checkpoint", default="models/detector.pt")
    parser.add_argument("--card", default="models/MODEL_CARD.md")
    parser.add_argument("--metrics", default="metrics/train.json")
    parser.add_argument("--report", default="reports/train.json")
    parser.add_argument("--live", default="dvclive/train")
    args = parser.parse_args()
    params = load_params(args.params)
    model_cfg, train_cfg, size = load_configs(params)
    summary = train(model_cfg, train_cfg, args.packed, args.checkpoint, args.live, size, params.get("faces"))
    details = {k: v for k, v in summary.items() if k != "history"}
    write_stage_metrics(args.metrics, {"val_auc": summary["best_val_auc"]}, details, args.report)
    record_timing("train", **{k: summary[k] for k in ("seconds", "train_seconds", "images_per_s", "threads")})
    write_model_card(args.card, summary, model_cfg, train_cfg)
    log.info("best epoch %d: val loss %.4f, val AUC %s -> %s",
             summary["best_epoch"], summary["best_val_loss"], summary["best_val_auc"], args.checkpoint)


if __name__ == "__main__":
    run_stage(main)
