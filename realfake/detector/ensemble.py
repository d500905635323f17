"""An ensemble of K detectors trained from seeds seed..seed+K-1, scored as one model: the mean of their logits.

Averaging members that differ only in their seed (Lakshminarayanan et al., "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles", NeurIPS 2017) cuts the seed-to-seed swing of every held-out figure;
members may also see different inputs (`model.member_inputs`, e.g. the Haar HH band beside RGB: measured in
results/mirror/ensembles) or be different networks (`model.member_archs`, e.g. the CNN beside NPR: measured in
results/mirror/npr). The checkpoint stores the members' weights under one model, so `predict`, `evaluate`,
`cv` and `serve` need nothing new. Calibration and the operating point are fitted on the ensemble's own validation
logits.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from realfake.core.device import resolve_device
from realfake.detector.batches import open_split
from realfake.detector.checkpoint import load_detector
from realfake.detector.ensemble_net import Ensemble
from realfake.detector.loop import logit_metrics, predict_logits
from realfake.detector.run import TrainRun
from realfake.detector.train import finish_checkpoint, train

log = logging.getLogger(__name__)


def train_detector(run: TrainRun, packed_dir: str | os.PathLike, checkpoint_path: str | os.PathLike,
                   live_dir: str | os.PathLike) -> dict[str, Any]:
    """train() for `model.members` 1; for K > 1, K members joined into one checkpoint. Returns the run's summary.

    Member k trains with train.seed + k on its own input and network (model.member_inputs[k], model.member_archs[k],
    else model.input, model.arch); dvclive keeps
    member 0's curves (live_dir), the others' go with their temporary checkpoints. The summary is member 0's with
    the ensemble's validation figures and `members`.
    """
    k_members, cfg = run.model.members, run.train
    if k_members == 1:
        return train(replace(run, model=run.model.member(0)), packed_dir, checkpoint_path, live_dir)
    target = Path(checkpoint_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".members-") as tmp:
        summaries = []
        for k in range(k_members):
            log.info("ensemble member %d of %d (train.seed %d, arch %s, input %s)", k + 1, k_members, cfg.seed + k,
                     run.model.member(k).arch, run.model.member(k).input)
            member = replace(run, model=run.model.member(k), train=replace(cfg, seed=cfg.seed + k))
            summaries.append(train(member, packed_dir, Path(tmp) / f"m{k}.pt",
                                   live_dir if k == 0 else Path(tmp) / f"live{k}"))
        info, val = join_members([Path(tmp) / f"m{k}.pt" for k in range(k_members)], run, packed_dir, target)
    first = summaries[0]
    return {**first, "best_val_loss": val["loss"], "best_val_auc": val["auc"], "best_val_acc": val["acc"],
            "threshold": info["threshold"], "operating_point": info["operating_point"], "verdict_val": info["verdict"],
            "fit_to_judge": info["fitness"]["fit"], "fitness": info["fitness"], "members": k_members,
            "member_val_auc": [s["best_val_auc"] for s in summaries],
            "seconds": round(sum(s["seconds"] for s in summaries), 2),
            "train_seconds": round(sum(s["train_seconds"] for s in summaries), 2),
            "params": sum(s["params"] for s in summaries)}


def join_members(member_paths: list[Path], run: TrainRun, packed_dir: str | os.PathLike,
                 checkpoint_path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Join single-member checkpoints into one ensemble checkpoint, calibrated on its own val logits; (info, val).

    train_detector calls it on the members it trained; an experiment may call it on the checkpoints of single-seed
    runs with train.seed s..s+K-1 (and model.input member_inputs[k]), which are the very members
    `-S model.members=K -S train.seed=s` trains. The joined checkpoint stores `run` with model.members = the number
    of members joined.
    """
    checkpoints = [load_detector(path) for path in member_paths]
    members = [model for model, _ in checkpoints]
    preprocessing = checkpoints[0][1]["preprocessing"]
    infos = [checkpoint["info"] for _, checkpoint in checkpoints]
    ensemble = Ensemble(members).eval()
    cfg = run.train
    val_split = open_split(cfg, packed_dir, "val", run.size, resolve_device(cfg.device, "train.device"))
    logits = predict_logits(ensemble, val_split, cfg.eval_batch_size, preprocessing, cfg.channels_last)
    val = logit_metrics(val_split.y, logits)
    info, verdict = finish_checkpoint(ensemble, replace(run, model=replace(run.model, members=len(members))),
                                      val_split, logits, preprocessing, checkpoint_path,
                                      {"best_epoch": [i["best_epoch"] for i in infos], "val_loss": val["loss"],
                                       "val_auc": val["auc"], "member_val_auc": [i["val_auc"] for i in infos]})
    log.info("ensemble of %d: val AUC %.4f (members %s)", len(members), val["auc"] or float("nan"),
             ", ".join(f"{i['val_auc']:.4f}" for i in infos))
    return {**info, "verdict": verdict}, val
