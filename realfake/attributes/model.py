"""The attributes model end to end: train on the train source's faces, predict for all, measure, checkpoint.

Its parts follow realfake/detector: `config` (params), `network`, `data` (crops, split, table), `train` (loop and
predictions), `measures` (accuracy, agreement) and `checkpoint`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realfake.attributes.checkpoint import checkpoint
from realfake.attributes.config import AttributesConfig
from realfake.attributes.data import load_crops, prediction_frame, split_train_val
from realfake.attributes.measures import evaluate
from realfake.attributes.train import encode_targets, predict_probs, train_model

log = logging.getLogger(__name__)


def run_attributes(cfg: AttributesConfig, faces: pd.DataFrame, faces_dir: Path, progress: bool = True
                   ) -> tuple[pd.DataFrame, dict[str, Any], Any]:
    """Train on the train source's surviving faces, predict for all of them; return (table, metrics, checkpoint).

    faces: the surviving faces rows (source, face_id, group, crop_path and the *_source labels).
    """
    import torch

    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    frame = faces.reset_index(drop=True).copy()
    for col in ("gender_source", "age_source", "race_source", "ethnicity_source", "group"):
        if col not in frame:
            frame[col] = None
    paths = [faces_dir / str(s) / str(c) for s, c in zip(frame["source"], frame["crop_path"], strict=True)]
    images, ok = load_crops(paths, cfg.image_size, progress)
    targets = encode_targets(frame, cfg)
    labelled = (frame["source"] == cfg.train_source).to_numpy() & ok & (np.stack(list(targets.values())) >= 0).any(0)
    is_val = np.zeros(len(frame), bool)
    is_val[labelled] = split_train_val(frame.loc[labelled, "group"].fillna(frame.loc[labelled, "face_id"]),
                                       cfg.val_fraction, cfg.seed)
    is_train = labelled & ~is_val
    log.info("attributes: %d faces, %d train / %d val from %s", len(frame), is_train.sum(), is_val.sum(), cfg.train_source)
    trained = bool(is_train.sum() >= 2)
    if not trained:
        log.warning("attributes: fewer than 2 labelled %s faces: no model is trained, predictions are null",
                    cfg.train_source)
    model, history = train_model(images[is_train], {h: t[is_train] for h, t in targets.items()},
                                 cfg if trained else AttributesConfig(**{**asdict(cfg), "epochs": 0}), progress)
    probs = predict_probs(model, images)
    table = prediction_frame(frame["face_id"], probs, ok, cfg, trained)
    table.insert(1, "source", frame["source"].astype(str).to_numpy())
    table.insert(2, "attr_split", np.where(is_train, "train", np.where(is_val, "val", "predict")))
    scored = frame[["source", "gender_source", "age_source", "race_source", "ethnicity_source"]].join(
        table[["attr_split", "gender_pred", "age_group_pred", "race_group_pred"]])
    metrics = evaluate(scored, cfg)
    metrics["training"] = {
        "trained": trained, "n_faces": len(frame), "n_unreadable": int((~ok).sum()),
        "n_train": int(is_train.sum()), "n_val": int(is_val.sum()), "epochs": cfg.epochs,
        "final_train_loss": round(history[-1]["loss"], 4) if history else None,
        "seconds": round(time.perf_counter() - start, 1),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    metrics["classes"] = cfg.classes()
    metrics["note"] = ("predictions are estimates from a small CNN trained on UTKFace; latino (generated-faces) "
                       "is counted as UTKFace 'others' in ethnicity_latino_as_others and left out of "
                       "ethnicity_white_black_asian")
    return table, metrics, checkpoint(model, cfg, history)
