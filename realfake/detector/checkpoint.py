"""The detector checkpoint (save, safe load) and the model input it records."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from realfake.core.atomic import atomic_path
from realfake.core.errors import UserError
from realfake.detector.model import ModelConfig, build_model, config_to_dict

CHECKPOINT_FORMAT = "realfake-detector/1"
MEAN = [0.5, 0.5, 0.5]  # (x / 255 - mean) / std maps pixels to [-1, 1]
STD = [0.5, 0.5, 0.5]


def to_model_input(images: torch.Tensor, preprocessing: dict[str, Any], channels_last: bool) -> torch.Tensor:
    """uint8 (or 0-1 float) RGB batch to the normalised float tensor the model expects."""
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    mean = torch.tensor(preprocessing["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing["std"]).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def save_checkpoint(path, model: nn.Module, model_cfg: ModelConfig, preprocessing: dict, info: dict) -> None:
    """Save state_dict + config + preprocessing as plain types (loadable with weights_only=True), atomically."""
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": state,
        "model_config": config_to_dict(model_cfg),
        "preprocessing": dict(preprocessing),
        "classes": ["real", "fake"],  # the logit is for class 1, "fake"
        "info": info,
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(checkpoint, tmp)


def load_detector(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from a checkpoint (safe load: weights_only=True); returns (model in eval mode, checkpoint)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise UserError(f"{path} not found: run the train stage first") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    model = build_model(ModelConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint


def preprocessing_for(size: int) -> dict[str, Any]:
    """What an image must go through before the model: plain types, stored in the checkpoint."""
    return {"size": int(size), "channel_order": "RGB", "layout": "NCHW", "scale": 1 / 255, "mean": MEAN, "std": STD}
