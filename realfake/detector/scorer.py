"""Score uint8 image batches with a saved detector exactly as it was trained, a batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from realfake.core.device import resolve_device
from realfake.core.progress import tqdm
from realfake.detector.checkpoint import load_detector, to_model_input
from realfake.detector.patches import PatchConfig, image_logits
from realfake.detector.verdict import calibrate, operating_point_of


class Scorer:
    """Calibrated p_fake of the detector for uint8 N×3×S×S batches, exactly as the training input was prepared.

    `operating_point` is the checkpoint's (verdict.py); checkpoints from before it score uncalibrated (T 1, b 0).
    """

    def __init__(self, model_path: Path, device: str | torch.device = "cpu"):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model, checkpoint = load_detector(model_path)
        self.model.to(self.device)
        self.pre = checkpoint["preprocessing"]
        self.patch = PatchConfig.from_preprocessing(self.pre)  # patch-level models average fixed patches
        self.checkpoint = checkpoint
        self.operating_point = operating_point_of(checkpoint)
        self.temperature = self.operating_point.temperature if self.operating_point else 1.0
        self.bias = self.operating_point.bias if self.operating_point else 0.0

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = to_model_input(torch.from_numpy(np.array(images, dtype=np.uint8)), self.pre, channels_last=True,
                           device=self.device)
        return calibrate(image_logits(self.model, x, self.patch).float().cpu().numpy(), self.temperature,
                         self.bias)


def score_in_batches(score_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int,
                     rows: np.ndarray | None = None, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                     desc: str | None = None) -> np.ndarray:
    """`score_fn` over `images` (only `rows`, in order, when given), `batch_size` at a time, optionally damaged first.

    Reading one batch at a time keeps a memory-mapped array on disk; the scores keep score_fn's dtype. Used by
    training (validation logits), evaluation (every split) and the robustness table.
    """
    n = len(images) if rows is None else len(rows)
    out = []
    for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch", leave=False, disable=desc is None):
        chunk = np.asarray(images[start:start + batch_size] if rows is None else images[rows[start:start + batch_size]])
        out.append(score_fn(transform(chunk) if transform else chunk))
    return np.concatenate(out) if out else np.zeros(0)
