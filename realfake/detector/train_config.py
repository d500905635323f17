"""Training settings: `TrainConfig` (params.yaml `train`) and its loader with the data profile's overrides."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from realfake.core.errors import UserError
from realfake.core.params import load_section, refuse_misspelt_section
from realfake.detector.augment import AugmentConfig
from realfake.detector.fitness import FitnessConfig
from realfake.detector.losses import Loss
from realfake.detector.patches import PatchConfig
from realfake.detector.sbi import SbiConfig
from realfake.detector.shard_stream import ShardInputConfig
from realfake.detector.verdict import VerdictConfig

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training settings (params.yaml section `train`)."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    schedule: Literal["cosine", "onecycle", "none"] = "cosine"
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01  # cosine ends at lr * min_lr_ratio
    loss: Loss = "bce"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None  # weight of the fake class in the focal loss; None: no alpha
    label_smoothing: float = 0.0  # targets eps/2 and 1 - eps/2 (SAFE: 0.1); 0: off
    class_weighting: Literal["auto", "on", "off"] = "auto"  # auto: weight classes only when max/min count > imbalance_ratio
    imbalance_ratio: float = 1.2
    patience: int = 5  # epochs without improvement of the smoothed val loss before stopping
    smooth_window: int = 3  # running median over this many epochs of val loss
    min_delta: float = 0.001
    min_epochs: int = 6  # BN running stats and warm-up make the first val losses unreliable
    threads: int = 2
    channels_last: bool = True
    # shuffle: every train image once per epoch. source_balanced: draw with replacement so each class is half of
    # the draws and each source an equal share of its class, so no one source defines what "real" looks like
    sampler: Literal["shuffle", "source_balanced"] = "shuffle"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)
    sbi: SbiConfig = field(default_factory=SbiConfig)  # self-blended pseudo-fakes from real training faces (sbi.py)
    input: Literal["packed", "shards"] = "packed"  # packed: data/packed arrays | shards: stream WebDataset shards
    shards: ShardInputConfig = field(default_factory=ShardInputConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (auto: CUDA when torch sees one; resolve_device checks it)
    amp: Literal["bf16", "fp16", "off"] = "bf16"  # autocast on CUDA (never on the CPU)
    # on CUDA: this batch (lr scaled by sqrt(cuda_batch_size / batch_size)) when an epoch keeps >= 20 steps
    cuda_batch_size: int | None = 256
    fitness: FitnessConfig = field(default_factory=FitnessConfig)  # when the model may judge photos (fitness.py)
    verdict: VerdictConfig = field(default_factory=VerdictConfig)  # calibration and operating point (verdict.py)

    def __post_init__(self) -> None:
        checks = {
            "cuda_batch_size": (self.cuda_batch_size is None or self.cuda_batch_size >= 2, "null or >= 2"),
            "epochs": (self.epochs >= 1, ">= 1"),
            "batch_size": (self.batch_size >= 2, ">= 2 (batch norm needs two images)"),
            "lr": (self.lr > 0, "> 0"),
            "patience": (self.patience >= 1, ">= 1"),
            "smooth_window": (self.smooth_window >= 1, ">= 1"),
            "focal_alpha": (self.focal_alpha is None or 0 < self.focal_alpha < 1, "null or in (0, 1)"),
            "label_smoothing": (0.0 <= self.label_smoothing < 1.0, "in [0, 1)"),
        }
        for name, (ok, rule) in checks.items():
            if not ok:
                raise UserError(f"train.{name} must be {rule}, got {getattr(self, name)!r}")


def data_profile(params: dict[str, Any]) -> str | None:
    """params `data.profile` as the train stage reads it (its one data param); None when params lack it."""
    return (params.get("data") or {}).get("profile")


def train_section(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """params.yaml `train` with `profile_overrides.<data.profile>` merged over it (top-level keys); and that override.

    The embedded sample has ~130 training faces: at the mirror's batch size an epoch is two optimiser steps and
    early stopping ends the run before the model learns anything (README, "The sample run"), so the sample
    profile trains with its own batch size and patience while the mirror defaults stay as they are.
    """
    if params.get("train") is None:
        refuse_misspelt_section(params, "train")
    section = dict(params.get("train") or {})
    overrides = section.pop("profile_overrides", None) or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict | None) for v in overrides.values()):
        raise UserError("train.profile_overrides must map a data profile to a mapping of train params")
    override = dict(overrides.get(data_profile(params)) or {})
    unknown = sorted(set(override) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise UserError(f"unknown key(s) in train.profile_overrides: {unknown}")
    return {**section, **override}, override


def load_train_config(params: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """TrainConfig from params.yaml `train` (realfake.core.params.load_section rules) with the data profile's
    `train.profile_overrides` applied; and that override."""
    section, override = train_section(params)
    cfg = load_section(TrainConfig, {"train": section}, "train")  # a bad value fails before the override is logged
    if override:
        log.debug("data.profile=%s: train.profile_overrides sets %s", data_profile(params),
                 ", ".join(f"{k}={v}" for k, v in override.items()))
    return cfg, override
