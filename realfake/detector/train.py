"""Training the detector on the packed arrays (or streamed shards), top to bottom.

Input (written by the sample stage), `train.input: packed` (default): `data/packed/<split>.npy`, a uint8
(N, 3, S, S) RGB array saved with `np.save` and memory-mapped here, and `data/packed/<split>.parquet`, whose row i
describes array row i (`face_id`, `label`, `y` 0 real / 1 fake, `source`, `group`). No image is decoded while
training. `train.input: shards`: the same images streamed from WebDataset shards (`realfake.detector.shard_stream`).

Device (`train.device: auto | cpu | cuda`): on the CPU nothing differs from earlier releases (float32, the same
ops in the same order); on CUDA, autocast (`train.amp`) and a larger batch (`train.cuda_batch_size`).

Output: the best checkpoint (lowest validation loss), dvclive logs, and a summary dict for
`metrics/train.json` and the model card.

Around this loop: the settings in `train_config`, the batches in `batches`, the optimiser, schedule and early
stopping in `schedule`, the augmentation in `augment`, the network in `model`.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from realfake.core.atomic import atomic_dir
from realfake.core.device import Precision, resolve_device, resolve_precision
from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.progress import tqdm
from realfake.core.training_image import ResizeConfig
from realfake.core.view_record import read_view_record
from realfake.detector.augment import augment_batch
from realfake.detector.batches import Split, eval_batches, open_split, train_batches
from realfake.detector.checkpoint import preprocessing_for, save_checkpoint, to_model_input
from realfake.detector.fitness import assess
from realfake.detector.losses import BinaryLoss, class_weights
from realfake.detector.model import (
    attention_parameters,
    build_model,
    config_to_dict,
    count_parameters,
)
from realfake.detector.packed import PackedSplit, packed_view
from realfake.detector.patch_head import image_logit
from realfake.detector.patches import PatchConfig, check_fits, image_logits, random_patches
from realfake.detector.run import TrainRun, run_record
from realfake.detector.sbi import KIND as SBI_KIND
from realfake.detector.sbi import add_pseudo_fakes
from realfake.detector.schedule import EarlyStopping, make_optimizer, make_scheduler
from realfake.detector.threshold import choose_threshold
from realfake.detector.train_config import TrainConfig
from realfake.detector.verdict import calibrate, choose_operating_point

log = logging.getLogger(__name__)

MIN_CUDA_STEPS = 20  # the CUDA batch is used only when an epoch still has this many steps


# ---------------------------------------------------------------- setup


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


# ---------------------------------------------------------------- loops


@dataclass
class Runtime:
    """Where and how the math runs: device, autocast precision, and the fp16 loss scaler (None otherwise)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: Precision = field(default_factory=Precision)
    scaler: torch.amp.GradScaler | None = None


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


def resize_record(resize_params: dict[str, Any] | None, size: int) -> dict[str, Any]:
    """How the packed images were shaped from the crops: params.yaml `resize` read as the resize stage reads it.

    None (a caller that packed its own arrays, as the tests do) means nothing was re-encoded.
    """
    section = {"reencode": "none"} if resize_params is None else dict(resize_params)
    return asdict(load_section(ResizeConfig, {"resize": {**section, "size": int(size)}}, "resize"))


# ---------------------------------------------------------------- the whole run


def train(run: TrainRun, packed_dir: str | os.PathLike, checkpoint_path: str | os.PathLike,
          live_dir: str | os.PathLike) -> dict[str, Any]:
    """Train on train/val (`train.input`: packed_dir or the shards), keep the best-val-loss checkpoint, log to dvclive; return the summary.

    run.faces and run.resize (params.yaml `faces`, `resize`) made the packed images: they travel in the
    checkpoint so `realfake predict` shapes a new photo exactly as training did; the checkpoint stores the run
    whole. run.profile (`data.profile`) goes into the fitness record (fitness.py).
    """
    from dvclive import Live  # imported here: it is slow to import and only the run needs it

    start = time.perf_counter()
    model_cfg, cfg, size, face_params, resize_params, profile = (run.model, run.train, run.size, run.faces,
                                                                 run.resize, run.profile)
    device = resolve_device(cfg.device, "train.device")
    seed_everything(cfg.seed)
    threads = set_threads(cfg.threads)
    train_split, val_split = (open_split(cfg, packed_dir, name, size, device) for name in ("train", "val"))
    for split in (train_split, val_split):
        if len(split) < 2:
            raise UserError(f"the {split.name} split has {len(split)} usable rows: need at least 2")
    if min(train_split.counts()) == 0:
        raise UserError(f"the train split holds one class only (real, fake = {train_split.counts()})")
    size = int(train_split.images.shape[2]) if isinstance(train_split, PackedSplit) else train_split.size
    cfg, runtime = cuda_settings(cfg, device, len(train_split))
    preprocessing = preprocessing_for(size)
    if face_params is not None:  # how faces were cut, so `realfake predict` crops new photos the same way
        preprocessing["faces"] = dict(face_params)
    preprocessing["resize"] = resize_record(resize_params, size)  # and how the crop became the training image
    # which view the packed arrays hold (sample.view) and its params, so predict cuts new photos the same way
    preprocessing["view"] = (packed_view(packed_dir, size) if cfg.input == "packed"
                             else read_view_record(cfg.shards.location) or {"name": "aligned"})
    preprocessing["view"]["size"] = size
    check_fits(cfg.patch, size)
    model_side = cfg.patch.size if cfg.patch.enabled else size
    if model_cfg.arch == "npr" and model_side % 2:  # the residual works on 2x2 cells
        raise UserError(f"model.arch npr needs an even input side, got {model_side} px (resize.size or train.patch.size)")
    if cfg.patch.enabled:  # how images are scored: the evaluate stage and `realfake predict` read it from here
        preprocessing["patch"] = config_to_dict(cfg.patch)
        if cfg.patch.positions == "random":  # as before the centre crop existed: old checkpoints' bytes
            del preprocessing["patch"]["positions"]

    model = build_model(model_cfg)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = model.to(runtime.device) if runtime.device.type != "cpu" else model
    counts = train_split.counts()
    weights = choose_class_weights(counts, cfg) if cfg.sampler == "shuffle" else None  # balanced draws already
    loss_fn = BinaryLoss(cfg.loss, cfg.focal_gamma, cfg.focal_alpha, weights, cfg.label_smoothing).to(runtime.device)
    optimizer = make_optimizer(model, cfg)
    full, rest = divmod(len(train_split), cfg.batch_size)  # both samplers chunk len(split) rows per epoch
    steps_per_epoch = max(1, full + (rest > 1))
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    stopper = EarlyStopping(cfg.patience, cfg.smooth_window, cfg.min_delta, cfg.min_epochs)
    gen = torch.Generator().manual_seed(cfg.seed)
    log.info("train %s, val %s, class weights %s, %d params, %d threads, %s (%s), batch %d, input %s",
             counts, val_split.counts(), None if weights is None else [round(w, 4) for w in weights],
             count_parameters(model), threads, runtime.device,
             runtime.precision.name, cfg.batch_size, cfg.input)

    best_state, best_val, history, train_images, train_seconds, pseudo_fakes = None, {}, [], 0, 0.0, 0
    with atomic_dir(live_dir) as tmp_live, Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        for epoch in range(cfg.epochs):
            lr = optimizer.param_groups[0]["lr"]
            stats = train_one_epoch(model, train_split, loss_fn, optimizer, scheduler, cfg, preprocessing, gen,
                                    runtime, steps_per_epoch)
            val = logit_metrics(val_split.y, predict_logits(model, val_split, cfg.eval_batch_size, preprocessing,
                                                            cfg.channels_last, runtime))
            train_images, train_seconds = train_images + stats["images"], train_seconds + stats["seconds"]
            pseudo_fakes += stats["sbi"]
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
    logits_val = predict_logits(model, val_split, cfg.eval_batch_size, preprocessing, cfg.channels_last, runtime)
    info, verdict = finish_checkpoint(model, run, val_split, logits_val, preprocessing, checkpoint_path, {"best_epoch": best_val["epoch"], "val_loss": best_val["loss"],
                                                        "val_auc": best_val["auc"]})
    summary = {
        "best_epoch": best_val["epoch"],
        "best_val_loss": best_val["loss"],
        "best_val_auc": best_val["auc"],
        "best_val_acc": best_val["acc"],
        "threshold": info["threshold"],
        "operating_point": info["operating_point"],
        "verdict_val": verdict,
        "profile": profile,
        "fit_to_judge": info["fitness"]["fit"],
        "fitness": info["fitness"],
        "epochs_run": len(history),
        "stopped_early": len(history) < cfg.epochs,
        "seconds": round(time.perf_counter() - start, 2),
        "train_seconds": round(train_seconds, 2),
        "images_per_s": round(train_images / max(train_seconds, 1e-9), 1),
        "train_images": train_images,
        "params": count_parameters(model),
        "attention_params": attention_parameters(model),
        "threads": threads,
        "device": runtime.device.type,
        "precision": runtime.precision.name,
        "batch_size": cfg.batch_size,
        "input": cfg.input,
        "class_weights": weights,
        "data": {"train": train_split.report(), "val": val_split.report(), "size": size,
                 "view": preprocessing["view"]},
        "history": history,
    }
    if cfg.sbi.enabled:  # train.sbi: the pseudo-fakes drawn (train split only, never val or test), by kind
        summary["data"]["train"]["pseudo_fakes"] = {SBI_KIND: pseudo_fakes}
    return summary


def finish_checkpoint(model: nn.Module, run: TrainRun, val_split: Split, logits_val: np.ndarray,
                      preprocessing: dict[str, Any], checkpoint_path: str | os.PathLike,
                      info: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Calibrate on val, choose the operating point and the metrics threshold, assess fitness, save; (info, report)."""
    cfg, profile = run.train, run.profile
    point, verdict = choose_operating_point(val_split.y, logits_val, cfg.verdict)
    p_val = calibrate(logits_val, point.temperature)  # every score the checkpoint gives from now on is calibrated
    choice = choose_threshold(val_split.y, p_val)  # the threshold of the evaluation's accuracy, F1, MCC
    fitness = assess(info["val_auc"], len(val_split), profile, cfg.fitness)
    info = {**info, "threshold": choice.threshold, "threshold_rule": choice.rule,
            "operating_point": point.record(), "profile": profile, "fitness": fitness}
    log.info("calibration: temperature %.3f, val ECE %.4f -> %.4f; operating point: fake from p %.4f (val FPR "
             "%.3f), real below p %.4f (val fakes called real %.3f), %.3f of val uncertain", point.temperature,
             verdict.get("val_ece_before", float("nan")), verdict.get("val_ece_after", float("nan")), point.t_fake,
             verdict.get("fpr") or 0.0, point.t_real, verdict.get("fake_called_real") or 0.0,
             verdict.get("uncertain") or 0.0)
    if not fitness["fit"]:
        log.warning("model not fit to judge photos: %s", "; ".join(fitness["reasons"]))
    save_checkpoint(checkpoint_path, model, run.model, preprocessing, info, run_record(run))
    return info, verdict


def cuda_settings(cfg: TrainConfig, device: torch.device, n_train: int) -> tuple[TrainConfig, Runtime]:
    """The config and runtime for `device`: on CUDA autocast, and the larger batch with a sqrt-scaled lr.

    The sqrt rule keeps the gradient noise of Adam-type optimisers about constant (Hoffer et al. 2017). The CUDA
    batch is skipped when an epoch would fall under MIN_CUDA_STEPS steps (the embedded sample): a handful of
    steps per epoch undertrains. On the CPU the config comes back unchanged.
    """
    precision = resolve_precision(cfg.amp, device, "train.amp")
    if device.type != "cuda":
        return cfg, Runtime(device, precision)
    torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    scaler = torch.amp.GradScaler("cuda") if precision.needs_scaler else None
    batch = cfg.cuda_batch_size
    if batch and batch != cfg.batch_size and n_train >= MIN_CUDA_STEPS * batch:
        cfg = replace(cfg, batch_size=batch, lr=cfg.lr * math.sqrt(batch / cfg.batch_size))
    elif batch and batch != cfg.batch_size:
        log.info("train.cuda_batch_size=%d skipped: %d train images give fewer than %d steps per epoch",
                 batch, n_train, MIN_CUDA_STEPS)
    return cfg, Runtime(device, precision, scaler)


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


