"""Progress bars that stay readable in logs: tqdm in a terminal, a dated log line every so often otherwise.

tqdm redraws one line with carriage returns. Where stderr is a file or a pipe (`dvc repro > log`, CI, `nohup`),
a viewer shows the first frame, "0%", until the bar closes. Off a terminal, the bar here writes its state as an
ordinary log line every REALFAKE_PROGRESS_S seconds (default 30) and once at the end.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from tqdm import tqdm as _terminal_tqdm

log = logging.getLogger(__name__)
INTERVAL_ENV = "REALFAKE_PROGRESS_S"
DEFAULT_INTERVAL_S = 30.0


def log_interval() -> float:
    """Seconds between progress lines off a terminal ($REALFAKE_PROGRESS_S; bad values fall back to the default)."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


class _Discard:
    """A file that drops what is written to it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class LoggedProgress(_terminal_tqdm):
    """A tqdm whose every display is one log line (no carriage returns), at most every log_interval() seconds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        interval = log_interval()
        kwargs.setdefault("mininterval", interval)
        kwargs["maxinterval"] = max(interval, kwargs.get("maxinterval", 0.0))
        kwargs["file"] = _Discard()  # everything goes through display(); tqdm's stray "\r" writes go nowhere
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Log the bar's state as one short line, once per count (the end of a loop and close() both display)."""
        d = self.format_dict
        if d["n"] == getattr(self, "_logged_n", None):
            return True
        self._logged_n = d["n"]
        total = d["total"]
        done = f"{d['n']}/{total:g} ({100 * d['n'] / total:.0f}%)" if total else f"{d['n']}"
        rate = d["rate"] or (d["n"] / d["elapsed"] if d["elapsed"] else None)
        speed = f", {rate:.1f} {d['unit']}/s" if rate else ""
        left = f", about {self.format_interval((total - d['n']) / rate)} left" if rate and total and d["n"] < total else ""
        log.info("%s%s, %s elapsed%s%s", f"{d['prefix']}: " if d["prefix"] else "", done,
                 self.format_interval(d["elapsed"]), speed, left)
        return True


def tqdm(*args: Any, **kwargs: Any) -> _terminal_tqdm:
    """tqdm.tqdm on a terminal, LoggedProgress elsewhere (same arguments)."""
    stream = kwargs.get("file") or sys.stderr
    is_tty = getattr(stream, "isatty", lambda: False)()
    return (_terminal_tqdm if is_tty else LoggedProgress)(*args, **kwargs)
