"""The attributes stage: train the gender/age/race model, predict for every surviving face, write the outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from realfake.attributes.model import AttributesConfig, run_attributes
from realfake.core.atomic import atomic_path, write_json, write_parquet
from realfake.core.tables import read_dedupe, read_faces, surviving_faces

log = logging.getLogger("stages.attributes")


def run_attributes_stage(cfg: AttributesConfig, sources: list[str], faces_dir: Path, dedupe_path: Path,
                         out: Path, model_path: Path, metrics_path: Path) -> dict:
    """Read the upstream tables, run the model; write the table, the weights and the metrics."""
    faces = surviving_faces(read_faces(faces_dir, sources), read_dedupe(dedupe_path))
    table, metrics, ckpt = run_attributes(cfg, faces, faces_dir)
    write_parquet(table, out)
    with atomic_path(model_path, suffix=".pt") as tmp:
        torch.save(ckpt, tmp)
    write_json(metrics_path, metrics)
    log.info("attributes: held-out %s", {h: v["accuracy"] for h, v in metrics["held_out"].items()})
    return metrics
