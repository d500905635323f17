"""Process pools whose workers die with the process that made them, even when it is killed by SIGKILL.

A plain ProcessPoolExecutor outlives a killed parent: its workers block on a queue whose write end they hold
themselves, and under `forkserver` their parent is the fork server, which in turn waits for its clients (the
workers) to close their end of its liveness pipe. PR_SET_PDEATHSIG does not help there (the direct parent lives
on) and fires early under `fork` when the thread that started the worker ends, so each worker watches its owner
instead: a pidfd becomes readable the moment the owner exits (Linux >= 5.3); elsewhere it polls.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

_POLL_S = 0.5  # how often the fallback watcher looks for the owner, where pidfd is missing


def orphan_safe_pool(workers: int, mp_context: multiprocessing.context.BaseContext,
                     initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers exit as soon as the calling process is gone."""
    return ProcessPoolExecutor(workers, mp_context=mp_context, initializer=_init_worker,
                               initargs=(os.getpid(), initializer, initargs))


def _init_worker(owner: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Tie this worker's life to `owner`, then run the pool's own initializer."""
    die_with(owner)
    if initializer is not None:
        initializer(*initargs)


def die_with(owner: int) -> None:
    """Exit this process (at once, without cleanup) when process `owner` exits."""
    if not _alive(owner):
        os._exit(1)
    try:
        pidfd: int | None = os.pidfd_open(owner)
    except (AttributeError, OSError):  # no pidfd on this system, or the owner is already gone
        pidfd = None
    threading.Thread(target=_watch, args=(owner, pidfd), name=f"watch-owner-{owner}", daemon=True).start()


def _watch(owner: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])  # a pidfd turns readable when its process exits
    else:
        _poll_until_gone(owner)
    os._exit(1)


def _poll_until_gone(pid: int) -> None:
    while _alive(pid):
        time.sleep(_POLL_S)


def _alive(pid: int) -> bool:
    """True while `pid` runs (on Linux a zombie counts as gone; elsewhere a signal probe decides)."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
