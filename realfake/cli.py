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


def cmd_serve(args: argparse.Namespace) -> None:
    """A local web page and JSON API over predict's scoring path."""
    from realfake.serve.app import run_serve

    run_serve(args.model, args.host, args.port, args.threads, args.max_files, args.max_mb, args.max_queue, args.device,
              args.max_request_mb)


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
    from realfake.cv import CVConfig, check_overrides, run_cv, summary_row

    check_overrides(args.set or [])
    params = load_params(args.params, args.set or [])  # --set: core.params.apply_overrides, as `dvc exp run -S`
    flags = {k: v for k, v in (("folds", args.folds), ("seed", args.seed), ("epochs", args.epochs)) if v is not None}
    cv_cfg = load_section(CVConfig, {"cv": {**(params.get("cv") or {}), **flags}}, "cv")
    resample = any(s.startswith("sample.") for s in args.set or [])
    result = run_cv(params, cv_cfg, Path(args.packed), Path(args.out),
                    resample_from=Path(args.metadata) if resample else None)
    print(markdown_table([summary_row(args.label or ", ".join(args.set or []) or "params.yaml", result)]), end="")
    log.info("wrote %s", args.out)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with its default (argparse's ArgumentDefaultsHelpFormatter, minus the
    `(default: None)` and `(default: False)` it would print for options whose text says what happens without them)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)) or action.nargs == 0
                or not action.option_strings):
            return text
        shown = " ".join(map(str, action.default)) if isinstance(action.default, list | tuple) else "%(default)s"
        return f"{text} (default: {shown})"


class HelpParser(argparse.ArgumentParser):
    """Every `realfake` parser, subcommands included (whoever adds one), shows each option's default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per task; `realfake COMMAND --help` describes each option."""
    parser = HelpParser(prog="realfake", description="Real vs generated face photos: the pipeline's commands "
                        "(the stages themselves run with `dvc repro`).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=HelpParser)
    add_data_commands(sub)
    add_scoring_commands(sub)
    add_experiment_commands(sub)
    describe(sub)
    return parser


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """make-sample and export-mini: the data the project ships and hands out."""
    p = sub.add_parser("make-sample", help="rebuild the embedded sample (data/sample) from the offline mirror")
    p.add_argument("--mirror", help="mirror directory (default: $REALFAKE_MIRROR, else the nearest shared/mirror)")
    p.add_argument("--out", default="data/sample", help="folder the sample's ZIPs are written to")
    p.add_argument("--per-source", type=int, default=40, help="photos drawn per source (some sources take a share)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw")
    p.set_defaults(func=cmd_make_sample)
    p = sub.add_parser("export-mini", help="write a balanced, stratified mini-dataset (crops + metadata + card)")
    p.add_argument("--per-class", type=int, default=60, help="faces per class (real and fake)")
    p.add_argument("--out", default="mini.zip", help="the ZIP to write")
    p.add_argument("--metadata", default="data/metadata.parquet", help="the metadata stage's table to draw from")
    p.add_argument("--strata", nargs="+", default=["gender", "age_group", "race_group"],
                   help="metadata columns the draw is balanced over")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw")
    p.set_defaults(func=cmd_export_mini)


def add_scoring_commands(sub: argparse._SubParsersAction) -> None:
    """predict and serve: the trained detector on new photos."""
    p = sub.add_parser("predict", help="score every face in photos: files, directories or globs")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively) or globs")
    p.add_argument("--model", default="models/detector.pt", help="a checkpoint written by the train stage")
    p.add_argument("--out", help="results.csv or results.json (default: print a table)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the model (an integer >= 1)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda: where the detector scores (auto: CUDA if present)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("serve", help="a local web page (and JSON API) to drop photos and see what the detector sees")
    p.add_argument("--model", default="models/detector.pt", help="a checkpoint written by the train stage")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the one scoring worker")
    p.add_argument("--max-files", type=int, default=16, help="photos per request (more: HTTP 413)")
    p.add_argument("--max-mb", type=float, default=20, help="size limit per photo in MB (larger: HTTP 413)")
    p.add_argument("--max-request-mb", type=float, default=64, help="size limit of all photos of a request together")
    p.add_argument("--max-queue", type=int, default=32, help="requests waiting or scoring (more: HTTP 503)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda: where the detector scores (auto: CUDA if present)")
    p.set_defaults(func=cmd_serve)


def add_experiment_commands(sub: argparse._SubParsersAction) -> None:
    """resample, exp-table and cv: experiments around the pipeline."""
    p = sub.add_parser("resample", help="a new balanced draw over the shards, as a new manifest (no image rewritten)")
    p.add_argument("--shards", default="data/shards", help="shards location: a directory or s3://bucket/prefix")
    p.add_argument("--index", help="manifest to draw from (default: <shards>/index.parquet)")
    p.add_argument("--metadata", default="data/metadata.parquet", help="the metadata stage's table")
    p.add_argument("--params", default="params.yaml", help="the `sample` section gives the sampling rules")
    p.add_argument("--seed", type=int, help="overrides sample.seed (default: sample.seed of --params)")
    p.add_argument("--out", required=True, help="the new manifest (.parquet)")
    p.set_defaults(func=cmd_resample)
    p = sub.add_parser("exp-table", help="mean ± std of experiment metrics over seeds, grouped by params")
    p.add_argument("--group", nargs="+", default=["model.attention"],
                   help="params to group by; `arm` groups by experiment name minus its -s<seed> suffix")
    p.add_argument("--metric", action="append", metavar="FILE:KEY",
                   help="file:dotted.key (repeatable; default: metrics/evaluate.json auc, f1, acc and pair_auc)")
    p.add_argument("--prefix", help="only experiments whose name starts with this (default: every experiment)")
    p.set_defaults(func=cmd_exp_table)
    p = sub.add_parser("cv", help="grouped, stratified k-fold cross-validation over train+val (test untouched)")
    p.add_argument("--folds", type=int, help="k (default: params cv.folds, 5)")
    p.add_argument("--seed", type=int, help="fold assignment seed (default: params cv.seed, 0)")
    p.add_argument("--epochs", type=int, help="override train.epochs for smoke runs (default: params cv.epochs, "
                   "else train.epochs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a param for this run, like dvc exp run -S (e.g. model.attention=false; "
                   "repeatable; default: none)")
    p.add_argument("--params", default="params.yaml", help="the params file the run starts from")
    p.add_argument("--packed", default="data/packed", help="the sample stage's packed splits")
    p.add_argument("--metadata", default="data/metadata.parquet",
                   help="re-sampled from when --set changes a sample param")
    p.add_argument("--out", default="metrics/cv.json", help="the metrics file written")
    p.add_argument("--label", help="row label of the printed table (default: the --set overrides)")
    p.set_defaults(func=cmd_cv)


def describe(sub: argparse._SubParsersAction) -> None:
    """Each subcommand's own --help opens with the line the command list shows for it (unless it has its own)."""
    for choice in sub._choices_actions:
        parser = sub.choices[choice.dest]
        if not parser.description:
            parser.description = choice.help


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `realfake` command."""
    args = build_parser().parse_args(argv)
    run_stage(lambda: args.func(args))


if __name__ == "__main__":
    main()
