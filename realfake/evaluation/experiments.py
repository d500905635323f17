"""Summarise `dvc exp show --json`: mean ± std of metrics over seeds, grouped by the params that differ."""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from realfake.core.errors import UserError

DEFAULT_METRICS = (
    "metrics/evaluate.json:auc",
    "metrics/evaluate.json:f1",
    "metrics/evaluate.json:acc",
    "metrics/evaluate.json:pair_auc",
)


def _dig(data: Any, dotted: str) -> Any:
    """data['a']['b'] for 'a.b'; None when a key is missing."""
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


BASELINE = "baseline"  # the name and arm of the commit experiments start from, in exp-table


def iter_experiments(shown: list[dict], include_baseline: bool = True) -> Iterator[dict[str, Any]]:
    """Every experiment (name, params.yaml data, metrics files) in `dvc exp show --json` output; first, with
    `include_baseline`, each baseline commit the experiments start from (name 'baseline', `baseline` True)."""
    for baseline in shown:
        if include_baseline and baseline.get("rev") != "workspace" and not baseline.get("error"):
            data = baseline.get("data") or baseline
            if data.get("metrics") or data.get("params"):
                yield _entry(BASELINE, baseline.get("rev"), data, True)
        for group in baseline.get("experiments") or []:
            state = (group.get("executor") or {}).get("state", "success")
            if state != "success":  # queued, running or failed: no finished metrics yet
                continue
            for rev in group.get("revs") or []:
                data = rev.get("data") or {}
                if rev.get("error"):
                    continue
                yield _entry(rev.get("name") or rev.get("rev", "")[:7], rev.get("rev"), data, False)


def _entry(name: str, rev: str | None, data: dict, baseline: bool) -> dict[str, Any]:
    return {"name": name, "rev": rev, "baseline": baseline,
            "params": (data.get("params") or {}).get("params.yaml", {}).get("data", {}),
            "metrics": {f: (m or {}).get("data", {}) for f, m in (data.get("metrics") or {}).items()}}


def arm_of(name: str) -> str:
    """An experiment's arm: its name without a trailing seed suffix ('reenc-s2' -> 'reenc')."""
    return re.sub(r"-s\d+$", "", name)


def _leaf_keys(data: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every non-dict value in nested dicts."""
    if not isinstance(data, dict):
        return [prefix] if prefix else []
    return [k for key, value in data.items() for k in _leaf_keys(value, f"{prefix}.{key}" if prefix else str(key))]


def check_metrics(shown: list[dict], metrics: tuple[str, ...], name_prefix: str | None = None,
                  repo: str = ".") -> None:
    """Raise UserError naming the first `file:dotted.key` that no finished experiment has, with near matches."""
    exps = [e for e in iter_experiments(shown) if not name_prefix or e["name"].startswith(name_prefix)]
    for spec in metrics:
        if ":" not in spec:
            raise UserError(f"--metric {spec!r}: write it as FILE:dotted.key, e.g. {DEFAULT_METRICS[0]}")
        if not exps:
            return
        file, key = spec.split(":", 1)
        datas = [metric_data(e, file, repo) for e in exps]
        if not any(datas):
            files = sorted({f for e in exps for f in e["metrics"]})
            raise UserError(f"--metric {spec!r}: no experiment has metrics file {file!r} (nor a report by that name); the headline metrics are {files}")
        if any(_dig(d, key) is not None for d in datas):
            continue
        keys = sorted({k for d in datas for k in _leaf_keys(d)})
        near = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(near)}?" if near else f"{len(keys)} keys exist there, e.g. {keys[:5]}"
        raise UserError(f"--metric {spec!r}: unknown key {key!r} in {file} (in every experiment); {hint}")


def metric_data(exp: dict[str, Any], file: str, repo: str = ".") -> dict[str, Any]:
    """One file of an experiment: a headline metrics file from `dvc exp show`, any other read at its revision."""
    return exp["metrics"][file] if file in exp["metrics"] else read_details(file, exp["rev"], repo)


def read_details(file: str, rev: str | None, repo: str = ".") -> dict[str, Any]:
    """A file that is not a headline metric (e.g. reports/evaluate.json) as an experiment left it ({} if absent)."""
    import dvc.api

    try:
        return json.loads(dvc.api.read(file, repo=repo, rev=rev))
    except Exception:  # absent at that revision, or not JSON: its cells show "—"
        return {}


def experiment_frame(shown: list[dict], params: tuple[str, ...], metrics: tuple[str, ...] = DEFAULT_METRICS,
                     name_prefix: str | None = None, repo: str = ".") -> pd.DataFrame:
    """One row per experiment with its arm, the chosen params and metrics (`file:dotted.key`).

    A file among the headline metrics comes from `dvc exp show`; any other (the details under reports/,
    cached outputs every experiment keeps) is read at the experiment's revision with `dvc.api.read`.
    """
    rows = []
    for exp in iter_experiments(shown):
        if name_prefix and not exp["name"].startswith(name_prefix):
            continue
        row = {"name": exp["name"], "arm": arm_of(exp["name"]), "baseline": exp["baseline"],
               **{p: _dig(exp["params"], p) for p in params if p != "arm"}}
        for spec in metrics:
            file, key = spec.split(":", 1)
            row[key] = _dig(metric_data(exp, file, repo), key)
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std_table(frame: pd.DataFrame, group_by: tuple[str, ...], metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per group: number of runs and 'mean ± std' of each metric (sample std, ddof=1).

    The baseline (the commit the experiments start from) is a row of its own, first, marked in a `run` column: it is
    what the experiments are compared with, and mixing it into a group of seeds would count one run twice.
    """
    keys = [m.split(":", 1)[1] for m in metrics]
    is_base = frame["baseline"].fillna(False).astype(bool) if "baseline" in frame else pd.Series(False, frame.index)
    out = []
    for run, part_frame in (("baseline", frame[is_base]), ("experiments", frame[~is_base])):
        if part_frame.empty:
            continue
        for values, part in part_frame.groupby(list(group_by), dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            row = ({"run": run} if is_base.any() else {}) | dict(zip(group_by, values, strict=True)) | {"runs": len(part)}
            for key in keys:
                col = pd.to_numeric(part[key], errors="coerce").dropna()
                std = float(np.std(col, ddof=1)) if len(col) > 1 else float("nan")
                row[key] = ("—" if not len(col) else f"{col.mean():.4f}" if len(col) == 1
                            else f"{col.mean():.4f} ± {std:.4f}")
            out.append(row)
    return pd.DataFrame(out)


def exp_show_json(cwd: str = ".") -> list[dict]:
    """Run `dvc exp show --json` (all experiments of the current baseline)."""
    proc = subprocess.run(["dvc", "exp", "show", "--json"], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"dvc exp show failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
