"""The train stage: fit the detector, then write the checkpoint, metrics/train.json and the model card."""

from __future__ import annotations

import logging
from typing import Any

from realfake.core.atomic import write_json
from realfake.detector.model import ModelConfig
from realfake.detector.model_card import write_model_card
from realfake.detector.train import TrainConfig, train

log = logging.getLogger("stages.train")


def run_train_stage(model_cfg: ModelConfig, train_cfg: TrainConfig, size: int | None, faces: dict[str, Any] | None,
                    packed: str, checkpoint: str, card: str, metrics: str, live: str) -> dict[str, Any]:
    """Train on `packed`/{train,val}; `faces` (params section) is stored so predict crops new photos alike."""
    summary = train(model_cfg, train_cfg, packed, checkpoint, live, size, faces)
    write_json(metrics, {k: v for k, v in summary.items() if k != "history"})
    write_model_card(card, summary, model_cfg, train_cfg)
    log.info("best epoch %d: val loss %.4f, val AUC %s -> %s",
             summary["best_epoch"], summary["best_val_loss"], summary["best_val_auc"], checkpoint)
    return summary
