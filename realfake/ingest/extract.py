"""Safe, uniform reading of ZIP archives, TAR archives and directories, and safe writing of their entries."""

from __future__ import annotations

import errno
import lzma
import os
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from realfake.core.errors import UserError
from realfake.ingest.config import ExtractLimits

# Why an entry is not kept: the keys of the download metrics' `skipped` (docs/hostile-inputs.md explains each)
SKIP_REASONS = (
    "label-file", "not-included", "not-image", "other-label",  # the source's own layout, not a fault
    "unsafe-path", "symlink", "special-file",  # refused for safety
    "dvcignored-name",  # DVC would not track it: listed in the table, missing after `dvc checkout`
    "duplicate-name", "path-conflict", "name-too-long", "unwritable-name",  # names that would clash or not fit
    "corrupt-entry", "encrypted-entry", "unsupported-compression", "unreadable-file",  # bytes that cannot be read
)
# Below this many bytes in total, an archive may compress as well as it likes (small text files do)
RATIO_FLOOR_BYTES = 16 * 2**20
# Refusing an entry for these would hide a fault of the machine, not of the entry: stop the stage instead
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


@dataclass(frozen=True)
class Member:
    """One entry of an archive or directory, readable on demand."""

    name: str
    type: str  # file | dir | symlink | special
    size: int
    read: Callable[[], bytes]


class EntryError(Exception):
    """One entry that cannot be kept, with its reason (one of SKIP_REASONS); the rest of the archive can."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


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
    elif (kind := _archive_magic(path)) is not None:
        raise UserError(f"corrupt archive {path}: it starts as a {kind} but cannot be read (truncated or damaged: no "
                        "readable central directory or end)")
    else:
        raise UserError(f"{path} is neither a directory nor a readable ZIP/TAR archive (corrupt or wrong format)")


# How ZIPs and compressed TARs begin: a file that starts so but cannot be opened is a cut or damaged archive
_MAGIC = {b"PK\x03\x04": "ZIP", b"PK\x05\x06": "ZIP", b"\x1f\x8b": "gzip file", b"BZh": "bzip2 file",
          b"\xfd7zXZ\x00": "xz file"}


def _archive_magic(path: Path) -> str | None:
    """The archive kind a file's first bytes announce, if any."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


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
    """Refuse archives whose declared file count, total size or total expansion exceed the limits.

    The total ratio catches many small entries that each stay under the per-entry check (300 x 1 MiB of zeros
    in a 339 kB ZIP); its floor keeps small, well-compressed label files out of it.
    """
    if len(sizes) > limits.max_files:
        raise UserError(f"{path}: {len(sizes)} files exceed download.limits.max_files={limits.max_files}")
    total = sum(sizes)
    if total > limits.max_total_bytes:
        raise UserError(f"{path}: {total} bytes uncompressed exceed download.limits.max_total_bytes")
    packed = path.stat().st_size
    if total > RATIO_FLOOR_BYTES and total > limits.max_ratio * packed:
        raise UserError(f"{path}: {len(sizes)} entries expand {total / max(packed, 1):.0f}x in total ({packed} -> "
                        f"{total} bytes; download.limits.max_ratio is {limits.max_ratio:g}): refusing a likely "
                        "archive bomb of many small entries")


def _iter_zip(path: Path, limits: ExtractLimits) -> Iterator[Member]:
    """ZIP entries; symlinks are recognised from the Unix mode in external_attr."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        kinds = [_zip_kind(info) for info in infos]
        for info, kind in zip(infos, kinds, strict=True):  # one huge entry is named as such, before the totals
            if kind == "file":
                _check_entry(path, info.filename, info.file_size, info.compress_size, limits)
        _check_totals(path, [i.file_size for i in infos], limits)
        for info, kind in zip(infos, kinds, strict=True):
            yield Member(info.filename, kind, info.file_size, _zip_reader(zf, info, limits))


def _zip_kind(info: zipfile.ZipInfo) -> str:
    """file | dir | symlink | special; Unix file-type bits live in the high half of external_attr (0: not recorded)."""
    fmt = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
    if info.is_dir():
        return "dir"
    if fmt == stat.S_IFLNK:
        return "symlink"
    if fmt and fmt != stat.S_IFREG:
        return "special"
    return "file"


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ExtractLimits) -> Callable[[], bytes]:
    """Read one entry, never more than the per-file limit even if the header lies; a bad entry is an EntryError."""
    def read() -> bytes:
        try:
            with zf.open(info) as fh:
                data = fh.read(limits.max_file_bytes + 1)
        except NotImplementedError as exc:  # a compression method (or strong encryption) zipfile lacks
            raise EntryError("unsupported-compression", _describe(exc)) from exc
        except RuntimeError as exc:  # zipfile's word for "encrypted, password required"
            raise EntryError("encrypted-entry", "encrypted, and no password is known") from exc
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError) as exc:  # bad CRC, stream
            raise EntryError("corrupt-entry", _describe(exc)) from exc
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
        for info in infos:  # one huge entry is named as such, before the totals
            if info.isfile() and not info.islnk():
                _check_entry(path, info.name, info.size, 0, limits)
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
            yield Member(info.name, kind, info.size, _tar_reader(tf, info))


def _tar_reader(tf: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            fh = tf.extractfile(info)
            return fh.read() if fh else b""
        except (tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError) as exc:
            raise EntryError("corrupt-entry", _describe(exc)) from exc
    return read


def _describe(exc: BaseException) -> str:
    """`module.Type: message`, short (zlib's error class is just called `error`)."""
    kind = type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__name__}"
    return f"{kind}: {exc}"[:300]


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
            yield Member(rel, kind, st.st_size, _file_reader(full))


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:  # vanished or not readable since the walk
            raise EntryError("unreadable-file", _describe(exc)) from exc
    return read
