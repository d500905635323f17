"""Readers of the stage tables several stages share, and the Markdown table writer."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realfake.core.errors import UserError

log = logging.getLogger(__name__)


def read_faces(faces_dir: Path, sources: list[str]) -> pd.DataFrame:
    """Every row of the faces tables of `sources` (kept and rejected), raw columns included."""
    frames = []
    for name in sources:
        path = faces_dir / f"{name}.parquet"
        if not path.is_file():
            raise UserError(f"{path} not found: run the faces stage for {name!r} first")
        df = pd.read_parquet(path)
        if len(df) and "face_id" not in df:
            raise UserError(f"{path} has no face_id column: is it a faces-stage table?")
        frames.append(df)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["face_id", "source"])


def read_dedupe(path: Path) -> pd.DataFrame:
    """The dedupe table as face_id, source, group, cluster_id and `survived` (no drop reason)."""
    if not path.is_file():
        raise UserError(f"{path} not found: run the dedupe stage first")
    df = pd.read_parquet(path)
    reason_col = "drop_reason" if "drop_reason" in df else "reason" if "reason" in df else None
    if reason_col is not None:
        survived = df[reason_col].isna()
    elif "is_keeper" in df:
        survived = df["is_keeper"].astype(bool)
    else:
        raise UserError(f"{path} has neither drop_reason/reason nor is_keeper: is it a dedupe table?")
    out = pd.DataFrame({
        "face_id": df["face_id"].astype(str),
        "source": df["source"].astype(str) if "source" in df else None,
        "group": df["group"].astype("object") if "group" in df else None,
        "cluster_id": pd.to_numeric(df.get("cluster_id", pd.Series(-1, index=df.index)), errors="coerce")
        .fillna(-1).astype(np.int64),
        "survived": survived.to_numpy(bool),
    })
    return out


def surviving_faces(faces: pd.DataFrame, dedupe: pd.DataFrame) -> pd.DataFrame:
    """The faces rows that were kept by the faces stage and survived dedupe, in (source, face_id) order."""
    ids = set(dedupe.loc[dedupe["survived"], "face_id"])
    kept = faces[(faces["status"] == "kept") & faces["face_id"].isin(ids)] if len(faces) else faces
    missing = ids - set(kept["face_id"]) if len(kept) else ids
    if missing:
        log.warning("%d surviving dedupe ids have no kept faces row (stale tables?); they are skipped",
                    len(missing))
    return kept.sort_values(["source", "face_id"], kind="stable").reset_index(drop=True)


def _fmt(value: Any, digits: int) -> str:
    """One table cell: floats rounded, NaN/None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(records: list[dict[str, Any]] | pd.DataFrame, columns: list[str] | None = None,
                   digits: int = 3) -> str:
    """Render records (or a DataFrame) as a GitHub markdown table."""
    if isinstance(records, pd.DataFrame):
        records = records.to_dict(orient="records")
    if not records:
        return "_(no rows)_\n"
    columns = columns or list(records[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in records:
        lines.append("| " + " | ".join(_fmt(row.get(c), digits).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"
