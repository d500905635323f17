"""Grad-CAM (Selvaraju et al. 2017) of the detector's fake logit: where the model looked. Used by the evaluate
stage's figure and by `realfake serve`'s heat maps."""

from __future__ import annotations

import numpy as np
import torch


def grad_cam(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Grad-CAM maps (N×H×W in [0,1]) of the fake logit at the second-to-last stage's output (model input x)."""
    layer = model.stages[-2] if len(model.stages) > 1 else model.stages[-1]
    feats = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: feats.__setitem__("a", out))
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logits = model(x)
            grads = torch.autograd.grad(logits.sum(), feats["a"])[0]
    finally:
        handle.remove()
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * feats["a"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
    return cam.detach().cpu().numpy()


def cam_overlay(face: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """A face (3×S×S uint8) blended with its map (S×S in [0,1]), red = evidence for fake, blue = none: 3×S×S uint8."""
    heat = np.stack([cam, np.zeros_like(cam), 1 - cam]) * 255
    return (0.55 * face.astype(np.float32) + 0.45 * heat).clip(0, 255).astype(np.uint8)
