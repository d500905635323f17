"""The attributes stage: train the gender/age/race model, predict for every surviving face, write the outputs."""

from __future__ import annotations

import logging
from pathlib import Path

from realfake.attributes.config import AttributesConfig
from realfake.attributes.model import run_attributes
from realfake.core.atomic import write_parquet, write_torch
from realfake.core.stage_metrics import write_stage_metrics
from realfake.core.tables import read_dedupe, read_faces, surviving_faces
from realfake.core.timings import record_timing

log = logging.getLogger("stages.attributes")


def run_attributes_stage(cfg: AttributesConfig, sources: list[str], faces_dir: Path, dedupe_path: Path,
                         out: Path, model_path: Path, metrics_path: Path, report_path: Path | None = None) -> dict:
    """Read the upstream tables, run the model; write the table, the weights, the metrics and their details."""
    faces = surviving_faces(read_faces(faces_dir, sources), read_dedupe(dedupe_path))
    table, metrics, ckpt = run_attributes(cfg, faces, faces_dir)
    write_parquet(table, out)
    write_torch(model_path, ckpt)
    held = metrics["held_out"]
    # held-out UTKFace accuracy of each head (None, left out, when there was nothing to train on)
    top = {key: held.get(head, {}).get("accuracy")
           for key, head in (("gender_acc", "gender"), ("age_acc", "age_group"), ("race_acc", "race_group"))}
    write_stage_metrics(metrics_path, top, metrics, report_path)
    record_timing("attributes", seconds=metrics["training"].get("seconds", 0.0))
    log.info("attributes: held-out %s", {h: v["accuracy"] for h, v in metrics["held_out"].items()})
    return metrics
