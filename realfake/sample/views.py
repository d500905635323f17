"""Which pixels a split packs (params `sample.view`): the splits are drawn first and never depend on the view.

aligned packs the resize stage's images (today, byte for byte); context and native pack the crops stage's views
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


def view_rows(rows: pd.DataFrame, view: str, crops_root: Path = Path("data/crops"),
              crops: pd.DataFrame | None = None) -> ViewRows:
    """`rows` (a split, in packing order) with `path` pointing at the view's image; rejected faces left out."""
    if view == "aligned":
        return ViewRows(rows.assign(path=rows["resized_path"]))
    if crops is None:
        crops = crops_table(crops_root, sorted(rows["source"].astype(str).unique()))
    cols = crops[["face_id", "source", f"{view}_status", f"{view}_reason", f"{view}_path"]]
    joined = rows[["face_id", "source"]].astype(str).merge(cols.astype({"face_id": str, "source": str}),
                                                           on=["face_id", "source"], how="left")
    joined.index = rows.index
    status = joined[f"{view}_status"].fillna("missing")
    kept = status == "kept"
    reasons = joined.loc[~kept, f"{view}_reason"].where(status[~kept] != "missing", "not_in_crops_table")
    paths = [(crops_root / s / p).as_posix() for s, p in zip(joined.loc[kept, "source"], joined.loc[kept, f"{view}_path"],
                                                             strict=True)]
    counts = reasons.fillna("unknown").astype(str).value_counts()
    return ViewRows(rows[kept.to_numpy()].assign(path=paths), {k: int(v) for k, v in counts.items()})
