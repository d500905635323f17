"""Training the detector on the packed arrays, top to bottom.

Input (written by the sample stage): `data/packed/<split>.npy`, a uint8 (N, 3, S, S) RGB array saved with
`np.save` and memory-mapped here, and `data/packed/<split>.parquet`, whose row i describes array row i
(`face_id`, `label`, `y` 0 real / 1 fake, `source`, `group`). No JPEG is decoded while training.

Output: the best checkpoint (lowest validation loss), dvclive logs, and a summary dict for
`metrics/train.json` and the model card.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm import tqdm

from realfake.core.atomic import atomic_dir
from realfake.core.errors import UserError
from realfake.detector.augment import AugmentConfig, augment_batch
from realfake.detector.checkpoint import preprocessing_for, save_checkpoint, to_model_input
from realfake.detector.losses import LOSSES, BinaryLoss, class_weights
from realfake.detector.model import (
    ModelConfig,
    attention_parameters,
    build_model,
    config_from_dict,
    config_to_dict,
    count_parameters,
)
from realfake.detector.packed import (
    PackedSplit,
    iterate_batches,
    load_split,
    read_batch,
    source_balanced_rows,
)
from realfake.detector.patches import PatchConfig, check_fits, image_logits, random_patches
from realfake.detector.threshold import choose_threshold

log = logging.getLogger(__name__)

SCHEDULES = ("cosine", "onecycle", "none")
SAMPLERS = ("shuffle", "source_balanced")
CLASS_WEIGHTING = ("auto", "on", "off")


@dataclass
class TrainConfig:
    """Training settings (params.yaml section `train`)."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    schedule: str = "cosine"  # cosine | onecycle | none
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01  # cosine ends at lr * min_lr_ratio
    loss: str = "bce"  # bce | focal
    focal_gamma: float = 2.0
    focal_alpha: float | None = None  # weight of the fake class in the focal loss; None: no alpha
    class_weighting: str = "auto"  # auto: weight classes only when max/min count > imbalance_ratio
    imbalance_ratio: float = 1.2
    patience: int = 5  # epochs without improvement of the smoothed val loss before stopping
    smooth_window: int = 3  # running median over this many epochs of val loss
    min_delta: float = 0.001
    min_epochs: int = 6  # BN running stats and warm-up make the first val losses unreliable
    threads: int = 2
    channels_last: bool = True
    # shuffle: every train image once per epoch. source_balanced: draw with replacement so each class is half of
    # the draws and each source an equal share of its class, so no one source defines what "real" looks like
    sampler: str = "shuffle"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = config_from_dict(AugmentConfig, self.augment, "train.augment")
        if isinstance(self.patch, dict):
            self.patch = config_from_dict(PatchConfig, self.patch, "train.patch")
        checks = {
            "schedule": (self.schedule in SCHEDULES, f"one of {SCHEDULES}"),
            "loss": (self.loss in LOSSES, f"one of {LOSSES}"),
            "class_weighting": (self.class_weighting in CLASS_WEIGHTING, f"one of {CLASS_WEIGHTING}"),
            "sampler": (self.sampler in SAMPLERS, f"one of {SAMPLERS}"),
            "epochs": (self.epochs >= 1, ">= 1"),
            "batch_size": (self.batch_size >= 2, ">= 2 (batch norm needs two images)"),
            "lr": (self.lr > 0, "> 0"),
            "patience": (self.patience >= 1, ">= 1"),
            "smooth_window": (self.smooth_window >= 1, ">= 1"),
            "focal_alpha": (self.focal_alpha is None or 0 < self.focal_alpha < 1, "null or in (0, 1)"),
        }
        for name, (ok, rule) in checks.items():
            if not ok:
                raise UserError(f"train.{name} must be {rule}, got {getattr(self, name)!r}")


# ---------------------------------------------------------------- data


def epoch_batches(split: PackedSplit, cfg: TrainConfig, gen: torch.Generator) -> list[np.ndarray]:
    """The train batches of one epoch for `train.sampler` (batches of one are dropped: BN needs two)."""
    if cfg.sampler == "source_balanced":
        order = source_balanced_rows(split, gen)
        batches = [np.sort(order[i : i + cfg.batch_size]) for i in range(0, len(order), cfg.batch_size)]
    else:
        batches = iterate_batches(len(split), cfg.batch_size, gen)
    return [b for b in batches if len(b) > 1]


# ---------------------------------------------------------------- optimisation


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU ops used here are deterministic once seeded)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int) -> int:
    """Use `threads` intra-op threads (0: all cores) and keep OpenCV single-threaded so they do not fight."""
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    return threads


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm scales (1-D tensors), as in timm and torchvision."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Per-step LR schedule: linear warm-up, then cosine decay or constant; or OneCycle."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(total - 1, int(round(cfg.warmup_epochs * steps_per_epoch)))
    if cfg.schedule == "onecycle":
        pct = min(0.5, max(warmup / total, 0.05))
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "none":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class EarlyStopping:
    """Stop when the running median of the val loss has not improved for `patience` epochs.

    Why a median: val loss on this data jumps (0.24 -> 0.82 -> 0.23 in a reference run). A median over
    3 epochs ignores a single-epoch spike, up or down, so one bad epoch neither eats the patience nor
    does one lucky epoch set a bar that the trend cannot beat. A new raw best also counts as
    progress, so training never stops within `patience` epochs of the checkpoint it keeps.
    """

    patience: int = 5
    window: int = 3
    min_delta: float = 0.001
    min_epochs: int = 0
    history: list[float] = field(default_factory=list)
    best: float = math.inf  # lowest raw value (the kept checkpoint)
    best_epoch: int = -1
    ref_raw: float = math.inf  # raw and smoothed values at the last counted progress
    ref_smoothed: float = math.inf
    bad_epochs: int = 0

    def step(self, value: float) -> bool:
        """Record one epoch's val loss; True when it is a new best (save the checkpoint)."""
        value = value if math.isfinite(value) else math.inf  # a NaN/inf epoch is simply a bad epoch
        self.history.append(value)
        smoothed = statistics.median(self.history[-self.window :])
        new_best = value < self.best or self.best_epoch < 0  # any gain updates the kept checkpoint
        if new_best:
            self.best, self.best_epoch = value, len(self.history) - 1
        # only gains above min_delta (raw or smoothed) over the last progress count for the patience
        if value < self.ref_raw - self.min_delta or smoothed < self.ref_smoothed - self.min_delta:
            self.ref_raw, self.ref_smoothed = min(self.ref_raw, value), min(self.ref_smoothed, smoothed)
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return new_best

    @property
    def smoothed(self) -> float:
        """The current running median."""
        return statistics.median(self.history[-self.window :]) if self.history else math.inf

    @property
    def should_stop(self) -> bool:
        """True once patience is used up (never before `min_epochs` epochs)."""
        return len(self.history) >= self.min_epochs and self.bad_epochs >= self.patience


# ---------------------------------------------------------------- loops


def train_one_epoch(model, split, loss_fn, optimizer, scheduler, cfg, preprocessing, gen) -> dict[str, float]:
    """One pass over the shuffled train split with augmentation; mean loss, accuracy, images/s."""
    model.train()
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    for batch in tqdm(epoch_batches(split, cfg, gen), desc="train", leave=False, mininterval=5):
        images, targets = read_batch(split, batch)
        images = augment_batch(images, cfg.augment, gen)
        if cfg.patch.enabled:  # one random patch per image, at the packed resolution
            images = random_patches(images, cfg.patch.size, gen)
        logits = model(to_model_input(images, preprocessing, cfg.channels_last))
        loss = loss_fn(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(batch)
        correct += int(((logits.detach() > 0).float() == targets).sum())
        seen += len(batch)
    seconds = time.perf_counter() - start
    return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1), "images": seen, "seconds": seconds}


@torch.no_grad()
def predict_logits(model: nn.Module, split: PackedSplit, batch_size: int, preprocessing, channels_last) -> np.ndarray:
    """Logits for every kept row of a split, in order, without augmentation (patch-averaged in patch mode)."""
    model.eval()
    patch = PatchConfig.from_preprocessing(preprocessing)
    out = []
    for batch in iterate_batches(len(split), batch_size):
        images, _ = read_batch(split, batch)
        out.append(image_logits(model, to_model_input(images, preprocessing, channels_last), patch))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def binary_metrics(logits: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """Unweighted BCE, accuracy at p=0.5, and ROC AUC (None when only one class is present)."""
    logits_t, y_t = torch.from_numpy(logits).float(), torch.from_numpy(y).float()
    loss = float(nn.functional.binary_cross_entropy_with_logits(logits_t, y_t)) if len(y) else math.nan
    acc = float(((logits > 0) == (y == 1)).mean()) if len(y) else math.nan
    auc = float(roc_auc_score(y, logits)) if len(np.unique(y)) == 2 else None
    return {"loss": loss, "acc": acc, "auc": auc}


# ---------------------------------------------------------------- the whole run


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    packed_dir: str | os.PathLike,
    checkpoint_path: str | os.PathLike,
    live_dir: str | os.PathLike,
    size: int | None = None,
    face_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on `packed_dir` train/val, keep the best-val-loss checkpoint, log to dvclive; return the summary."""
    from dvclive import Live  # imported here: it is slow to import and only the run needs it

    start = time.perf_counter()
    seed_everything(cfg.seed)
    threads = set_threads(cfg.threads)
    train_split, val_split = load_split(packed_dir, "train", size), load_split(packed_dir, "val", size)
    for split in (train_split, val_split):
        if len(split) < 2:
            raise UserError(f"the {split.name} split has {len(split)} usable rows: need at least 2")
    if min(train_split.counts()) == 0:
        raise UserError(f"the train split holds one class only (real, fake = {train_split.counts()})")
    size = int(train_split.images.shape[2])
    preprocessing = preprocessing_for(size)
    if face_params is not None:  # how faces were cut, so `realfake predict` crops new photos the same way
        preprocessing["faces"] = dict(face_params)
    check_fits(cfg.patch, size)
    if cfg.patch.enabled:  # how images are scored: the evaluate stage and `realfake predict` read it from here
        preprocessing["patch"] = config_to_dict(cfg.patch)

    model = build_model(model_cfg)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    counts = train_split.counts()
    weights = choose_class_weights(counts, cfg) if cfg.sampler == "shuffle" else None  # balanced draws already
    loss_fn = BinaryLoss(cfg.loss, cfg.focal_gamma, cfg.focal_alpha, weights)
    optimizer = make_optimizer(model, cfg)
    full, rest = divmod(len(train_split), cfg.batch_size)  # both samplers chunk len(split) rows per epoch
    steps_per_epoch = max(1, full + (rest > 1))
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    stopper = EarlyStopping(cfg.patience, cfg.smooth_window, cfg.min_delta, cfg.min_epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    log.info("train %s, val %s, class weights %s, %d params, %d threads",
             counts, val_split.counts(), weights, count_parameters(model), threads)

    best_state, best_val, history, train_images, train_seconds = None, {}, [], 0, 0.0
    with atomic_dir(live_dir) as tmp_live, Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for epoch in range(cfg.epochs):
            lr = optimizer.param_groups[0]["lr"]
            stats = train_one_epoch(model, train_split, loss_fn, optimizer, scheduler, cfg, preprocessing, gen)
            val = binary_metrics(predict_logits(model, val_split, cfg.eval_batch_size, preprocessing,
                                                cfg.channels_last), val_split.y)
            train_images, train_seconds = train_images + stats["images"], train_seconds + stats["seconds"]
            if stopper.step(val["loss"]):
                best_state, best_val = copy.deepcopy(model.state_dict()), {**val, "epoch": epoch}
            row = epoch_row(epoch, lr, stats, val, stopper.smoothed)
            history.append(row)
            log_epoch(live, row)
            log.info("epoch %d: train loss %.4f, val loss %.4f (median %.4f), val auc %s, %.0f img/s",
                     epoch, stats["loss"], val["loss"], stopper.smoothed, fmt(val["auc"]),
                     stats["images"] / max(stats["seconds"], 1e-9))
            if stopper.should_stop and epoch < cfg.epochs - 1:
                log.info("early stop after epoch %d: no improvement for %d epochs", epoch, stopper.patience)
                break

    model.load_state_dict(best_state)
    p_val = torch.sigmoid(torch.from_numpy(predict_logits(model, val_split, cfg.eval_batch_size, preprocessing,
                                                          cfg.channels_last))).numpy()
    choice = choose_threshold(val_split.y, p_val)  # the decision threshold `realfake predict` applies
    info = {"best_epoch": best_val["epoch"], "val_loss": best_val["loss"], "val_auc": best_val["auc"],
            "threshold": choice.threshold, "threshold_rule": choice.rule}
    save_checkpoint(checkpoint_path, model, model_cfg, preprocessing, info)
    return {
        "best_epoch": best_val["epoch"],
        "best_val_loss": best_val["loss"],
        "best_val_auc": best_val["auc"],
        "best_val_acc": best_val["acc"],
        "threshold": choice.threshold,
        "epochs_run": len(history),
        "stopped_early": len(history) < cfg.epochs,
        "seconds": round(time.perf_counter() - start, 2),
        "train_seconds": round(train_seconds, 2),
        "images_per_s": round(train_images / max(train_seconds, 1e-9), 1),
        "params": count_parameters(model),
        "attention_params": attention_parameters(model),
        "threads": threads,
        "class_weights": weights,
        "data": {"train": train_split.report(), "val": val_split.report(), "size": size},
        "history": history,
    }


def choose_class_weights(counts: list[int], cfg: TrainConfig) -> list[float] | None:
    """Class weights per `train.class_weighting`: auto (only when imbalanced), on, or off."""
    if cfg.class_weighting == "off":
        return None
    ratio = cfg.imbalance_ratio if cfg.class_weighting == "auto" else 1.0
    return class_weights(counts, ratio)


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


def load_configs(params: dict[str, Any]) -> tuple[ModelConfig, TrainConfig, int | None]:
    """ModelConfig, TrainConfig and resize.size from a params.yaml mapping."""
    model_cfg = config_from_dict(ModelConfig, params.get("model"), "model")
    train_cfg = config_from_dict(TrainConfig, params.get("train"), "train")
    size = (params.get("resize") or {}).get("size")
    return model_cfg, train_cfg, int(size) if size is not None else None
