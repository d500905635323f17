"""Summarise `dvc exp show --json`: mean ± std of metrics over seeds, grouped by the params that differ."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from realfake.core.errors import UserError

DEFAULT_METRICS = (
    "metrics/evaluate.json:at_threshold.roc_auc",
    "metrics/evaluate.json:at_threshold.f1",
    "metrics/evaluate.json:at_threshold.accuracy",
    "metrics/evaluate.json:honest_pair.pair_auc",
)


def _dig(data: Any, dotted: str) -> Any:
    """data['a']['b'] for 'a.b'; None when a key is missing."""
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def iter_experiments(shown: list[dict]) -> Iterator[dict[str, Any]]:
    """Every experiment (name, params.yaml data, metrics files) in `dvc exp show --json` output."""
    for baseline in shown:
        for group in baseline.get("experiments") or []:
            state = (group.get("executor") or {}).get("state", "success")
            if state != "success":  # queued, running or failed: no finished metrics yet
                continue
            for rev in group.get("revs") or []:
                data = rev.get("data") or {}
                if rev.get("error"):
                    continue
                yield {"name": rev.get("name") or rev.get("rev", "")[:7],
                       "params": (data.get("params") or {}).get("params.yaml", {}).get("data", {}),
                       "metrics": {f: (m or {}).get("data", {}) for f, m in (data.get("metrics") or {}).items()}}


def arm_of(name: str) -> str:
    """An experiment's arm: its name without a trailing seed suffix ('reenc-s2' -> 'reenc')."""
    return re.sub(r"-s\d+$", "", name)


def experiment_frame(shown: list[dict], params: tuple[str, ...], metrics: tuple[str, ...] = DEFAULT_METRICS,
                     name_prefix: str | None = None) -> pd.DataFrame:
    """One row per experiment with its arm, the chosen params and metrics (`file:dotted.key`)."""
    rows = []
    for exp in iter_experiments(shown):
        if name_prefix and not exp["name"].startswith(name_prefix):
            continue
        row = {"name": exp["name"], "arm": arm_of(exp["name"]),
               **{p: _dig(exp["params"], p) for p in params if p != "arm"}}
        for spec in metrics:
            file, key = spec.split(":", 1)
            row[key] = _dig(exp["metrics"].get(file, {}), key)
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std_table(frame: pd.DataFrame, group_by: tuple[str, ...], metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per group: number of runs and 'mean ± std' of each metric (sample std, ddof=1)."""
    keys = [m.split(":", 1)[1] for m in metrics]
    out = []
    for values, part in frame.groupby(list(group_by), dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        row = {g: v for g, v in zip(group_by, values, strict=True)} | {"runs": len(part)}
        for key in keys:
            col = pd.to_numeric(part[key], errors="coerce").dropna()
            std = float(np.std(col, ddof=1)) if len(col) > 1 else float("nan")
            row[key] = "—" if not len(col) else f"{col.mean():.4f}" if len(col) == 1 else f"{col.mean():.4f} ± {std:.4f}"
        out.append(row)
    return pd.DataFrame(out)


def exp_show_json(cwd: str = ".") -> list[dict]:
    """Run `dvc exp show --json` (all experiments of the current baseline)."""
    proc = subprocess.run(["dvc", "exp", "show", "--json"], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"dvc exp show failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
