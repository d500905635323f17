"""Training the detector, top to bottom: data, model, loss, optimiser, loop, save (packed arrays or streamed shards).

Input (written by the sample stage), `train.input: packed` (default): `data/packed/<split>.npy`, a uint8
(N, 3, S, S) RGB array saved with `np.save` and memory-mapped here, and `data/packed/<split>.parquet`, whose row i
describes array row i (`face_id`, `label`, `y` 0 real / 1 fake, `source`, `group`). No image is decoded while
training. `train.input: shards`: the same images streamed from WebDataset shards (`realfake.detector.shard_stream`).

Device (`train.device: auto | cpu | cuda`): on the CPU nothing differs from earlier releases (float32, the same
ops in the same order); on CUDA, autocast (`train.amp`) and a larger batch (`train.cuda_batch_size`).

Output: the best checkpoint (lowest validation loss, storing the whole `TrainRun`), dvclive logs, and a summary
dict for `metrics/train.json` and the model card.

Around this file: the run's settings in `run` (and `train_config`), the checkpoint's input record in `record`,
the epoch loop in `loop`, the batches in `batches`, the optimiser, schedule and early stopping in `schedule`, the
augmentation in `augment`, the network in `model`.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from realfake.core.device import resolve_device, resolve_precision
from realfake.core.errors import UserError
from realfake.detector.batches import Split, open_split
from realfake.detector.checkpoint import save_checkpoint
from realfake.detector.fitness import assess
from realfake.detector.loop import Fitted, Loop, Runtime, fit, predict_logits
from realfake.detector.losses import BinaryLoss, class_weights
from realfake.detector.model import attention_parameters, build_model, count_parameters
from realfake.detector.packed import PackedSplit
from realfake.detector.record import preprocessing_record
from realfake.detector.run import TrainRun, run_record
from realfake.detector.sbi import KIND as SBI_KIND
from realfake.detector.schedule import make_optimizer, make_scheduler
from realfake.detector.threshold import choose_threshold
from realfake.detector.train_config import TrainConfig
from realfake.detector.verdict import calibrate, choose_operating_point

log = logging.getLogger(__name__)

MIN_CUDA_STEPS = 20  # the CUDA batch is used only when an epoch still has this many steps


@dataclass
class Data:
    """The run's data as the loop sees it: both splits, the image side, the config and runtime for the device."""

    train: Split
    val: Split
    size: int
    cfg: TrainConfig  # run.train, with the CUDA batch and lr where they apply (cuda_settings)
    runtime: Runtime
    preprocessing: dict[str, Any]  # what the checkpoint records about the input (record.py)
    threads: int


def train(run: TrainRun, packed_dir: str | os.PathLike, checkpoint_path: str | os.PathLike,
          live_dir: str | os.PathLike) -> dict[str, Any]:
    """Train on train/val (`train.input`: packed_dir or the shards), keep the best-val-loss checkpoint, log to dvclive; return the summary.

    run.faces and run.resize (params.yaml `faces`, `resize`) made the packed images: they travel in the
    checkpoint (with the whole run) so `realfake predict` shapes a new photo exactly as training did. run.profile
    (`data.profile`) goes into the fitness record (fitness.py).
    """
    start = time.perf_counter()
    data = open_data(run, packed_dir)
    cfg, runtime = data.cfg, data.runtime

    model = build_model(run.model)  # the first draws of the seeded generators: the initial weights
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = model.to(runtime.device) if runtime.device.type != "cpu" else model

    weights = choose_class_weights(data.train.counts(), cfg) if cfg.sampler == "shuffle" else None  # balanced draws
    loss_fn = BinaryLoss(cfg.loss, cfg.focal_gamma, cfg.focal_alpha, weights, cfg.label_smoothing).to(runtime.device)

    optimizer = make_optimizer(model, cfg)
    full, rest = divmod(len(data.train), cfg.batch_size)  # both samplers chunk len(split) rows per epoch
    steps_per_epoch = max(1, full + (rest > 1))
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    log.info("train %s, val %s, class weights %s, %d params, %d threads, %s (%s), batch %d, input %s",
             data.train.counts(), data.val.counts(), None if weights is None else [round(w, 4) for w in weights],
             count_parameters(model), data.threads, runtime.device, runtime.precision.name, cfg.batch_size, cfg.input)

    fitted = fit(Loop(model, data.train, data.val, loss_fn, optimizer, scheduler, cfg, data.preprocessing, runtime,
                      steps_per_epoch), live_dir)

    model.load_state_dict(fitted.best_state)
    logits_val = predict_logits(model, data.val, cfg.eval_batch_size, data.preprocessing, cfg.channels_last, runtime)
    best = fitted.best_val
    info, verdict = finish_checkpoint(model, run, data.val, logits_val, data.preprocessing, checkpoint_path,
                                      {"best_epoch": best["epoch"], "val_loss": best["loss"], "val_auc": best["auc"]})
    return run_summary(run, data, fitted, model, weights, info, verdict, start)


def open_data(run: TrainRun, packed_dir: str | os.PathLike) -> Data:
    """Seed, set the threads, open train and val (each usable, train with both classes) and record the input."""
    cfg = run.train
    device = resolve_device(cfg.device, "train.device")
    seed_everything(cfg.seed)
    threads = set_threads(cfg.threads)
    train_split, val_split = (open_split(cfg, packed_dir, name, run.size, device) for name in ("train", "val"))
    for split in (train_split, val_split):
        if len(split) < 2:
            raise UserError(f"the {split.name} split has {len(split)} usable rows: need at least 2")
    if min(train_split.counts()) == 0:
        raise UserError(f"the train split holds one class only (real, fake = {train_split.counts()})")
    size = int(train_split.images.shape[2]) if isinstance(train_split, PackedSplit) else train_split.size
    cfg, runtime = cuda_settings(cfg, device, len(train_split))
    return Data(train_split, val_split, size, cfg, runtime, preprocessing_record(run, packed_dir, size), threads)


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


def finish_checkpoint(model: nn.Module, run: TrainRun, val_split: Split, logits_val: np.ndarray,
                      preprocessing: dict[str, Any], checkpoint_path: str | os.PathLike,
                      info: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Calibrate on val, choose the operating point and the metrics threshold, assess fitness, save; (info, report)."""
    cfg, profile = run.train, run.profile
    point, verdict = choose_operating_point(val_split.y, logits_val, cfg.verdict)
    # every score the checkpoint gives from now on is calibrated
    p_val = calibrate(logits_val, point.temperature, point.bias)
    choice = choose_threshold(val_split.y, p_val)  # the threshold of the evaluation's accuracy, F1, MCC
    fitness = assess(info["val_auc"], len(val_split), profile, cfg.fitness)
    info = {**info, "threshold": choice.threshold, "threshold_rule": choice.rule,
            "operating_point": point.record(), "profile": profile, "fitness": fitness}
    log.info("calibration: %s, temperature %.3f, bias %.3f, val ECE %.4f -> %.4f; operating point: fake from p %.4f "
             "(val FPR %.3f), real below p %.4f (val fakes called real %.3f), %.3f of val uncertain",
             cfg.verdict.calibration, point.temperature, point.bias,
             verdict.get("val_ece_before", float("nan")), verdict.get("val_ece_after", float("nan")), point.t_fake,
             verdict.get("fpr") or 0.0, point.t_real, verdict.get("fake_called_real") or 0.0,
             verdict.get("uncertain") or 0.0)
    if not fitness["fit"]:
        log.warning("model not fit to judge photos: %s", "; ".join(fitness["reasons"]))
    save_checkpoint(checkpoint_path, model, run.model, preprocessing, info, run_record(run))
    return info, verdict


def run_summary(run: TrainRun, data: Data, fitted: Fitted, model: nn.Module, weights: list[float] | None,
                info: dict[str, Any], verdict: dict, start: float) -> dict[str, Any]:
    """The run's summary (metrics/train.json, reports/train.json, the model card), keys in their published order."""
    best, history = fitted.best_val, fitted.history
    summary = {
        "best_epoch": best["epoch"],
        "best_val_loss": best["loss"],
        "best_val_auc": best["auc"],
        "best_val_acc": best["acc"],
        "threshold": info["threshold"],
        "operating_point": info["operating_point"],
        "verdict_val": verdict,
        "profile": run.profile,
        "fit_to_judge": info["fitness"]["fit"],
        "fitness": info["fitness"],
        "epochs_run": len(history),
        "stopped_early": len(history) < data.cfg.epochs,
        "seconds": round(time.perf_counter() - start, 2),
        "train_seconds": round(fitted.train_seconds, 2),
        "images_per_s": round(fitted.train_images / max(fitted.train_seconds, 1e-9), 1),
        "train_images": fitted.train_images,
        "params": count_parameters(model),
        "attention_params": attention_parameters(model),
        "threads": data.threads,
        "device": data.runtime.device.type,
        "precision": data.runtime.precision.name,
        "batch_size": data.cfg.batch_size,
        "input": data.cfg.input,
        "class_weights": weights,
        "data": {"train": data.train.report(), "val": data.val.report(), "size": data.size,
                 "view": data.preprocessing["view"]},
        "history": history,
    }
    if data.cfg.sbi.enabled:  # train.sbi: the pseudo-fakes drawn (train split only, never val or test), by kind
        summary["data"]["train"]["pseudo_fakes"] = {SBI_KIND: fitted.pseudo_fakes}
    return summary


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
