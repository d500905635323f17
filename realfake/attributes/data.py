"""The attributes stage's data: the crops it reads, the train/val split by group, the table it writes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from realfake.attributes.config import AttributesConfig
from realfake.core.progress import tqdm

log = logging.getLogger(__name__)


def load_crops(paths: list[Path], size: int, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Aligned crops downscaled to size x size (uint8 N, size, size, 3) and a mask of the ones that loaded."""
    images = np.zeros((len(paths), size, size, 3), np.uint8)
    ok = np.zeros(len(paths), bool)
    for i, path in enumerate(tqdm(paths, desc="attributes: load crops", unit="face", disable=not progress or not paths)):
        try:
            with Image.open(path) as im:
                images[i] = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))
            ok[i] = True
        except (OSError, ValueError) as exc:
            log.warning("cannot read crop %s: %s", path, exc)
    return images, ok


def split_train_val(groups: pd.Series, val_fraction: float, seed: int) -> np.ndarray:
    """True for rows held out for validation: a seeded share of the groups, whole groups together."""
    unique = np.array(sorted(set(groups.astype(str))))
    rng = np.random.default_rng(seed)
    n_val = int(round(val_fraction * len(unique)))
    if len(unique) >= 2 and val_fraction > 0:
        n_val = min(max(n_val, 1), len(unique) - 1)
    val_groups = set(rng.permutation(unique)[:n_val])
    return groups.astype(str).isin(val_groups).to_numpy()


def prediction_frame(face_ids: pd.Series, probs: dict[str, np.ndarray], ok: np.ndarray, cfg: AttributesConfig,
                     trained: bool) -> pd.DataFrame:
    """face_id, *_pred, *_conf and p_<head>_<class> columns (null where the crop failed or nothing was trained)."""
    out = pd.DataFrame({"face_id": face_ids.to_numpy(str)})
    for head, names in cfg.classes().items():
        p = probs[head].astype(np.float32)
        valid = ok & trained
        pred = np.array(names, dtype=object)[p.argmax(1)] if len(p) else np.array([], dtype=object)
        out[f"{head}_pred"] = pd.Series(pred, dtype="object").where(valid, None)
        out[f"{head}_conf"] = pd.Series(p.max(1) if len(p) else [], dtype="float32").where(valid)
        for k, name in enumerate(names):
            out[f"p_{head}_{name}"] = pd.Series(p[:, k], dtype="float32").where(valid)
    return out
