"""A new balanced draw over the faces already in the shards (`realfake resample`): the manifest, re-split."""

from __future__ import annotations

import pandas as pd

from realfake.core.errors import UserError
from realfake.sample.config import SampleConfig
from realfake.sample.stage import split_table


def resample_index(index: pd.DataFrame, metadata: pd.DataFrame, cfg: SampleConfig) -> pd.DataFrame:
    """A new balanced draw (sample stage rules, `cfg` a SampleConfig) over the faces in the shards, as a manifest.

    Same rows, shards and keys in the same order; only split, stratum and holdout_for change.
    """
    unknown = ~index["face_id"].isin(metadata["face_id"])
    if unknown.any():
        raise UserError(f"{int(unknown.sum())} faces of the manifest are not in the metadata "
                        f"(e.g. {index.loc[unknown, 'face_id'].iloc[0]}): use the metadata the shards came from")
    table, _ = split_table(metadata[metadata["face_id"].isin(index["face_id"])], cfg)
    drawn = table.set_index("face_id").loc[index["face_id"], ["split", "stratum", "holdout_for"]]
    return index.assign(**{c: drawn[c].astype("string").to_numpy() for c in drawn.columns})
