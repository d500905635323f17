"""A small multi-task CNN (gender, age group, race group) trained on UTKFace crops, and its predictions."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from realfake.core.errors import UserError
from realfake.core.vocab import (
    DEFAULT_AGE_BINS,
    ETHNICITY_TO_RACE,
    GENDERS,
    RACE_GROUPS,
    age_group_labels,
    age_to_group,
)

log = logging.getLogger(__name__)

HEADS = ("gender", "age_group", "race_group")


@dataclass
class AttributesConfig:
    """Params of the attributes stage (params.yaml section `attributes`)."""

    train_source: str = "utkface"  # the source whose file-name labels train the model
    age_bins: list[int] = field(default_factory=lambda: list(DEFAULT_AGE_BINS))  # [lo, hi) years
    image_size: int = 64  # aligned crops are downscaled to this side
    val_fraction: float = 0.2  # share of train_source groups held out for validation
    seed: int = 0
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # conv channels per stage
    convs_per_stage: int = 1  # 3x3 conv-BN-ReLU layers before each 2x2 max-pool
    dropout: float = 0.2
    threads: int = 1  # torch CPU threads: 2 ran 6x slower than 1 on a busy 2-core machine (spin-waiting)

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> AttributesConfig:
        """Build from a params.yaml section; unknown keys and bad values are user errors."""
        section = dict(section or {})
        unknown = sorted(set(section) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"attributes: unknown params {unknown}")
        cfg = cls(**section)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise UserError on values that cannot work."""
        bins = list(self.age_bins)
        checks = {
            "age_bins": len(bins) >= 3 and all(a < b for a, b in zip(bins[:-1], bins[1:], strict=True)),
            "image_size": self.image_size >= 16,
            "val_fraction": 0 <= self.val_fraction < 1,
            "epochs": self.epochs >= 0,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "widths": len(self.widths) >= 1 and all(w >= 1 for w in self.widths),
            "convs_per_stage": self.convs_per_stage >= 1,
            "threads": self.threads >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"attributes: invalid value for {bad}")

    def classes(self) -> dict[str, list[str]]:
        """Class names per head, in output order."""
        return {"gender": list(GENDERS), "age_group": age_group_labels(self.age_bins), "race_group": list(RACE_GROUPS)}


# ---------------------------------------------------------------- the model

def build_model(cfg: AttributesConfig):
    """A plain conv net (conv-BN-ReLU-pool stages, global average pool) with one linear head per attribute."""
    import torch.nn as nn

    class AttributeNet(nn.Module):
        """Shared trunk, three classification heads."""

        def __init__(self):
            super().__init__()
            layers, c_in = [], 3
            for w in cfg.widths:
                for _ in range(cfg.convs_per_stage):
                    layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                    c_in = w
                layers.append(nn.MaxPool2d(2))
            self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout))
            self.heads = nn.ModuleDict({h: nn.Linear(c_in, len(c)) for h, c in cfg.classes().items()})

        def forward(self, x):
            z = self.trunk(x)
            return {h: head(z) for h, head in self.heads.items()}

    return AttributeNet()


def to_tensor(images: np.ndarray):
    """uint8 (N, H, W, 3) to normalised float (N, 3, H, W)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x / 255.0 - 0.5) / 0.25


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
    model = build_model(cfg)
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


# ---------------------------------------------------------------- data

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


# ---------------------------------------------------------------- measuring it

def accuracy(pred: pd.Series, truth: pd.Series) -> dict[str, Any]:
    """Accuracy of pred against truth over rows where both are known, with n and the majority-class baseline."""
    both = pred.notna() & truth.notna()
    n = int(both.sum())
    if n == 0:
        return {"n": 0, "accuracy": None, "majority_baseline": None}
    p, t = pred[both].astype(str), truth[both].astype(str)
    return {"n": n, "accuracy": round(float((p == t).mean()), 4),
            "majority_baseline": round(float(t.value_counts(normalize=True).iloc[0]), 4)}


def evaluate(frame: pd.DataFrame, cfg: AttributesConfig) -> dict[str, Any]:
    """Held-out accuracy on the training source and agreement with every other source's own labels.

    frame: one row per surviving face with source, attr_split, *_source labels and *_pred columns.
    """
    ages = age_to_group(frame["age_source"], cfg.age_bins)
    val = frame["attr_split"] == "val"
    held_out = {
        "gender": accuracy(frame.loc[val, "gender_pred"], frame.loc[val, "gender_source"]),
        "age_group": accuracy(frame.loc[val, "age_group_pred"], ages[val]),
        "race_group": accuracy(frame.loc[val, "race_group_pred"], frame.loc[val, "race_source"]),
    }
    agreement: dict[str, Any] = {}
    others = frame[frame["attr_split"] == "predict"]
    for source, rows in others.groupby("source", sort=True, observed=True):
        entry = {}
        if rows["gender_source"].notna().any():
            entry["gender"] = accuracy(rows["gender_pred"], rows["gender_source"])
        if rows["age_source"].notna().any():
            entry["age_group"] = accuracy(rows["age_group_pred"], ages[rows.index])
        if rows["race_source"].notna().any():
            entry["race_group"] = accuracy(rows["race_group_pred"], rows["race_source"])
        if rows["ethnicity_source"].notna().any():
            entry.update(ethnicity_agreement(rows))
        if entry:
            agreement[str(source)] = entry
    return {"held_out": held_out, "agreement": agreement}


def ethnicity_agreement(rows: pd.DataFrame) -> dict[str, Any]:
    """Folder ethnicity vs predicted race: on white/black/asian only, and with latino counted as UTKFace 'others'."""
    eth = rows["ethnicity_source"]
    direct = eth.isin(["white", "black", "asian"])
    mapped = eth.map(lambda e: ETHNICITY_TO_RACE.get(e) if isinstance(e, str) else None)
    latino = rows.loc[eth == "latino", "race_group_pred"].dropna().astype(str)
    return {
        "ethnicity_white_black_asian": accuracy(rows.loc[direct, "race_group_pred"], eth[direct]),
        "ethnicity_latino_as_others": accuracy(rows["race_group_pred"], mapped),
        "latino_predicted_as": {k: int(v) for k, v in latino.value_counts().sort_index().items()},
    }


def checkpoint(model, cfg: AttributesConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What models/attributes.pt holds: tensors and plain values only (loads with weights_only=True)."""
    return {"state_dict": model.state_dict(), "config": asdict(cfg), "classes": cfg.classes(),
            "history": history, "format": "realfake.attributes/1"}


def load_model(path: str | Path):
    """Rebuild the model and its config from models/attributes.pt."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = AttributesConfig(**ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, cfg


# ---------------------------------------------------------------- the stage, end to end

def run_attributes(cfg: AttributesConfig, faces: pd.DataFrame, faces_dir: Path, progress: bool = True
                   ) -> tuple[pd.DataFrame, dict[str, Any], Any]:
    """Train on the train source's surviving faces, predict for all of them; return (table, metrics, checkpoint).

    faces: the surviving faces rows (source, face_id, group, crop_path and the *_source labels).
    """
    import torch

    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    frame = faces.reset_index(drop=True).copy()
    for col in ("gender_source", "age_source", "race_source", "ethnicity_source", "group"):
        if col not in frame:
            frame[col] = None
    paths = [faces_dir / str(s) / str(c) for s, c in zip(frame["source"], frame["crop_path"], strict=True)]
    images, ok = load_crops(paths, cfg.image_size, progress)
    targets = encode_targets(frame, cfg)
    labelled = (frame["source"] == cfg.train_source).to_numpy() & ok & (np.stack(list(targets.values())) >= 0).any(0)
    is_val = np.zeros(len(frame), bool)
    is_val[labelled] = split_train_val(frame.loc[labelled, "group"].fillna(frame.loc[labelled, "face_id"]),
                                       cfg.val_fraction, cfg.seed)
    is_train = labelled & ~is_val
    log.info("attributes: %d faces, %d train / %d val from %s", len(frame), is_train.sum(), is_val.sum(), cfg.train_source)
    trained = bool(is_train.sum() >= 2)
    if not trained:
        log.warning("attributes: fewer than 2 labelled %s faces: no model is trained, predictions are null",
                    cfg.train_source)
    model, history = train_model(images[is_train], {h: t[is_train] for h, t in targets.items()},
                                 cfg if trained else AttributesConfig(**{**asdict(cfg), "epochs": 0}), progress)
    probs = predict_probs(model, images)
    table = prediction_frame(frame["face_id"], probs, ok, cfg, trained)
    table.insert(1, "source", frame["source"].astype(str).to_numpy())
    table.insert(2, "attr_split", np.where(is_train, "train", np.where(is_val, "val", "predict")))
    scored = frame[["source", "gender_source", "age_source", "race_source", "ethnicity_source"]].join(
        table[["attr_split", "gender_pred", "age_group_pred", "race_group_pred"]])
    metrics = evaluate(scored, cfg)
    metrics["training"] = {
        "trained": trained, "n_faces": len(frame), "n_unreadable": int((~ok).sum()),
        "n_train": int(is_train.sum()), "n_val": int(is_val.sum()), "epochs": cfg.epochs,
        "final_train_loss": round(history[-1]["loss"], 4) if history else None,
        "seconds": round(time.perf_counter() - start, 1),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    metrics["classes"] = cfg.classes()
    metrics["note"] = ("predictions are estimates from a small CNN trained on UTKFace; latino (generated-faces) "
                       "is counted as UTKFace 'others' in ethnicity_latino_as_others and left out of "
                       "ethnicity_white_black_asian")
    return table, metrics, checkpoint(model, cfg, history)
