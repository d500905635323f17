"""Which pixels a split packs (params `sample.view`): the splits are drawn first and never depend on the view.

aligned packs the resize stage's images byte for byte; context and native pack the crops stage's views
(data/crops/<source>/<view>/<face_id>.png). A face whose view was rejected there is left out of the arrays and
counted by reason, so every split reconciles in = packed + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from realfake.core.errors import UserError


@dataclass
class ViewRows:
    """A split's rows to pack (column `path`), and the faces left out with why."""

    rows: pd.DataFrame
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def report(self, n_in: int) -> dict:
        """in = packed + rejected, by reason."""
        rejected = sum(self.rejected_by_reason.values())
        assert n_in == len(self.rows) + rejected, (n_in, len(self.rows), self.rejected_by_reason)
        return {"in": n_in, "packed": len(self.rows), "rejected": rejected,
                "rejected_by_reason": dict(sorted(self.rejected_by_reason.items()))}


def crops_table(crops_root: Path, sources: list[str]) -> pd.DataFrame:
    """The crops stage's tables of `sources`, concatenated (face_id, source, the view columns)."""
    parts = []
    for source in sources:
        path = crops_root / f"{source}.parquet"
        if not path.is_file():
            raise UserError(f"{path} not found: run the crops stage for {source!r} (dvc repro crops) first")
        parts.append(pd.read_parquet(path))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["face_id", "source"])


def view_status(rows: pd.DataFrame, view: str, crops: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per row of `rows`: whether `view` was kept, the reason when not, and its path relative to data/crops."""
    cols = crops[["face_id", "source", f"{view}_status", f"{view}_reason", f"{view}_path"]]
    joined = rows[["face_id", "source"]].astype(str).merge(cols.astype({"face_id": str, "source": str}),
                                                           on=["face_id", "source"], how="left")
    joined.index = rows.index
    status = joined[f"{view}_status"].fillna("missing")
    reason = joined[f"{view}_reason"].where(status != "missing", "not_in_crops_table").fillna("unknown").astype(str)
    path = joined["source"] + "/" + joined[f"{view}_path"].fillna("")
    return status == "kept", reason, path


def view_rows(rows: pd.DataFrame, view: str, crops_root: Path = Path("data/crops"), require: tuple[str, ...] = (),
              crops: pd.DataFrame | None = None) -> ViewRows:
    """`rows` (a split, in packing order) with `path` pointing at the view's image; rejected faces left out.

    `require` (params `sample.require_views`) also leaves out faces whose other listed views were rejected, so arms
    with different views can be packed from the very same faces (reason `<view>:<its reason>`).
    """
    needed = [v for v in dict.fromkeys((view, *require)) if v != "aligned"]
    if needed and crops is None:
        crops = crops_table(crops_root, sorted(rows["source"].astype(str).unique()))
    keep = pd.Series(True, index=rows.index)
    reasons = pd.Series("", index=rows.index)
    for name in needed:
        kept, reason, _ = view_status(rows, name, crops)
        first = keep & ~kept  # a face is counted once, under the first view that lost it
        reasons[first] = reason[first] if name == view else f"{name}:" + reason[first]
        keep &= kept
    chosen = rows[keep.to_numpy()]
    if view == "aligned":
        paths = chosen["resized_path"]  # as it was, dtype included: the default packs byte-identical tables
    else:
        relative = view_status(chosen, view, crops)[2]
        paths = pd.Series([(crops_root / rel).as_posix() for rel in relative], index=chosen.index, dtype="string")
    counts = reasons[~keep].value_counts()
    return ViewRows(chosen.assign(path=paths), {k: int(v) for k, v in counts.items()})
