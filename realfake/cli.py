"""The `realfake` command line, and the error handling shared with the stage scripts."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from realfake.core.errors import UserError
from realfake.core.stage import run_stage

log = logging.getLogger("realfake")


def cmd_make_sample(args: argparse.Namespace) -> None:
    """Build the embedded sample (a mini-mirror) from the offline mirror."""
    from realfake.core.params import find_mirror
    from realfake.ingest.embedded_sample import make_sample

    mirror = Path(args.mirror) if args.mirror else find_mirror()
    if mirror is None or not mirror.is_dir():
        raise UserError("mirror not found: pass --mirror DIR or set REALFAKE_MIRROR")
    sums = make_sample(mirror, Path(args.out), per_source=args.per_source, seed=args.seed)
    for name, digest in sums.items():
        print(f"{digest}  {name}")


def cmd_export_mini(args: argparse.Namespace) -> None:
    """Write a balanced, stratified mini-dataset ZIP."""
    from realfake.sample.export_mini import export_mini

    mini = export_mini(Path(args.metadata), Path(args.out), args.per_class, tuple(args.strata), args.seed)
    log.info("wrote %s: %d faces (%s)", args.out, len(mini), mini["label"].value_counts().to_dict())


def cmd_predict(args: argparse.Namespace) -> None:
    """Score the faces in the given photos."""
    from realfake.predict import run_predict

    run_predict(args.paths, args.model, args.out, args.threads, args.device)


def cmd_resample(args: argparse.Namespace) -> None:
    """A new balanced draw over the images already in the shards, written as a new manifest (no image rewritten)."""
    import pandas as pd

    from realfake.core.params import load_params, load_section
    from realfake.core.shard_manifest import read_index, write_index
    from realfake.sample.resample import resample_index
    from realfake.sample.sampling import SampleConfig

    cfg = load_section(SampleConfig, load_params(args.params), "sample")
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed)
    index = read_index(args.shards, args.index)
    metadata = Path(args.metadata)
    if not metadata.exists():
        raise UserError(f"{metadata} not found: run the metadata stage first")
    table = resample_index(index, pd.read_parquet(metadata), cfg)
    write_index(table, Path(args.out))
    log.info("wrote %s: %s over %d shards (no image rewritten); train from it with "
             "-S train.input=shards -S train.shards.index=%s", args.out,
             table["split"].fillna("none").value_counts().to_dict(), table["shard"].nunique(), args.out)


def cmd_exp_table(args: argparse.Namespace) -> None:
    """Print mean ± std of experiment metrics grouped by params (markdown)."""
    from realfake.core.tables import markdown_table
    from realfake.evaluation.experiments import (
        DEFAULT_METRICS,
        check_metrics,
        exp_show_json,
        experiment_frame,
        mean_std_table,
    )

    metrics = tuple(args.metric or DEFAULT_METRICS)
    shown = exp_show_json()
    if args.metric:  # a misspelt key would print "—" everywhere; the defaults may be absent on purpose
        check_metrics(shown, metrics, args.prefix)
    frame = experiment_frame(shown, tuple(args.group) + ("train.seed",), metrics, args.prefix)
    if frame.empty:
        raise UserError("no experiments found: run them with `dvc exp run --queue ...` first")
    print(markdown_table(mean_std_table(frame, tuple(args.group), metrics)))


def cmd_cv(args: argparse.Namespace) -> None:
    """Grouped, stratified k-fold cross-validation over train+val; mean ± std to a metrics file."""
    from realfake.core.params import load_params, load_section
    from realfake.core.tables import markdown_table
    from realfake.cv import CVConfig, apply_overrides, check_overrides, run_cv, summary_row

    check_overrides(args.set or [])
    params = apply_overrides(load_params(args.params), args.set or [])
    flags = {k: v for k, v in (("folds", args.folds), ("seed", args.seed), ("epochs", args.epochs)) if v is not None}
    cv_cfg = load_section(CVConfig, {"cv": {**(params.get("cv") or {}), **flags}}, "cv")
    resample = any(s.startswith("sample.") for s in args.set or [])
    result = run_cv(params, cv_cfg, Path(args.packed), Path(args.out),
                    resample_from=Path(args.metadata) if resample else None)
    print(markdown_table([summary_row(args.label or ", ".join(args.set or []) or "params.yaml", result)]), end="")
    log.info("wrote %s", args.out)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per task."""
    parser = argparse.ArgumentParser(prog="realfake", description="Real vs generated face photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-sample", help="rebuild the embedded sample (data/sample) from the offline mirror")
    p.add_argument("--mirror", help="mirror directory (default: $REALFAKE_MIRROR or ../shared/mirror)")
    p.add_argument("--out", default="data/sample")
    p.add_argument("--per-source", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_sample)
    p = sub.add_parser("export-mini", help="write a balanced, stratified mini-dataset (crops + metadata + card)")
    p.add_argument("--per-class", type=int, default=60, help="faces per class (real and fake)")
    p.add_argument("--out", default="mini.zip")
    p.add_argument("--metadata", default="data/metadata.parquet")
    p.add_argument("--strata", nargs="+", default=["gender", "age_group", "race_group"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export_mini)
    p = sub.add_parser("predict", help="score every face in photos: files, directories or globs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", default="models/detector.pt")
    p.add_argument("--out", help="results.csv or results.json (default: print a table)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda: where the detector scores (auto: CUDA if present)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("resample", help="a new balanced draw over the shards, as a new manifest (no image rewritten)")
    p.add_argument("--shards", default="data/shards", help="shards location: a directory or s3://bucket/prefix")
    p.add_argument("--index", help="manifest to draw from (default: <shards>/index.parquet)")
    p.add_argument("--metadata", default="data/metadata.parquet")
    p.add_argument("--params", default="params.yaml", help="the `sample` section gives the sampling rules")
    p.add_argument("--seed", type=int, help="overrides sample.seed")
    p.add_argument("--out", required=True, help="the new manifest (.parquet)")
    p.set_defaults(func=cmd_resample)
    p = sub.add_parser("exp-table", help="mean ± std of experiment metrics over seeds, grouped by params")
    p.add_argument("--group", nargs="+", default=["model.attention"], help="params to group by; `arm` groups by experiment name minus its -s<seed> suffix")
    p.add_argument("--metric", action="append", help="file:dotted.key (repeatable)")
    p.add_argument("--prefix", help="only experiments whose name starts with this")
    p.set_defaults(func=cmd_exp_table)
    p = sub.add_parser("cv", help="grouped, stratified k-fold cross-validation over train+val (test untouched)")
    p.add_argument("--folds", type=int, help="k (default: params cv.folds, 5)")
    p.add_argument("--seed", type=int, help="fold assignment seed (default: params cv.seed)")
    p.add_argument("--epochs", type=int, help="override train.epochs (smoke runs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a param for this run, like dvc exp run -S (e.g. model.attention=false)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--packed", default="data/packed", help="the sample stage's packed splits")
    p.add_argument("--metadata", default="data/metadata.parquet",
                   help="re-sampled from when --set changes a sample param")
    p.add_argument("--out", default="metrics/cv.json")
    p.add_argument("--label", help="row label of the printed table (default: the --set overrides)")
    p.set_defaults(func=cmd_cv)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `realfake` command."""
    args = build_parser().parse_args(argv)
    run_stage(lambda: args.func(args))


if __name__ == "__main__":
    main()
