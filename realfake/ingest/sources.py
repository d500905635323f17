"""The source registry in params.yaml and its resolution for the active data profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.sources import source_spec, source_watermark
from realfake.core.vocab import KINDS, LABELS
from realfake.core.watermark import Watermark
from realfake.ingest.config import DataConfig

LABEL_PARSERS = ("ffhq-features-json", "lfw-gender-lists", "utkface-filename", "folder-names", "folder-gender",
                 "dfdc-metadata", "pollinations-prompt", None)
GROUP_RULES = ("file", "lfw-person", "dfdc-original", "ffhq-id", "unsplash-photographer")
PART_KEYS = ("uri", "sha256", "include", "label_files", "labels")
PROFILE_KEYS = (*PART_KEYS, "parts")
SOURCE_KEYS = ("label", "kind", "group", "profiles", "watermark", *PART_KEYS)


@dataclass(frozen=True)
class Part:
    """One archive (or directory) a source reads, and which of its files belong to the source."""

    uri: str
    sha256: str | None = None
    include: tuple[str, ...] = ("*",)
    label_files: tuple[str, ...] = ()
    labels: str | None = None


@dataclass(frozen=True)
class Source:
    """One source as the active profile sees it: the archives to fetch and how to read them."""

    name: str
    label: str
    kind: str | None
    parts: tuple[Part, ...] = ()  # empty: the source is not part of the active profile
    group: str = "file"
    profile: str = "sample"
    watermark: Watermark | None = None  # a visible mark no crop may read (realfake.watermark)

    @property
    def enabled(self) -> bool:
        """True when the active profile fetches this source."""
        return bool(self.parts)

    @property
    def uri(self) -> str | None:
        """The first (for most sources the only) archive's URI; None when disabled."""
        return self.parts[0].uri if self.parts else None

    @property
    def uris(self) -> tuple[str, ...]:
        """Every archive's URI, in reading order."""
        return tuple(p.uri for p in self.parts)


def resolve_source(name: str, spec: dict[str, Any], profile: str) -> Source:
    """Merge a source's common fields with its entry for `profile` (one archive or `parts:`) and validate them.

    A part inherits every field it does not set from the profile entry, which inherits from the source; so
    `ffhq` can read ffhq.zip with its features JSON and the real half of 140k-faces.zip with `labels: null`.
    """
    if not isinstance(spec, dict):
        raise UserError(f"sources.{name} must be a mapping")
    unknown = [key for key in spec if key not in SOURCE_KEYS]
    if unknown:
        raise UserError(f"sources.{name}: unknown key {unknown[0]!r}; known keys: {', '.join(SOURCE_KEYS)}")
    label = spec.get("label")
    if label not in LABELS:
        raise UserError(f"sources.{name}.label must be one of {LABELS}, got {label!r}")
    kind = spec.get("kind")
    if label == "real" and kind is not None:
        raise UserError(f"sources.{name}: a real source has no kind (got {kind!r})")
    if label == "fake" and kind not in KINDS:
        raise UserError(f"sources.{name}.kind must be one of {KINDS} for a fake source, got {kind!r}")
    group = spec.get("group") or "file"
    if group not in GROUP_RULES:
        raise UserError(f"sources.{name}.group must be one of {GROUP_RULES}, got {group!r}")
    entry = (spec.get("profiles") or {}).get(profile)
    parts: tuple[Part, ...] = ()
    if entry is not None:
        where = f"sources.{name}.profiles.{profile}"
        entry = _mapping(entry, where, PROFILE_KEYS)
        base = _merge({k: spec.get(k) for k in PART_KEYS}, entry)
        raw_parts = entry.get("parts")
        if raw_parts is None:
            parts = (_part(base, where),)
        else:
            if not isinstance(raw_parts, list) or not raw_parts:
                raise UserError(f"{where}.parts must be a non-empty list of {{uri, sha256, include, ...}}")
            parts = tuple(_part(_merge(base, _mapping(p, f"{where}.parts[{i}]", PART_KEYS)), f"{where}.parts[{i}]")
                          for i, p in enumerate(raw_parts))
    watermark = source_watermark({"sources": {name: spec}}, name)
    return Source(name=name, label=label, kind=kind, parts=parts, group=group, profile=profile, watermark=watermark)


def _mapping(entry: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A profile entry or part as a dict (a bare string is its URI); unknown keys are user errors."""
    if isinstance(entry, str):
        entry = {"uri": entry}
    if not isinstance(entry, dict):
        raise UserError(f"{where} must be a URI or a mapping")
    unknown = set(entry) - set(allowed)
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}")
    return entry


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`; an explicit `labels: null` switches the parser off, other nulls inherit."""
    merged = dict(base)
    merged.update({k: v for k, v in over.items() if k in PART_KEYS and (v is not None or k == "labels")})
    return merged


def _part(fields: dict[str, Any], where: str) -> Part:
    """Validate one part's merged fields."""
    if not fields.get("uri"):
        raise UserError(f"{where}: no uri")
    if fields.get("labels") not in LABEL_PARSERS:
        raise UserError(f"{where}: labels must be one of {LABEL_PARSERS}, got {fields.get('labels')!r}")
    for key in ("include", "label_files"):
        value = fields.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise UserError(f"{where}.{key} must be a list of glob strings, got {value!r}")
    return Part(uri=str(fields["uri"]), sha256=fields.get("sha256"), include=tuple(fields.get("include") or ("*",)),
                label_files=tuple(fields.get("label_files") or ()), labels=fields.get("labels"))


def active_profile(params: dict[str, Any]) -> str:
    """The data profile named in params (`data.profile`), validated against `data.profiles`."""
    return load_section(DataConfig, params, "data").profile


def load_source(params: dict[str, Any], name: str) -> Source:
    """Resolve source `name` from params for the active profile."""
    return resolve_source(name, source_spec(params, name), active_profile(params))
