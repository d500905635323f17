"""models/attributes.pt: what it holds and how the model is rebuilt from it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from realfake.attributes.config import AttributesConfig
from realfake.attributes.network import build_attribute_net


def checkpoint(model, cfg: AttributesConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What models/attributes.pt holds: tensors and plain values only (loads with weights_only=True)."""
    return {"state_dict": model.state_dict(), "config": asdict(cfg), "classes": cfg.classes(),
            "history": history, "format": "realfake.attributes/1"}


def load_model(path: str | Path):
    """Rebuild the model and its config from models/attributes.pt."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = AttributesConfig(**ckpt["config"])
    model = build_attribute_net(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, cfg
