"""The `realfake` command line, and the error handling shared with the stage scripts."""

from __future__ import annotations

import argparse
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

    run_predict(args.paths, args.model, args.out, args.threads)


def cmd_exp_table(args: argparse.Namespace) -> None:
    """Print mean ± std of experiment metrics grouped by params (markdown)."""
    from realfake.core.tables import markdown_table
    from realfake.evaluation.experiments import (
        DEFAULT_METRICS,
        exp_show_json,
        experiment_frame,
        mean_std_table,
    )

    metrics = tuple(args.metric or DEFAULT_METRICS)
    frame = experiment_frame(exp_show_json(), tuple(args.group) + ("train.seed",), metrics, args.prefix)
    if frame.empty:
        raise UserError("no experiments found: run them with `dvc exp run --queue ...` first")
    print(markdown_table(mean_std_table(frame, tuple(args.group), metrics)))


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
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("exp-table", help="mean ± std of experiment metrics over seeds, grouped by params")
    p.add_argument("--group", nargs="+", default=["model.attention"], help="params to group by; `arm` groups by experiment name minus its -s<seed> suffix")
    p.add_argument("--metric", action="append", help="file:dotted.key (repeatable)")
    p.add_argument("--prefix", help="only experiments whose name starts with this")
    p.set_defaults(func=cmd_exp_table)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `realfake` command."""
    args = build_parser().parse_args(argv)
    run_stage(lambda: args.func(args))


if __name__ == "__main__":
    main()
