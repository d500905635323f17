"""Reading params.yaml and locating the repo and the offline mirror."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from realfake.core.errors import UserError

MIRROR_ENV = "REALFAKE_MIRROR"


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Load params.yaml as a dict, with a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run from the repository root")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(params, dict):
        raise UserError(f"{path} must hold a mapping at the top level")
    return params


def find_mirror(start: str | os.PathLike | None = None) -> Path | None:
    """Locate the offline mirror: $REALFAKE_MIRROR, else the nearest `shared/mirror` beside an ancestor.

    Walking up matters for `dvc exp run --queue/--temp`, which runs in a copy under `.dvc/tmp/exps/…`
    where `../shared` does not exist but an ancestor's sibling still does.
    """
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path(start or os.getcwd()).resolve()
    for ancestor in [here, *here.parents]:
        candidate = ancestor / "shared" / "mirror"
        if candidate.is_dir():
            return candidate
    return None
