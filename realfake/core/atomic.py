"""Atomic file writes: write to a locked temp beside the target, then rename; sweep the temps a killed run left.

Every temp file or folder is named `.<target>.<8 random chars><suffix>.tmp` and holds an exclusive `flock` for as
long as its writer lives. The kernel drops that lock when the writer dies, even by SIGKILL, so a temp whose lock
can be taken belongs to nobody and is removed the first time a process writes into that folder again.
`.dvcignore` hides these names from DVC, so a leftover never changes a dependency's hash in the meantime.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)

# What mkstemp/mkdtemp make from prefix `.<name>.` and suffix `[.ext].tmp` (8 chars of [a-z0-9_])
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?\.tmp$")
# The `.dvcignore` patterns (those temps, and Python bytecode beside the code; tests/test_extract_hostile.py keeps
# the file equal to this). DVC ignores any file or folder so named anywhere (a trailing / names a folder), so the
# download stage refuses archive entries so named.
DVCIGNORE_PATTERNS = (".*.tmp", "__pycache__/", "*.pyc")
_SWEPT: set[str] = set()  # folders this process has already swept (once each: crops dirs hold many files)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path in the target's directory; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, tmp_path = _locked_temp(lambda: tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp",
                                                         dir=path.parent))
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write pretty, key-sorted JSON atomically (stable diffs for `dvc metrics diff`)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_torch(path: str | os.PathLike, obj: Any) -> None:
    """torch.save atomically, byte for byte reproducible.

    torch.save names the zip archive's root folder after the file it writes to, so saving straight to a
    random temp name gives different bytes (and a new dvc.lock hash) on every run; a buffer is always `archive`.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def write_parquet(df, path: str | os.PathLike, schema=None) -> None:
    """Write a DataFrame to parquet atomically, enforcing `schema` (a pyarrow.Schema) when given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temp name and swap it in whole when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, tmp = _temp_dir(path)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            # the old tree goes into a second locked temp first: a kill between the two renames leaves only temps
            trash_fd, trash = _temp_dir(path)
            try:
                os.replace(path, trash / "old")
                os.replace(tmp, path)
            finally:
                shutil.rmtree(trash, ignore_errors=True)
                os.close(trash_fd)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


def _temp_dir(path: Path) -> tuple[int, Path]:
    """A new locked temp folder beside `path`."""
    def make() -> tuple[int, str]:
        name = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY), name
    return _locked_temp(make)


def _locked_temp(make: Callable[[], tuple[int, str]]) -> tuple[int, Path]:
    """Create a temp with `make` and take its lock; retry if a sweeper removed it before the lock was ours."""
    for _ in range(100):
        fd, name = make()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(name, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd, Path(name)
        except (BlockingIOError, FileNotFoundError):
            pass  # a sweeper in another process got it between creation and lock: it is gone, make another
        os.close(fd)
    raise OSError(f"could not create a temp file in {os.path.dirname(name)}")


def sweep_stale(directory: str | os.PathLike) -> list[str]:
    """Remove the temps in `directory` that no live writer holds (left by a killed run); return their names."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if not TEMP_NAME.match(entry.name):
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if is_dir else 0))
        except OSError:
            continue  # a symlink, vanished, or not ours to read: leave it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            if is_dir:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d temp file(s) or folder(s) an interrupted run left in %s", len(removed), directory)
    return removed


def _sweep_once(directory: Path) -> None:
    """Sweep `directory` the first time this process writes into it."""
    key = os.path.realpath(directory)
    if key not in _SWEPT:
        _SWEPT.add(key)
        sweep_stale(directory)


def _json_default(obj: Any) -> Any:
    """Make numpy scalars and paths JSON-serialisable."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
