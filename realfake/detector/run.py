"""One training run's settings (`TrainRun`): built once from params by `train_run`, stored whole in the checkpoint.

The train stage, `realfake cv`, the ensemble and the lead's seed scripts all pass one, so none of them can pass less
than another; the checkpoint keeps it under "run" as plain types (`run_record`), and `run_from_record` reads it back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from realfake.core.params import load_section
from realfake.core.training_image import image_size
from realfake.detector.model import ModelConfig, config_to_dict
from realfake.detector.packed import packed_image_size
from realfake.detector.train_config import TrainConfig, data_profile, load_train_config

RUN_KEY = "run"  # where the checkpoint stores the run (checkpoints older than it have none)


@dataclass(frozen=True)
class TrainRun:
    """What one training run reads from params: the configs, the image side, and what the checkpoint records."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    size: int | None = None  # side of the packed images (the packed view's); None: whatever the arrays hold
    faces: dict[str, Any] | None = None  # params `faces`: recorded so `realfake predict` cuts new photos alike
    resize: dict[str, Any] | None = None  # params `resize`: recorded so predict shapes them alike (None: as packed)
    profile: str | None = None  # data.profile, for the fitness record
    profile_overrides: dict[str, Any] = field(default_factory=dict)  # what train.profile_overrides changed


def train_run(params: dict[str, Any], packed_dir: str | os.PathLike) -> TrainRun:
    """The run params describe, for the packed arrays in `packed_dir` (their view gives the image side)."""
    model = load_section(ModelConfig, params, "model")  # every section is checked before anything is logged
    train, overrides = load_train_config(params)
    size = packed_image_size(packed_dir, image_size(params))
    return TrainRun(model, train, size, section(params, "faces"), section(params, "resize"), data_profile(params),
                    overrides)


def section(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A params section as the checkpoint records it (a copy; None when params lack it)."""
    value = params.get(name)
    return None if value is None else dict(value)


def run_record(run: TrainRun) -> dict[str, Any]:
    """The run as plain types, for the checkpoint (loadable with weights_only=True)."""
    return config_to_dict(run)


def run_from_record(record: dict[str, Any]) -> TrainRun:
    """The TrainRun a checkpoint stored (run_record), its configs checked by the params loader's rules."""
    return TrainRun(load_section(ModelConfig, {"run": record}, "run.model"),
                    load_section(TrainConfig, {"run": record}, "run.train"), record.get("size"), record.get("faces"),
                    record.get("resize"), record.get("profile"), dict(record.get("profile_overrides") or {}))
