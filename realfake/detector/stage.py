"""The train stage: fit the detector, then write the checkpoint, metrics/train.json (+ reports/train.json) and the model card."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from realfake.core.stage_metrics import write_stage_metrics
from realfake.core.timings import record_timing
from realfake.detector.ensemble import train_detector
from realfake.detector.model_card import write_model_card
from realfake.detector.run import TrainRun

log = logging.getLogger("stages.train")


def run_train_stage(run: TrainRun, packed: str, checkpoint: str, card: str, metrics: str, live: str,
                    report: str | None = None) -> dict[str, Any]:
    """Train `run` on `packed`/{train,val}; the checkpoint stores the run, the report and the card its profile overrides.

    metrics/train.json gets the headline (val AUC), `report` (default reports/train.json) the rest, the log and
    logs/timings.jsonl the timings.
    """
    previous = previous_profile(Path("dvc.lock"))  # read before training: the baseline's, not this run's
    summary = train_detector(run, packed, checkpoint, live)
    summary["profile_overrides"] = dict(run.profile_overrides)  # what the data profile changed in `train`
    if run.profile_overrides:  # said after training: a bad input above must stay a one-line error
        log.info("data.profile=%s overrode train params: %s", run.profile,
                 ", ".join(f"{k}={v}" for k, v in run.profile_overrides.items()))
    details = {k: v for k, v in summary.items() if k not in ("history", "fitness")}
    write_stage_metrics(metrics, {"val_auc": summary["best_val_auc"]}, details, report)
    record_timing("train", **{k: summary[k] for k in ("seconds", "train_seconds", "images_per_s", "threads")})
    write_model_card(card, summary, run.model, run.train)
    log.info("best epoch %d: val loss %.4f, val AUC %s -> %s",
             summary["best_epoch"], summary["best_val_loss"], fmt(summary["best_val_auc"]), checkpoint)
    if (line := profile_switch_line(previous, run.profile, checkpoint)) is not None:
        log.warning("%s", line)
    return summary


def fmt(value: float | None) -> str:
    """A metric for a log line: 4 decimals (None as 'n/a')."""
    return "n/a" if value is None else f"{value:.4f}"


def previous_profile(lock: Path) -> str | None:
    """data.profile of the train stage recorded in `lock` (the model now in models/ came from it); None if unknown."""
    try:
        stage = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get("train", {})
        value = (stage.get("params", {}).get("params.yaml", {}) or {}).get("data.profile")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def profile_switch_line(previous: str | None, profile: str | None, checkpoint: str) -> str | None:
    """The warning when this run replaces a model trained on another data profile (None when it does not)."""
    if previous is None or profile is None or previous == profile:
        return None
    return (f"{checkpoint} now holds the model trained on data.profile={profile}; it replaced the one trained on "
            f"data.profile={previous}. That model is kept in its commit or experiment: `dvc exp show` lists them, "
            f"`dvc exp apply <exp>` (or `git checkout <rev> -- dvc.lock && dvc checkout {checkpoint}`) brings it back")
