"""The training loop: one epoch of updates, validation logits, the epoch loop keeping the best-val-loss weights.

Where the math runs (`Runtime`: device, autocast precision, fp16 loss scaler) is set up by train.py; on the CPU the
loop is float32 and the same ops in the same order as ever.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from realfake.core.atomic import atomic_dir
from realfake.core.device import Precision
from realfake.core.progress import tqdm
from realfake.detector.augment import augment_batch
from realfake.detector.batches import Split, eval_batches, train_batches
from realfake.detector.checkpoint import to_model_input
from realfake.detector.patch_head import image_logit
from realfake.detector.patches import PatchConfig, image_logits, random_patches
from realfake.detector.sbi import add_pseudo_fakes
from realfake.detector.schedule import EarlyStopping
from realfake.detector.train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Where and how the math runs: device, autocast precision, and the fp16 loss scaler (None otherwise)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: Precision = field(default_factory=Precision)
    scaler: torch.amp.GradScaler | None = None


@dataclass
class Loop:
    """What the epoch loop works on: the model, its data, loss, optimiser and schedule, set up by train()."""

    model: nn.Module
    train_split: Split
    val_split: Split
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    cfg: TrainConfig
    preprocessing: dict[str, Any]
    runtime: Runtime
    steps: int  # optimiser steps per epoch (the progress bar's total)


@dataclass
class Fitted:
    """What the loop leaves: the best epoch's weights and validation figures, the history, the images seen."""

    best_state: dict[str, torch.Tensor] | None = None
    best_val: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_images: int = 0
    train_seconds: float = 0.0
    pseudo_fakes: int = 0


def fit(loop: Loop, live_dir: str | os.PathLike) -> Fitted:
    """Train epoch by epoch until early stopping (or train.epochs); keep the lowest smoothed-val-loss weights."""
    from dvclive import Live  # imported here: it is slow to import and only the run needs it

    cfg, model, out = loop.cfg, loop.model, Fitted()
    stopper = EarlyStopping(cfg.patience, cfg.smooth_window, cfg.min_delta, cfg.min_epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    with atomic_dir(live_dir) as tmp_live, Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for epoch in range(cfg.epochs):
            lr = loop.optimizer.param_groups[0]["lr"]
            stats = train_one_epoch(model, loop.train_split, loop.loss_fn, loop.optimizer, loop.scheduler, cfg,
                                    loop.preprocessing, gen, loop.runtime, loop.steps)
            val = logit_metrics(loop.val_split.y, predict_logits(model, loop.val_split, cfg.eval_batch_size,
                                                                 loop.preprocessing, cfg.channels_last, loop.runtime))
            out.train_images, out.train_seconds = out.train_images + stats["images"], out.train_seconds + stats["seconds"]
            out.pseudo_fakes += stats["sbi"]
            if stopper.step(val["loss"]):
                out.best_state, out.best_val = copy.deepcopy(model.state_dict()), {**val, "epoch": epoch}
            row = epoch_row(epoch, lr, stats, val, stopper.smoothed)
            out.history.append(row)
            log_epoch(live, row)
            log.info("epoch %d: train loss %.4f, val loss %.4f (median %.4f), val auc %s, %.0f img/s",
                     epoch, stats["loss"], val["loss"], stopper.smoothed, fmt(val["auc"]),
                     stats["images"] / max(stats["seconds"], 1e-9))
            if stopper.should_stop and epoch < cfg.epochs - 1:
                log.info("early stop after epoch %d: no improvement for %d epochs", epoch, stopper.patience)
                break
    return out


def train_one_epoch(model, split, loss_fn, optimizer, scheduler, cfg, preprocessing, gen,
                    runtime: Runtime | None = None, steps: int | None = None) -> dict[str, float]:
    """One pass over the shuffled train split with augmentation; mean loss, accuracy, images/s."""
    runtime = runtime or Runtime()
    model.train()
    total_loss, correct, seen, pseudo_fakes, start = 0.0, 0, 0, 0, time.perf_counter()
    for images, targets in tqdm(train_batches(split, cfg, gen), desc="train", total=steps, leave=False,
                                mininterval=5):
        images, targets, made = add_pseudo_fakes(images, targets, cfg.sbi, gen)  # train.sbi: before augmenting
        pseudo_fakes += made
        images = augment_batch(images, cfg.augment, gen)  # on the CPU with `gen`: the same draws on every device
        if cfg.patch.enabled:  # one random patch per image, at the packed resolution
            images = random_patches(images, cfg.patch.size, gen)
        x = to_model_input(images, preprocessing, cfg.channels_last, runtime.device)
        targets = targets.to(runtime.device, non_blocking=True) if runtime.device.type != "cpu" else targets
        with runtime.precision.autocast(runtime.device):
            logits = model(x)
        loss = loss_fn(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        if runtime.scaler is not None:  # fp16: scale the loss so small gradients do not flush to zero
            runtime.scaler.scale(loss).backward()
            runtime.scaler.step(optimizer)
            runtime.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        if logits.ndim == 2:  # patch logits (model.head: patch): the image's logit is their mean
            logits = image_logit(logits)
        total_loss += loss.item() * len(targets)
        correct += int(((logits.detach() > 0).float() == targets).sum())
        seen += len(targets)
    seconds = time.perf_counter() - start
    return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1), "images": seen, "seconds": seconds,
            "sbi": pseudo_fakes}


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, batch_size: int, preprocessing, channels_last,
                   runtime: Runtime | None = None) -> np.ndarray:
    """Logits for every kept row of a split, in order, without augmentation (patch-averaged in patch mode)."""
    runtime = runtime or Runtime()
    model.eval()
    patch = PatchConfig.from_preprocessing(preprocessing)
    out = np.zeros(len(split), dtype=np.float32)
    for images, positions in eval_batches(split, batch_size):
        with runtime.precision.autocast(runtime.device):
            logits = image_logits(model, to_model_input(images, preprocessing, channels_last, runtime.device), patch)
        out[positions] = logits.float().cpu().numpy()
    return out


def logit_metrics(y: np.ndarray, logits: np.ndarray) -> dict[str, float | None]:
    """Validation figures on raw logits: unweighted BCE, accuracy at logit 0 (p = 0.5), ROC AUC (None with one class).

    Arguments in sklearn's order, as realfake.evaluation.metrics.binary_metrics(y_true, p_fake), which reports the
    full set on probabilities; AUC is taken on the logits here because sigmoid ties saturated scores.
    """
    logits_t, y_t = torch.from_numpy(logits).float(), torch.from_numpy(y).float()
    loss = float(nn.functional.binary_cross_entropy_with_logits(logits_t, y_t)) if len(y) else math.nan
    acc = float(((logits > 0) == (y == 1)).mean()) if len(y) else math.nan
    auc = float(roc_auc_score(y, logits)) if len(np.unique(y)) == 2 else None
    return {"loss": loss, "acc": acc, "auc": auc}


def epoch_row(epoch: int, lr: float, stats: dict, val: dict, smoothed: float) -> dict[str, Any]:
    """One epoch's numbers, as logged."""
    return {
        "epoch": epoch,
        "lr": lr,
        "train_loss": stats["loss"],
        "train_acc": stats["acc"],
        "val_loss": val["loss"],
        "val_loss_median": smoothed,
        "val_acc": val["acc"],
        "val_auc": val["auc"],
    }


def log_epoch(live, row: dict[str, Any]) -> None:
    """Log one epoch to dvclive (plots under plots/metrics/{train,val}/...) and advance the step."""
    for key, value in row.items():
        if key != "epoch" and value is not None and math.isfinite(value):
            live.log_metric(key.replace("_", "/", 1) if key != "lr" else key, value)
    live.next_step()


def fmt(value: float | None) -> str:
    """A metric for a log line (None as 'n/a')."""
    return "n/a" if value is None else f"{value:.4f}"
