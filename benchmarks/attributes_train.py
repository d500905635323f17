"""Benchmark: attribute-CNN training time and held-out accuracy on the mirror's UTKFace images.

Plain-resized UTKFace chips stand in for the faces stage's aligned crops (same people, framing a little
different), so the figures estimate what `dvc repro attributes` costs on the mirror profile.

    .venv/bin/python benchmarks/attributes_train.py [--limit 4000] [--epochs N]
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zipfile

import numpy as np
import pandas as pd
from PIL import Image

from realfake.attributes.config import AttributesConfig
from realfake.attributes.data import split_train_val
from realfake.attributes.train import encode_targets, predict_probs, train_model
from realfake.core.params import find_mirror, load_params, load_section
from realfake.ingest.labels import parse_labels


def main() -> None:
    """Load, split, train, score; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--convs-per-stage", type=int, default=None)
    args = parser.parse_args()
    params = load_params()
    section = params["attributes"] = dict(params.get("attributes") or {})
    if args.epochs is not None:
        section["epochs"] = args.epochs
    if args.convs_per_stage is not None:
        section["convs_per_stage"] = args.convs_per_stage
    cfg = load_section(AttributesConfig, params, "attributes")
    mirror = find_mirror()
    if mirror is None:
        raise SystemExit("no mirror")
    t0 = time.perf_counter()
    with zipfile.ZipFile(mirror / "utkface.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))[: args.limit]
        images = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB")
                                      .resize((cfg.image_size, cfg.image_size), Image.Resampling.LANCZOS))
                           for n in names])
    frame = parse_labels("utkface-filename", names, {})
    load_s = time.perf_counter() - t0
    targets = encode_targets(frame, cfg)
    val = split_train_val(pd.Series(names), cfg.val_fraction, cfg.seed)
    train = ~val & (targets["gender"] >= 0)
    import torch

    torch.set_num_threads(cfg.threads)
    t1 = time.perf_counter()
    model, history = train_model(images[train], {h: t[train] for h, t in targets.items()}, cfg)
    train_s = time.perf_counter() - t1
    probs = predict_probs(model, images[val])
    out = {"convs_per_stage": cfg.convs_per_stage, "n_train": int(train.sum()), "n_val": int(val.sum()), "epochs": cfg.epochs, "load_s": round(load_s, 1),
           "train_s": round(train_s, 1), "final_loss": round(history[-1]["loss"], 3) if history else None}
    for head, p in probs.items():
        t = targets[head][val]
        ok = t >= 0
        out[f"val_acc_{head}"] = round(float((p.argmax(1)[ok] == t[ok]).mean()), 4)
        out[f"baseline_{head}"] = round(float(np.bincount(t[ok]).max() / ok.sum()), 4)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
