"""The shared vocabularies: labels, generator kinds, demographic classes, age groups."""

from __future__ import annotations

import pandas as pd

GENDERS = ("male", "female")
RACE_GROUPS = ("white", "black", "asian", "indian", "others")  # UTKFace's five classes

# generated-faces folder ethnicities onto UTKFace races. UTKFace defines "others" as "like Hispanic, Latino,
# Middle Eastern", so latino and middle-eastern go there.
ETHNICITY_TO_RACE = {"white": "white", "black": "black", "asian": "asian", "indian": "indian",
                     "latino": "others", "middle-eastern": "others", "others": "others"}
DEFAULT_AGE_BINS = (0, 13, 20, 30, 40, 50, 60, 120)
LABELS = ("real", "fake")
KINDS = ("gan", "diffusion", "faceswap", "photoshop")


def age_group_labels(bins: list[int] | tuple[int, ...]) -> list[str]:
    """Readable names of the age bins [b0, b1), …: '0-12', '13-19', …, '60+' for an open top bin."""
    names = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        names.append(f"{lo}+" if hi >= 120 else f"{lo}-{hi - 1}")
    return names


def age_to_group(ages: pd.Series, bins: list[int] | tuple[int, ...]) -> pd.Series:
    """Ages in years to age-group names (null where the age is null or out of the bins)."""
    cut = pd.cut(pd.to_numeric(ages, errors="coerce").astype("float64"), list(bins), right=False,
                 labels=age_group_labels(bins))
    return pd.Series(cut.astype("object"), index=ages.index).where(cut.notna(), None)
