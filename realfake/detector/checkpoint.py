"""The detector checkpoint (save, safe load) and the model input it records."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from realfake.core.atomic import write_torch
from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.detector.model import LATER_KEYS, ModelConfig, build_model, model_record
from realfake.detector.patches import PatchConfig

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "realfake-detector/1"
DIGEST_KEY = "weights_sha256"  # sha256 of the state_dict (weights_digest), written by save_checkpoint
_UNDIGESTED_WARNED: set[str] = set()  # one warning per old checkpoint and process
MEAN = [0.5, 0.5, 0.5]  # (x / 255 - mean) / std maps pixels to [-1, 1]
STD = [0.5, 0.5, 0.5]


def to_model_input(images: torch.Tensor, preprocessing: dict[str, Any], channels_last: bool,
                   device: torch.device | None = None) -> torch.Tensor:
    """uint8 (or 0-1 float) RGB batch to the normalised float tensor the model expects (on `device` if given)."""
    if device is not None and device.type != "cpu":  # ship uint8 (4x fewer bytes), convert on the device
        images = images.to(device, non_blocking=True)
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    mean = torch.tensor(preprocessing["mean"], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing["std"], device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def weights_digest(state_dict: Any) -> str:
    """sha256 over every tensor of a state_dict (name, dtype, shape and bytes, in name order).

    The zip torch writes carries no checksum of its tensor data: flipped bytes load without a word and move the
    scores. The digest is an integrity check against damage, not a signature (anyone can recompute it).
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict is a {type(state_dict).__name__}, not a mapping")
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name]
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{name!r}] is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path, model: nn.Module, model_cfg: ModelConfig, preprocessing: dict, info: dict,
                    run: dict[str, Any] | None = None) -> None:
    """Save state_dict + config + preprocessing (+ the run's record) as plain types (weights_only=True), atomically.

    The weights' digest (weights_digest) travels with them; read_checkpoint refuses a file whose weights differ.
    """
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        DIGEST_KEY: weights_digest(state),
        "state_dict": state,
        "model_config": model_record(model_cfg),  # every switch that changes inference (model.input, arch)
        "preprocessing": dict(preprocessing),
        "classes": ["real", "fake"],  # the logit is for class 1, "fake"
        "info": info,
    }
    if run is not None:  # the whole TrainRun (realfake.detector.run.run_record); older checkpoints have none
        checkpoint["run"] = run
    write_torch(path, checkpoint)  # byte for byte reproducible (torch.save to a temp name is not)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """torch.load with weights_only=True; every way a file can fail to be a checkpoint is one UserError line.

    torch raises many types here (RuntimeError for a cut zip, EOFError when empty, KeyError or UnpicklingError
    for other files), and its refusal message suggests weights_only=False, which would run the file's code:
    so the message is ours, and the refusal never points to an unsafe load.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"model {path} not found: train one with `dvc repro` or pass --model")
    if not path.is_file():
        raise UserError(f"model {path} is not a file")
    if path.stat().st_size == 0:
        raise UserError(f"model {path} is empty (0 bytes): not a checkpoint; re-run the train stage")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- see the docstring
        wanted = re.search(r"GLOBAL (\S+)", str(exc))
        if wanted:
            raise UserError(f"model {path} refused: it asks to run Python code ({wanted.group(1)}), which a model file "
                            "never needs; nothing was run. Use only checkpoints written by the train stage") from None
        raise UserError(f"model {path} is not a {CHECKPOINT_FORMAT} checkpoint (truncated or another kind of file: "
                        f"{type(exc).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"model {path} is not a {CHECKPOINT_FORMAT} checkpoint")
    check_digest(checkpoint, path)
    return checkpoint


def check_digest(checkpoint: dict[str, Any], path: Path) -> None:
    """Refuse weights that differ from the digest saved with them; accept a checkpoint older than digests, warning once.

    Old checkpoints are accepted because the digest guards against damage, not forgery, and refusing them would
    throw away trained models; retraining (or `dvc repro` of the train stage) writes one with a digest.
    """
    recorded = checkpoint.get(DIGEST_KEY)
    if recorded is None:
        if str(path) not in _UNDIGESTED_WARNED:
            _UNDIGESTED_WARNED.add(str(path))
            log.warning("model %s records no digest of its weights (written before digests were): damage to it "
                        "cannot be detected; retrain to get one", path)
        return
    try:
        actual = weights_digest(checkpoint.get("state_dict"))
    except (TypeError, RuntimeError) as exc:
        raise UserError(f"model {path} is a damaged {CHECKPOINT_FORMAT} checkpoint: {exc}") from None
    if actual != recorded:
        raise UserError(f"model {path} is damaged: its weights do not match the digest saved with them "
                        f"({DIGEST_KEY} {str(recorded)[:12]}…, the weights give {actual[:12]}…); "
                        "restore it (`dvc checkout`) or retrain")


def load_detector(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from a checkpoint (safe load: weights_only=True); returns (model in eval mode, checkpoint)."""
    checkpoint = read_checkpoint(path)
    try:
        # a key the record leaves out means "as before" (LATER_KEYS), not today's default
        record = {**LATER_KEYS, **checkpoint["model_config"]}
        model = build_model(load_section(ModelConfig, {"model_config": record}, "model_config"))
        check_weights(model, checkpoint["state_dict"])
        model.load_state_dict(checkpoint["state_dict"])
        PatchConfig.from_preprocessing(checkpoint["preprocessing"])
    except (KeyError, TypeError, ValueError, RuntimeError, UserError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(f"model {path} is a damaged {CHECKPOINT_FORMAT} checkpoint: {reason}") from None
    return model.eval(), checkpoint


def check_weights(model: nn.Module, state: dict[str, Any]) -> None:
    """The checkpoint holds exactly the model's weights (a missing ensemble member is named as such)."""
    expected, got = set(model.state_dict()), set(state)
    missing, extra = sorted(expected - got), sorted(got - expected)
    if not (missing or extra):
        return
    lost = sorted({k.split(".")[1] for k in missing if k.startswith("members.")}, key=int)
    what = (f"ensemble member(s) {', '.join(lost)} of {len(model.members)} have no weights" if lost else
            f"{len(missing)} weights missing{f' (first: {missing[0]})' if missing else ''}, {len(extra)} unexpected"
            f"{f' (first: {extra[0]})' if extra else ''}")
    raise ValueError(what)


def preprocessing_for(size: int) -> dict[str, Any]:
    """What an image must go through before the model: plain types, stored in the checkpoint."""
    return {"size": int(size), "channel_order": "RGB", "layout": "NCHW", "scale": 1 / 255, "mean": MEAN, "std": STD}
