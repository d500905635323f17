"""Grouped, stratified k-fold cross-validation over the train+val pool; the test split stays untouched.

Folds hold whole split groups (a person, an FFHQ id, a DFDC original never spans two folds), allocated like the
train/val/test split: groups ordered by label x stratum x source and each sent to the fold whose share of its
label lags most (sampling.allocate_groups). For fold i the model trains on the other folds but one: fold i+1 (mod
k) is its validation fold (early stopping and the decision threshold, as in the main pipeline), and fold i is scored.
Every run scores the held-out sources too (params `sample.holdout_sources`), so "held-out real photos called real"
comes with a spread. Mean and std over folds go to metrics/cv.json, the per-fold figures to reports/cv.json.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from realfake.core.atomic import atomic_path, write_json, write_parquet
from realfake.core.errors import UserError
from realfake.core.params import apply_overrides, load_section
from realfake.core.stage_metrics import write_stage_metrics
from realfake.core.view_record import VIEW_FILE, read_view_record
from realfake.evaluation.metrics import binary_metrics, to_jsonable
from realfake.sample.packing import PACKED_SCHEMA
from realfake.sample.sampling import allocate_groups

if TYPE_CHECKING:  # evaluate and the detector import torch: only for the annotations
    from realfake.detector.run import TrainRun
    from realfake.evaluation.evaluate import HonestPair

log = logging.getLogger(__name__)

__all__ = ["CVConfig", "apply_overrides", "check_overrides", "run_cv", "summary_row"]  # apply_overrides: core.params

METRICS = ("roc_auc", "f1", "mcc", "honest_pair_auc", "held_out_real_called_real")


@dataclass(frozen=True)
class CVConfig:
    """The `cv` params section (command-line flags override it)."""

    folds: int = 5
    seed: int = 0
    epochs: int | None = None  # None: train.epochs; a small number for smoke runs

    def __post_init__(self) -> None:
        if self.folds < 3:
            raise UserError(f"cv.folds must be >= 3 (one scored, one validation, the rest training), got {self.folds}")
        if self.epochs is not None and self.epochs < 1:
            raise UserError(f"cv.epochs must be null or >= 1, got {self.epochs}")


def load_pool(packed_dir: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The train and val splits together: images (N, 3, S, S) in memory and their table."""
    images, tables = [], []
    for split in ("train", "val"):
        npy, parquet = packed_dir / f"{split}.npy", packed_dir / f"{split}.parquet"
        if not npy.exists() or not parquet.exists():
            raise UserError(f"{npy} not found: run the pipeline up to the sample stage first (dvc repro sample)")
        images.append(np.load(npy))
        tables.append(pd.read_parquet(parquet))
    meta = pd.concat(tables, ignore_index=True).rename(columns={"group": "split_group"})
    return np.concatenate(images), meta


def assign_folds(meta: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of every row: whole split groups, stratified by label x stratum x source."""
    bins = allocate_groups(meta.assign(stratum=meta["stratum"].fillna("all")), [1.0 / folds] * folds,
                           np.random.default_rng(seed))
    return bins.to_numpy()


def write_split(images: np.ndarray, meta: pd.DataFrame, rows: np.ndarray, folder: Path, name: str) -> None:
    """One packed split (npy + parquet in the packing layout) holding `rows` of the pool."""
    with atomic_path(folder / f"{name}.npy", suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, images[rows])
    table = meta.iloc[rows].rename(columns={"split_group": "group"})[PACKED_SCHEMA.names]
    write_parquet(table.reset_index(drop=True), folder / f"{name}.parquet", schema=PACKED_SCHEMA)


def fold_scores(p: np.ndarray, meta: pd.DataFrame, threshold: float, honest: HonestPair) -> dict[str, float]:
    """ROC-AUC, F1 and MCC at the model's threshold, and the honest-pair AUC, on one scored fold."""
    y = meta["y"].to_numpy()
    core = binary_metrics(y, p, threshold)
    pair = meta["source"].isin([honest.real, honest.fake]).to_numpy()
    pair_auc = binary_metrics(y[pair], p[pair], threshold)["roc_auc"] if pair.any() else float("nan")
    return {"n": int(y.size), "roc_auc": core["roc_auc"], "f1": core["f1"], "mcc": core["mcc"],
            "honest_pair_auc": pair_auc, "n_honest_pair": int(pair.sum())}


def summarize(per_fold: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean and standard deviation (ddof=1) over folds of every headline metric, ignoring NaN folds."""
    out: dict[str, dict[str, float | None]] = {}
    for name in METRICS:
        values = np.array([f.get(name, float("nan")) for f in per_fold], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[name] = {"mean": float(values.mean()) if values.size else None,
                     "std": float(values.std(ddof=1)) if values.size > 1 else None, "folds": int(values.size)}
    return out


TITLES = {"roc_auc": "ROC-AUC", "f1": "F1", "mcc": "MCC", "honest_pair_auc": "honest-pair AUC",
          "held_out_real_called_real": "held-out real called real"}


def mean_std(stat: dict[str, float | None]) -> str:
    """A table cell: mean ± std over folds, n/a where fewer than two folds had the metric."""
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if stat["mean"] is not None and stat["std"] is not None else "n/a"


def summary_row(label: str, summary: dict[str, dict[str, float | None]]) -> dict[str, str]:
    """One README table row (for realfake.core.tables.markdown_table): mean ± std per metric."""
    return {"run": label, **{TITLES[m]: mean_std(summary[m]) for m in METRICS}}


def check_overrides(overrides: list[str]) -> None:
    """Only model/train/evaluate/cv params apply to packed data as is; sample params re-sample (run_cv)."""
    stale = [o for o in overrides if o.split(".", 1)[0] in ("data", "download", "sources", "faces", "resize",
                                                            "dedupe", "attributes", "metadata")]
    if stale:
        raise UserError(f"--set {stale}: these change the pipeline's data; run `dvc exp run -S ...` with them and "
                        "then `realfake cv`")


def resample(params: dict[str, Any], metadata: Path, folder: Path) -> tuple[Path, dict[str, Any]]:
    """Run the sample stage with `params` into `folder` (packed splits and its report), for --set sample.*."""
    from realfake.core.training_image import image_size
    from realfake.crops.views import view_record
    from realfake.sample.sampling import SampleConfig
    from realfake.sample.stage import run_sample

    if not metadata.is_file():
        raise UserError(f"{metadata} not found: run the pipeline up to the metadata stage first")
    cfg = load_section(SampleConfig, params, "sample")
    report = run_sample(metadata, cfg, image_size(params),
                        folder / "packed", folder / "splits.parquet", folder / "sample.json", folder / "plots",
                        folder / "sample-report.json", view=view_record(cfg.view, params))
    log.info("re-sampled: %s (quality TV after %s)", report["split_sizes"], report["quality"]["tv_after"])
    return folder / "packed", {k: report[k] for k in ("split_sizes", "tv_distance", "quality", "lost_to_balancing")}


def cv_run(params: dict[str, Any], cfg: CVConfig, packed_dir: Path) -> TrainRun:
    """The run the train stage would build from params (realfake.detector.run.train_run), with `cv.epochs` applied."""
    from realfake.detector.run import train_run

    run = train_run(params, packed_dir)
    if cfg.epochs is None:
        return run
    return dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=cfg.epochs,
                                                              min_epochs=min(run.train.min_epochs, cfg.epochs)))


def run_cv(params: dict[str, Any], cfg: CVConfig, packed_dir: Path, out_path: Path, workdir: Path | None = None,
           resample_from: Path | None = None, report_path: Path | None = None) -> dict[str, Any]:
    """Train and score k folds; mean and std per metric to `out_path`, the per-fold details to `report_path`.

    `report_path` defaults to `out_path` with its `metrics` folder turned into `reports` (metrics/cv.json ->
    reports/cv.json), as for the stages' headline and details files.

    With `resample_from` (data/metadata.parquet) the sample stage runs first with params' `sample` section, so
    sampling arms (e.g. quality_strata) are compared by one command each.
    """
    with tempfile.TemporaryDirectory(prefix="realfake-cv-", dir=workdir) as tmp:
        extra: dict[str, Any] = {}
        if resample_from is not None:
            packed_dir, extra["sample_report"] = resample(params, resample_from, Path(tmp) / "sample")
        return _run_folds(params, cfg, packed_dir, out_path, report_path, Path(tmp), extra)


def _run_folds(params: dict[str, Any], cfg: CVConfig, packed_dir: Path, out_path: Path, report_path: Path | None,
               tmp: Path, extra: dict[str, Any]) -> dict[str, Any]:
    from realfake.detector.ensemble import train_detector
    from realfake.detector.packed import load_split
    from realfake.detector.scorer import Scorer
    from realfake.evaluation.evaluate import EvaluateConfig, score_held_out_rates, score_split

    started = time.perf_counter()
    run = cv_run(params, cfg, packed_dir)
    train_cfg, size = run.train, run.size
    eval_cfg = load_section(EvaluateConfig, params, "evaluate")
    images, meta = load_pool(packed_dir)
    view = read_view_record(packed_dir)
    fold = assign_folds(meta, cfg.folds, cfg.seed)
    per_fold = []
    for k in range(cfg.folds):
        scored, val = np.flatnonzero(fold == k), np.flatnonzero(fold == (k + 1) % cfg.folds)
        trained = np.flatnonzero((fold != k) & (fold != (k + 1) % cfg.folds))
        folder = tmp / f"fold-{k}"
        for name, rows in (("train", trained), ("val", val), ("test", scored)):
            write_split(images, meta, rows, folder, name)
        if view is not None:  # the pool's view (sample.view): each fold's checkpoint records it as the stage's does
            write_json(folder / VIEW_FILE, view)
        log.info("fold %d/%d: train %d, val %d, scored %d", k + 1, cfg.folds, len(trained), len(val), len(scored))
        summary = train_detector(run, folder, folder / "detector.pt", folder / "live")
        scorer = Scorer(folder / "detector.pt")
        threshold = float(scorer.checkpoint["info"]["threshold"])
        test = load_split(folder, "test", size)
        scores = fold_scores(score_split(scorer, test, eval_cfg.batch_size), test.meta, threshold,
                             eval_cfg.honest_pair)
        held = score_held_out_rates(scorer, packed_dir, size, threshold, eval_cfg.batch_size)
        per_fold.append({"fold": k, **scores, "threshold": threshold,
                         "held_out_real_called_real": held.get("real_called_real", float("nan")),
                         "n_train": len(trained), "n_val": len(val), "best_epoch": summary["best_epoch"],
                         "train_seconds": summary["train_seconds"]})
        log.info("fold %d: %s", k, {m: round(per_fold[-1][m], 4) for m in METRICS})
    result = {"folds": cfg.folds, "seed": cfg.seed, "epochs": train_cfg.epochs, "pool": len(meta),
              **summarize(per_fold), "per_fold": per_fold,
              "params": {"model": params.get("model"), "sample": {k: (params.get("sample") or {}).get(k)
                                                                  for k in ("quality_strata", "holdout_sources",
                                                                            "holdout_source")}},
              **extra, "seconds": round(time.perf_counter() - started, 1)}
    result = to_jsonable(result)
    top = {f"{m}_{stat}": result[m][stat] for m in METRICS for stat in ("mean", "std")}
    write_stage_metrics(out_path, {"folds": cfg.folds, **top}, result, report_path)
    return result
