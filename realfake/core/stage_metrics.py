"""Stage metrics in two files: a short flat headline (`metrics/…`) and the full details (`reports/…`).

The headline holds the few numbers a person compares across experiments: it is what `dvc exp show`,
`dvc metrics show` and `dvc metrics diff` print, so it stays flat, numeric, rounded and small. Everything
else a stage measures (per-reason counts, per-group tables, settings echoed back) goes to the details file,
a cached DVC output that experiments keep (`dvc metrics diff --targets reports/…` reads it too). Timings
never enter either file: they differ on every run and would change `dvc.lock` (see `realfake.core.timings`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from realfake.core.atomic import write_json

DIGITS = 4  # headline precision: enough to compare runs, short enough for a 200-column `dvc exp show`
MAX_HEADLINE_KEYS = 12
TIMING_KEYS = frozenset({"seconds", "train_seconds", "images_per_s"})


def counts(n_in: int, kept: int, rejected: int) -> dict[str, int]:
    """The per-stage count triple every stage reports; refuses numbers that do not reconcile."""
    if int(n_in) != int(kept) + int(rejected):
        raise ValueError(f"in ({n_in}) != kept ({kept}) + rejected ({rejected})")
    return {"in": int(n_in), "kept": int(kept), "rejected": int(rejected)}


def headline(values: dict[str, Any]) -> dict[str, int | float]:
    """A flat headline: numbers only (None, NaN and inf left out), floats rounded to DIGITS decimals."""
    out: dict[str, int | float] = {}
    for key, value in values.items():
        value = value.item() if hasattr(value, "item") else value  # numpy scalars
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"headline metric {key!r} must be a number, not {type(value).__name__}")
        if isinstance(value, float):
            if not math.isfinite(value):
                continue
            value = round(value, DIGITS)
        out[key] = value
    if len(out) > MAX_HEADLINE_KEYS:
        raise ValueError(f"{len(out)} headline metrics; keep at most {MAX_HEADLINE_KEYS} (the rest go to reports/)")
    return out


def without_timings(obj: Any) -> Any:
    """A copy of nested dicts/lists with every timing key removed (they belong in the log, not in DVC outputs)."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list | tuple):
        return [without_timings(v) for v in obj]
    return obj


def report_path_for(metrics_path: str | os.PathLike) -> Path:
    """Where the details of a headline file go: its last `metrics` folder becomes `reports`.

    metrics/faces/lfw.json -> reports/faces/lfw.json; a path with no `metrics` folder gets a sibling
    `<stem>.details.json`.
    """
    parts = list(Path(metrics_path).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "metrics":
            parts[i] = "reports"
            return Path(*parts)
    path = Path(metrics_path)
    return path.with_name(f"{path.stem}.details.json")


def write_stage_metrics(metrics_path: str | os.PathLike, top: dict[str, Any], details: dict[str, Any],
                        report_path: str | os.PathLike | None = None) -> dict[str, int | float]:
    """Write the headline (`metrics_path`) and the details (`report_path`, default report_path_for); return the headline."""
    short = headline(top)
    write_json(report_path if report_path is not None else report_path_for(metrics_path), without_timings(details))
    write_json(metrics_path, short)
    return short
