"""The view record (`view.json`): which view (sample.view) a folder of training images holds, its size and params.

The sample stage writes it beside the packed arrays and inside the shards; training copies it into the checkpoint so
`realfake predict` cuts new photos the same way. Folders without one hold the aligned view.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from realfake.core.errors import UserError

VIEW_FILE = "view.json"


def read_view_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The record in `folder` (a directory or an s3:// / fsspec location), None when it has none."""
    where = str(folder).rstrip("/") + "/" + VIEW_FILE
    try:
        if "://" in where:
            import fsspec

            with fsspec.open(where, "r") as fh:
                text = fh.read()
        else:
            text = Path(where).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"cannot read {where}: {exc}") from None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{where} is not valid JSON ({exc}): re-run the sample stage") from None
    if not isinstance(record, dict) or not isinstance(record.get("name"), str) or not isinstance(record.get("size"), int):
        raise UserError(f"{where} does not describe a view (a name and an integer size): re-run the sample stage")
    return record
