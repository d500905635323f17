"""What every stage after download reads of params.yaml `sources:`: the source names and their declared watermarks.

The full parse of a source (profiles, parts, label parsers) is realfake.ingest.sources; it lives with the download
stage, so the stages that only need the names (dedupe, attributes, metadata, crops) do not depend on it.
"""

from __future__ import annotations

from typing import Any

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.watermark import Watermark


def source_specs(params: dict[str, Any]) -> dict[str, Any]:
    """params.yaml `sources:` as a mapping of source name to its (not yet validated) entry."""
    sources = params.get("sources") or {}
    if not isinstance(sources, dict):
        raise UserError("params.yaml `sources` must be a mapping of source names to their entries")
    return sources


def source_names(params: dict[str, Any]) -> list[str]:
    """Every source params.yaml declares, sorted: the sources the cross-source stages (dedupe, metadata...) read."""
    return sorted(source_specs(params))


def source_spec(params: dict[str, Any], name: str) -> Any:
    """Source `name`'s entry in params.yaml (a UserError naming the known sources when there is none)."""
    sources = source_specs(params)
    if name not in sources:
        raise UserError(f"unknown source {name!r}; params.yaml has: {', '.join(sources) or 'none'}")
    return sources[name]


def source_watermark(params: dict[str, Any], name: str) -> Watermark | None:
    """Source `name`'s declared visible mark (`sources.<name>.watermark`), checked, or None."""
    spec = source_spec(params, name)
    if not isinstance(spec, dict) or spec.get("watermark") is None:
        return None
    return load_section(Watermark, {"sources": {name: spec}}, f"sources.{name}.watermark")


def declared_watermarks(params: dict[str, Any]) -> dict[str, Watermark]:
    """Every source's declared visible mark, by source name (sources without one are left out)."""
    marks = {name: source_watermark(params, name) for name in source_names(params)}
    return {name: mark for name, mark in marks.items() if mark is not None}
