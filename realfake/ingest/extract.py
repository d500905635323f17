"""Safe, uniform reading of ZIP archives, TAR archives and directories."""

from __future__ import annotations

import os
import stat
import tarfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from realfake.core.errors import UserError


@dataclass(frozen=True)
class ExtractLimits:
    """Archive-bomb guards (params.yaml `download.limits`)."""

    max_files: int = 200_000
    max_total_bytes: int = 20 * 2**30
    max_file_bytes: int = 200 * 2**20
    max_ratio: float = 200.0  # uncompressed / compressed size of one ZIP entry


@dataclass(frozen=True)
class Member:
    """One entry of an archive or directory, readable on demand."""

    name: str
    type: str  # file | dir | symlink | special
    size: int
    read: Callable[[], bytes]


def safe_relpath(name: str) -> str | None:
    """The member name as a safe relative POSIX path, or None if it is absolute or climbs out (zip-slip)."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/"))
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def iter_members(path: Path, limits: ExtractLimits) -> Iterator[Member]:
    """Yield every entry of a ZIP, TAR or directory, after the archive-bomb checks."""
    if path.is_dir():
        yield from _iter_dir(path)
    elif zipfile.is_zipfile(path):
        yield from _guarded(_iter_zip, path, limits)
    elif _is_tar(path):
        yield from _guarded(_iter_tar, path, limits)
    else:
        raise UserError(f"{path} is neither a directory nor a readable ZIP/TAR archive (corrupt or wrong format)")


def _is_tar(path: Path) -> bool:
    """tarfile.is_tarfile, which can itself raise on garbage."""
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


def _guarded(reader, path: Path, limits: ExtractLimits) -> Iterator[Member]:
    """Turn format errors inside an archive into one clear user-facing error."""
    try:
        yield from reader(path, limits)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"corrupt archive {path}: {exc}") from exc


def _check_totals(path: Path, sizes: list[int], limits: ExtractLimits) -> None:
    """Refuse archives whose declared file count or total size exceed the limits."""
    if len(sizes) > limits.max_files:
        raise UserError(f"{path}: {len(sizes)} files exceed download.limits.max_files={limits.max_files}")
    total = sum(sizes)
    if total > limits.max_total_bytes:
        raise UserError(f"{path}: {total} bytes uncompressed exceed download.limits.max_total_bytes")


def _iter_zip(path: Path, limits: ExtractLimits) -> Iterator[Member]:
    """ZIP entries; symlinks are recognised from the Unix mode in external_attr."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        _check_totals(path, [i.file_size for i in infos], limits)
        for info in infos:
            # Unix file-type bits live in the high half of external_attr; 0 means "not recorded"
            fmt = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
            if info.is_dir():
                kind = "dir"
            elif fmt == stat.S_IFLNK:
                kind = "symlink"
            elif fmt and fmt != stat.S_IFREG:
                kind = "special"
            else:
                kind = "file"
                _check_entry(path, info.filename, info.file_size, info.compress_size, limits)
            yield Member(info.filename, kind, info.file_size, _zip_reader(zf, info, limits))


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ExtractLimits) -> Callable[[], bytes]:
    """Read one entry, never more than the per-file limit even if the header lies."""
    def read() -> bytes:
        with zf.open(info) as fh:
            data = fh.read(limits.max_file_bytes + 1)
        if len(data) > limits.max_file_bytes:
            raise UserError(f"{info.filename}: larger than download.limits.max_file_bytes")
        return data
    return read


def _check_entry(path: Path, name: str, size: int, packed: int, limits: ExtractLimits) -> None:
    """Refuse single entries that are too large or compress suspiciously well (zip bombs)."""
    if size > limits.max_file_bytes:
        raise UserError(f"{path}: entry {name!r} is {size} bytes, over download.limits.max_file_bytes")
    if size > 2**20 and packed and size / packed > limits.max_ratio:
        raise UserError(f"{path}: entry {name!r} expands {size / packed:.0f}x: refusing a likely archive bomb")


def _iter_tar(path: Path, limits: ExtractLimits) -> Iterator[Member]:
    """TAR entries (any compression tarfile understands)."""
    with tarfile.open(path) as tf:
        infos = tf.getmembers()
        _check_totals(path, [i.size for i in infos if i.isfile()], limits)
        for info in infos:
            if info.isdir():
                kind = "dir"
            elif info.issym() or info.islnk():
                kind = "symlink"
            elif not info.isfile():
                kind = "special"
            else:
                kind = "file"
                _check_entry(path, info.name, info.size, 0, limits)
            yield Member(info.name, kind, info.size, _tar_reader(tf, info))


def _tar_reader(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        fh = tf.extractfile(info)
        return fh.read() if fh else b""
    return read


def _iter_dir(root: Path) -> Iterator[Member]:
    """Directory entries; symlinks are reported, never followed."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in [*sorted(filenames), *[d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                kind = "symlink"
            elif stat.S_ISREG(st.st_mode):
                kind = "file"
            else:
                kind = "special"
            yield Member(rel, kind, st.st_size, full.read_bytes)
