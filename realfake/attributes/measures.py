"""How good the attribute model is: held-out accuracy on the training source, agreement with other sources' labels."""

from __future__ import annotations

from typing import Any

import pandas as pd

from realfake.attributes.config import AttributesConfig
from realfake.core.vocab import ETHNICITY_TO_RACE, age_to_group


def accuracy(pred: pd.Series, truth: pd.Series) -> dict[str, Any]:
    """Accuracy of pred against truth over rows where both are known, with n and the majority-class baseline."""
    both = pred.notna() & truth.notna()
    n = int(both.sum())
    if n == 0:
        return {"n": 0, "accuracy": None, "majority_baseline": None}
    p, t = pred[both].astype(str), truth[both].astype(str)
    return {"n": n, "accuracy": round(float((p == t).mean()), 4),
            "majority_baseline": round(float(t.value_counts(normalize=True).iloc[0]), 4)}


def evaluate(frame: pd.DataFrame, cfg: AttributesConfig) -> dict[str, Any]:
    """Held-out accuracy on the training source and agreement with every other source's own labels.

    frame: one row per surviving face with source, attr_split, *_source labels and *_pred columns.
    """
    ages = age_to_group(frame["age_source"], cfg.age_bins)
    val = frame["attr_split"] == "val"
    held_out = {
        "gender": accuracy(frame.loc[val, "gender_pred"], frame.loc[val, "gender_source"]),
        "age_group": accuracy(frame.loc[val, "age_group_pred"], ages[val]),
        "race_group": accuracy(frame.loc[val, "race_group_pred"], frame.loc[val, "race_source"]),
    }
    agreement: dict[str, Any] = {}
    others = frame[frame["attr_split"] == "predict"]
    for source, rows in others.groupby("source", sort=True, observed=True):
        entry = {}
        if rows["gender_source"].notna().any():
            entry["gender"] = accuracy(rows["gender_pred"], rows["gender_source"])
        if rows["age_source"].notna().any():
            entry["age_group"] = accuracy(rows["age_group_pred"], ages[rows.index])
        if rows["race_source"].notna().any():
            entry["race_group"] = accuracy(rows["race_group_pred"], rows["race_source"])
        if rows["ethnicity_source"].notna().any():
            entry.update(ethnicity_agreement(rows))
        if entry:
            agreement[str(source)] = entry
    return {"held_out": held_out, "agreement": agreement}


def ethnicity_agreement(rows: pd.DataFrame) -> dict[str, Any]:
    """Folder ethnicity vs predicted race: on white/black/asian only, and with latino counted as UTKFace 'others'."""
    eth = rows["ethnicity_source"]
    direct = eth.isin(["white", "black", "asian"])
    mapped = eth.map(lambda e: ETHNICITY_TO_RACE.get(e) if isinstance(e, str) else None)
    latino = rows.loc[eth == "latino", "race_group_pred"].dropna().astype(str)
    return {
        "ethnicity_white_black_asian": accuracy(rows.loc[direct, "race_group_pred"], eth[direct]),
        "ethnicity_latino_as_others": accuracy(rows["race_group_pred"], mapped),
        "latino_predicted_as": {k: int(v) for k, v in latino.value_counts().sort_index().items()},
    }
