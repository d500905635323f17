"""Stage `attributes`: train the gender/age/race CNN on UTKFace crops and predict for every surviving face."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from realfake.atomic import write_parquet, write_torch
from realfake.attributes import AttributesConfig, run_attributes
from realfake.cli import run_stage
from realfake.metadata import read_dedupe, read_faces, surviving_faces
from realfake.params import load_params
from realfake.stage_metrics import write_stage_metrics
from realfake.timings import record_timing

log = logging.getLogger("stages.attributes")


def main() -> None:
    """Read params and the upstream tables, run the model, write the table, weights and metrics."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", default="data/faces", type=Path)
    parser.add_argument("--dedupe", default="data/dedupe.parquet", type=Path)
    parser.add_argument("--out", default="data/attributes.parquet", type=Path)
    parser.add_argument("--model", default="models/attributes.pt", type=Path)
    parser.add_argument("--metrics", default="metrics/attributes.json", type=Path)
    parser.add_argument("--report", default="reports/attributes.json", type=Path)
    args = parser.parse_args()
    params = load_params()
    cfg = AttributesConfig.from_params(params.get("attributes"))
    sources = sorted((params.get("sources") or {}).keys())
    faces = surviving_faces(read_faces(args.faces, sources), read_dedupe(args.dedupe))
    table, metrics, ckpt = run_attributes(cfg, faces, args.faces)
    write_parquet(table, args.out)
    write_torch(args.model, ckpt)
    held = metrics["held_out"]
    # held-out UTKFace accuracy of each head (None, left out, when there was nothing to train on)
    top = {key: held.get(head, {}).get("accuracy")
           for key, head in (("gender_acc", "gender"), ("age_acc", "age_group"), ("race_acc", "race_group"))}
    write_stage_metrics(args.metrics, top, metrics, args.report)
    record_timing("attributes", seconds=metrics["training"].get("seconds", 0.0))
    log.info("attributes: held-out %s", {h: v["accuracy"] for h, v in metrics["held_out"].items()})


if __name__ == "__main__":
    run_stage(main)
