"""How long a stage took: to the log and to an untracked `logs/timings.jsonl`, never into DVC outputs.

Timings differ on every run, so inside a DVC-tracked file they would change `dvc.lock` on every
`dvc repro`. `$REALFAKE_TIMINGS` moves the file; an empty value turns it off.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("logs/timings.jsonl")


def timings_path() -> Path | None:
    """The JSON-lines file timings are appended to (None when `$REALFAKE_TIMINGS` is set empty)."""
    value = os.environ.get("REALFAKE_TIMINGS")
    if value is None:
        return DEFAULT_PATH
    return Path(value) if value else None


def record_timing(stage: str, **values: float | int) -> None:
    """Log one stage's timings and append them, with the wall-clock time, to timings_path()."""
    shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
    log.info("timing %s: %s", stage, shown)
    path = timings_path()
    if path is None:
        return
    line = json.dumps({"stage": stage, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **values}) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # one short O_APPEND write per call: concurrent stages (queued experiments) do not interleave lines
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:  # timings are a convenience: never fail a stage over them
        log.warning("cannot append timings to %s: %s", path, exc)
