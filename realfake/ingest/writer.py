"""Safe writing of archive entries below a folder: never overwrites, refuses names that clash or do not fit."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from realfake.core.errors import UserError
from realfake.ingest.extract import _MACHINE_ERRNOS, EntryError, Member, _describe


@dataclass
class EntryWriter:
    """Writes entries below `root`: never overwrites, refuses names that clash or do not fit (EntryError)."""

    root: Path
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.name_max, self.path_max = _name_limits(self.root)

    def write(self, rel: str, member: Member) -> None:
        """Write one entry to root/rel (rel from safe_relpath: NFC, so names equal after normalising clash)."""
        self._check_name(rel)
        data = member.read()
        target = self.root / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as fh:  # exclusive: even a clash the checks missed cannot overwrite
                try:
                    fh.write(data)
                except OSError:
                    target.unlink()  # no half-written file
                    raise
        except OSError as exc:
            raise self._entry_error(rel, exc) from exc
        self.files.add(rel)
        self.folders.update(_parents(rel))

    def _check_name(self, rel: str) -> None:
        if rel in self.files:
            raise EntryError("duplicate-name", "an earlier entry has this name (after Unicode normalisation); kept that one")
        if rel in self.folders:
            raise EntryError("path-conflict", "earlier entries use this name as a folder")
        clash = next((p for p in _parents(rel) if p in self.files), None)
        if clash is not None:
            raise EntryError("path-conflict", f"an earlier entry {clash!r} is a file, not a folder")
        longest = max(len(part.encode()) for part in rel.split("/"))
        if longest > self.name_max or len(os.fsencode(self.root / rel)) >= self.path_max or rel.count("/") > 255:
            raise EntryError("name-too-long", f"{len(rel.encode())} bytes, {rel.count('/') + 1} levels, longest part "
                                              f"{longest} bytes (this filesystem allows {self.name_max} per part)")

    def _entry_error(self, rel: str, exc: OSError) -> EntryError:
        if exc.errno in _MACHINE_ERRNOS:
            raise UserError(f"cannot write {rel!r} below {self.root.parent}: {exc.strerror} (free space, or fix "
                            "permissions or limits, then re-run)") from exc
        if exc.errno == errno.ENAMETOOLONG:
            return EntryError("name-too-long", str(exc))
        if isinstance(exc, (NotADirectoryError, IsADirectoryError)) or (self.root / rel).is_dir():
            return EntryError("path-conflict", str(exc))
        if isinstance(exc, FileExistsError):  # a filesystem that folds case or normalisation
            return EntryError("duplicate-name", f"the filesystem holds an equal name already: {exc}")
        return EntryError("unwritable-name", _describe(exc))


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:k]) for k in range(1, len(parts))]


def _name_limits(root: Path) -> tuple[int, int]:
    """Longest file name and path this filesystem takes, in bytes."""
    try:
        return os.pathconf(root, "PC_NAME_MAX"), os.pathconf(root, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096
