"""Training the attribute network (flips and shifts, AdamW, one-cycle) and its mirror-averaged predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from realfake.attributes.config import HEADS, AttributesConfig
from realfake.attributes.network import build_attribute_net, to_tensor
from realfake.core.progress import tqdm
from realfake.core.vocab import age_to_group


def augment(x, gen):
    """Random horizontal flips and shifts of up to 1/16 of the side (reflect padding): cheap, label-preserving."""
    import torch
    import torch.nn.functional as F

    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, x.shape[-1] // 16)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dx, dy = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    return padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]


def encode_targets(frame: pd.DataFrame, cfg: AttributesConfig) -> dict[str, np.ndarray]:
    """Class indices per head from gender_source / age_source / race_source (-1 where unknown)."""
    classes = cfg.classes()
    values = {
        "gender": frame["gender_source"],
        "age_group": age_to_group(frame["age_source"], cfg.age_bins),
        "race_group": frame["race_source"],
    }
    return {h: np.array([classes[h].index(v) if isinstance(v, str) and v in classes[h] else -1
                             for v in values[h]], dtype=np.int64)
            for h in HEADS}


def train_model(images: np.ndarray, targets: dict[str, np.ndarray], cfg: AttributesConfig, progress: bool = True):
    """Train on uint8 images with per-head targets (-1 = unknown); returns the model in eval mode and the loss log."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_attribute_net(cfg)
    x_all = to_tensor(images)
    y_all = {h: torch.from_numpy(t) for h, t in targets.items()}
    n = len(x_all)
    steps = max(1, math.ceil(n / cfg.batch_size)) * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.2)
    history = []
    model.train()
    for epoch in tqdm(range(cfg.epochs if n else 0), desc="attributes: train", unit="epoch", disable=not progress):
        order = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            out = model(augment(x_all[idx], gen))
            losses = [F.cross_entropy(out[h], y_all[h][idx], ignore_index=-1)
                      for h in HEADS if (y_all[h][idx] >= 0).any()]
            if not losses:
                continue
            loss = sum(losses)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            count += len(idx)
        history.append({"epoch": epoch, "loss": total / max(count, 1)})
    model.eval()
    return model, history


def predict_probs(model, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Class probabilities per head (N, classes), averaged over the image and its mirror."""
    import torch

    outs: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = to_tensor(images[start:start + batch_size])
            a, b = model(x), model(x.flip(3))
            for h in HEADS:
                outs[h].append(((a[h].softmax(1) + b[h].softmax(1)) / 2).numpy())
    return {h: np.concatenate(v) if v else np.zeros((0, model.heads[h].out_features), np.float32)
            for h, v in outs.items()}
