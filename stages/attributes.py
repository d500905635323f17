"""Stage `attributes`: train the gender/age/race CNN on UTKFace crops and predict for every surviving face."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from realfake.attributes.model import AttributesConfig, run_attributes
from realfake.core.atomic import atomic_path, write_json, write_parquet
from realfake.core.params import load_params
from realfake.core.stage import run_stage
from realfake.core.tables import read_dedupe, read_faces, surviving_faces

log = logging.getLogger("stages.attributes")


def main() -> None:
    """Read params and the upstream tables, run the model, write the table, weights and metrics."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", default="data/faces", type=Path)
    parser.add_argument("--dedupe", default="data/dedupe.parquet", type=Path)
    parser.add_argument("--out", default="data/attributes.parquet", type=Path)
    parser.add_argument("--model", default="models/attributes.pt", type=Path)
    parser.add_argument("--metrics", default="metrics/attributes.json", type=Path)
    args = parser.parse_args()
    params = load_params()
    cfg = AttributesConfig.from_params(params.get("attributes"))
    sources = sorted((params.get("sources") or {}).keys())
    faces = surviving_faces(read_faces(args.faces, sources), read_dedupe(args.dedupe))
    table, metrics, ckpt = run_attributes(cfg, faces, args.faces)
    write_parquet(table, args.out)
    with atomic_path(args.model, suffix=".pt") as tmp:
        torch.save(ckpt, tmp)
    write_json(args.metrics, metrics)
    log.info("attributes: held-out %s", {h: v["accuracy"] for h, v in metrics["held_out"].items()})


if __name__ == "__main__":
    run_stage(main)
