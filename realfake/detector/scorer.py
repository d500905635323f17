"""Score uint8 image batches with a saved detector exactly as it was trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from realfake.detector.checkpoint import load_detector, to_model_input
from realfake.detector.patches import PatchConfig, image_logits


class Scorer:
    """p_fake of the detector for uint8 N×3×S×S batches, exactly as the training input was prepared."""

    def __init__(self, model_path: Path):
        self.model, checkpoint = load_detector(model_path)
        self.pre = checkpoint["preprocessing"]
        self.patch = PatchConfig.from_preprocessing(self.pre)  # patch-level models average fixed patches
        self.checkpoint = checkpoint

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = to_model_input(torch.from_numpy(np.array(images, dtype=np.uint8)), self.pre, channels_last=True)
        return torch.sigmoid(image_logits(self.model, x, self.patch)).numpy().astype(np.float64)
