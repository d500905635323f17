"""Photos from a multipart request, read into memory under hard limits: nothing is spooled to disk, and an upload
over a limit is refused as soon as the limit is crossed (not after the whole body has been read)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from realfake.predict import Upload

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers allowed per file on top of its bytes


@dataclass(frozen=True)
class Limits:
    """What one request may carry (`realfake serve --max-files/--max-mb/--max-request-mb`)."""

    max_files: int = 16
    max_bytes: int = 20 * 1024 * 1024  # per file
    max_request_bytes: int = 64 * 1024 * 1024  # all files together: what one queued request may hold in memory

    @property
    def max_body(self) -> int:
        return min(self.max_request_bytes, self.max_files * (self.max_bytes + MULTIPART_OVERHEAD))


class Refused(Exception):
    """A request the server will not read: an HTTP status and one clear line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


def _filename(raw: bytes) -> str:
    """The base name a browser sent (some send a client-side path): no folders, never empty."""
    name = raw.decode("utf-8", "replace")
    name = PureWindowsPath(PurePosixPath(name).name).name.strip()
    return name or "upload"


class _Collector:
    """The multipart parser's callbacks: collect the parts, refusing the request as soon as it crosses a limit."""

    def __init__(self, limits: Limits):
        self.limits, self.parts = limits, []
        self.field, self.value = b"", b""

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value, "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished, "on_part_data": self.on_part_data}

    def on_part_begin(self) -> None:
        self.parts.append(_Part())

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.parts[-1].headers[self.field.lower()] = self.value
        self.field, self.value = b"", b""

    def on_headers_finished(self) -> None:
        part = self.parts[-1]
        _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
        if b"filename" in disposition:
            part.filename = _filename(disposition[b"filename"])
            if sum(p.filename is not None for p in self.parts) > self.limits.max_files:
                raise Refused(413, f"too many files: at most {self.limits.max_files} per request")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        part.data += data[start:end]
        if part.filename is None and len(part.data) > MULTIPART_OVERHEAD:
            raise Refused(413, "a form field is too large: send only the photos")
        if len(part.data) > self.limits.max_bytes:
            raise Refused(413, f"{part.filename}: file too large, more than {self.limits.max_bytes / 2**20:g} MB "
                               "(the limit per file)")


async def read_uploads(content_type: str | None, content_length: str | None, body: AsyncIterator[bytes],
                       limits: Limits) -> list[Upload]:
    """Every file part of a multipart/form-data body as an Upload (its base name, its bytes), in request order.

    413: a file over `max_bytes`, more than `max_files` files, or a body over `max_body`.
    422: not multipart, malformed, or no file at all. Text fields are ignored. Repeated names get " (2)", " (3)"
    so that every row of the results names one upload.
    """
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise Refused(422, "send the photos as multipart/form-data (one `files` part per photo)")
    too_large = (f"request too large: at most {limits.max_body / 2**20:.1f} MB in all ({limits.max_files} files of at "
                 f"most {limits.max_bytes / 2**20:g} MB each)")
    if content_length and content_length.isdigit() and int(content_length) > limits.max_body:
        raise Refused(413, too_large)
    collector = _Collector(limits)
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limits.max_body:
                raise Refused(413, too_large)
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise Refused(422, "malformed multipart/form-data body") from None
    files = [p for p in collector.parts if p.filename is not None]
    if not files:
        raise Refused(422, "no photo in the request: send one or more files")
    return _named(files)


def _named(files: list[_Part]) -> list[Upload]:
    """The uploads in request order, a repeated name made unique with " (2)", " (3)"."""
    seen: dict[str, int] = {}
    uploads = []
    for part in files:
        seen[part.filename] = seen.get(part.filename, 0) + 1
        name = part.filename if seen[part.filename] == 1 else f"{part.filename} ({seen[part.filename]})"
        uploads.append(Upload(name, bytes(part.data)))
    return uploads
