"""The source registry in params.yaml and its resolution for the active data profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from realfake.core.errors import UserError
from realfake.core.vocab import KINDS, LABELS

LABEL_PARSERS = ("ffhq-features-json", "lfw-gender-lists", "utkface-filename", "folder-names", "dfdc-metadata", None)
GROUP_RULES = ("file", "lfw-person", "dfdc-original", "ffhq-id")
PROFILE_KEYS = ("uri", "sha256", "include", "label_files", "labels")


@dataclass(frozen=True)
class Source:
    """One source as the active profile sees it: where to fetch it and how to read it."""

    name: str
    label: str
    kind: str | None
    uri: str | None  # None: the source is not part of the active profile
    sha256: str | None = None
    include: tuple[str, ...] = ("*",)
    label_files: tuple[str, ...] = ()
    labels: str | None = None
    group: str = "file"
    profile: str = "sample"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """True when the active profile fetches this source."""
        return self.uri is not None


def resolve_source(name: str, spec: dict[str, Any], profile: str) -> Source:
    """Merge a source's common fields with its entry for `profile` and validate them."""
    if not isinstance(spec, dict):
        raise UserError(f"sources.{name} must be a mapping")
    label = spec.get("label")
    if label not in LABELS:
        raise UserError(f"sources.{name}.label must be one of {LABELS}, got {label!r}")
    kind = spec.get("kind")
    if label == "real" and kind is not None:
        raise UserError(f"sources.{name}: a real source has no kind (got {kind!r})")
    if label == "fake" and kind not in KINDS:
        raise UserError(f"sources.{name}.kind must be one of {KINDS} for a fake source, got {kind!r}")
    profiles = spec.get("profiles") or {}
    entry = profiles.get(profile)
    merged = {k: spec.get(k) for k in PROFILE_KEYS}
    if entry is not None:
        if isinstance(entry, str):
            entry = {"uri": entry}
        unknown = set(entry) - set(PROFILE_KEYS)
        if unknown:
            raise UserError(f"sources.{name}.profiles.{profile}: unknown keys {sorted(unknown)}")
        merged.update({k: v for k, v in entry.items() if v is not None or k == "labels"})
    uri = merged["uri"] if entry is not None else None
    labels = merged["labels"]
    if labels not in LABEL_PARSERS:
        raise UserError(f"sources.{name}.labels must be one of {LABEL_PARSERS}, got {labels!r}")
    group = spec.get("group") or "file"
    if group not in GROUP_RULES:
        raise UserError(f"sources.{name}.group must be one of {GROUP_RULES}, got {group!r}")
    return Source(
        name=name,
        label=label,
        kind=kind,
        uri=uri,
        sha256=merged["sha256"],
        include=tuple(merged["include"] or ("*",)),
        label_files=tuple(merged["label_files"] or ()),
        labels=labels,
        group=group,
        profile=profile,
    )


def active_profile(params: dict[str, Any]) -> str:
    """The data profile named in params (`data.profile`), validated against `data.profiles`."""
    data = params.get("data") or {}
    profile = data.get("profile", "sample")
    known = data.get("profiles") or ["sample", "mirror", "kaggle"]
    if profile not in known:
        raise UserError(f"data.profile={profile!r} is not one of {known}")
    return profile


def load_source(params: dict[str, Any], name: str) -> Source:
    """Resolve source `name` from params for the active profile."""
    sources = params.get("sources") or {}
    if name not in sources:
        raise UserError(f"unknown source {name!r}; params.yaml has: {', '.join(sources) or 'none'}")
    return resolve_source(name, sources[name], active_profile(params))
