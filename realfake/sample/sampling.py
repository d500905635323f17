"""Balanced i.i.d. sampling given labels, and a group-aware stratified split with balanced val/test sets.

Sampling: every face belongs to a stratum (its values of the attribute columns named in params, e.g. gender ×
age group × race group). Within each stratum the same number of real and fake faces is drawn, uniformly at random
without replacement (seeded), namely the smaller of the two counts. The selected real and fake halves therefore
have identical distributions over strata, and within a stratum every face is equally likely to be chosen, so the
result is an i.i.d. sample from the data conditioned on the strata. Strata too small to fill (fewer than
`min_per_stratum` faces of either label) are merged into their parent stratum (the last attribute dropped), level
by level; what is still too small at the top level is dropped and reported.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass, field

import numpy as np
import pandas as pd

from realfake.sample.config import SampleConfig, SampleParamsError
from realfake.sample.quality_cells import add_bands, band_edges

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
UNKNOWN = "unknown"


@dataclass
class SampleResult:
    """The selection; every face not selected has a reason in `unselected`."""

    selected: pd.DataFrame
    unselected: pd.DataFrame
    dropped_strata: dict[str, int] = field(default_factory=dict)
    merged_strata: dict[str, str] = field(default_factory=dict)
    quality_edges: dict[str, list[float]] = field(default_factory=dict)  # band edges per measure, from the pool


def carve_holdout(df: pd.DataFrame, cfg: SampleConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off the held-out sources (whole split groups), plus matched random reals for each held-out fake source.

    The held-out faces never reach train/val/test. `held` gets a column `holdout_for`: the held-out source each
    face is evidence about (its own source, the held-out source sharing its split group, or the fake source its
    random real was matched to). A fake source's matched reals make an AUC possible; for a real source the figure
    is the share of its photos called real.
    """
    names = cfg.held_out
    owner = pd.Series(pd.NA, index=df.index, dtype="string")
    if not names:
        return df, df.iloc[:0].assign(holdout_for=owner.iloc[:0])
    source = df["source"].astype(str)
    present = set(source)
    missing = [name for name in names if name not in present]
    if missing:
        raise SampleParamsError(f"sample.holdout_sources/holdout_source: {missing} have no faces in the metadata "
                                f"(sources present: {', '.join(sorted(present))})")
    for name in names:
        owner[source == name] = name
    for name in names:  # the rest of a held-out source's split groups goes with it (no leak through a group)
        owner[owner.isna() & df["split_group"].isin(df.loc[source == name, "split_group"])] = name
    rng = np.random.default_rng(cfg.seed + 3)
    for name in names:
        if (df.loc[source == name, "label"] == "fake").all():
            owner = match_reals(df, owner, name, rng)
    held = owner.notna()
    log.info("held out: %s", owner[held].value_counts().to_dict())
    return df[~held], df[held].assign(holdout_for=owner[held])


def match_reals(df: pd.DataFrame, owner: pd.Series, name: str, rng: np.random.Generator) -> pd.Series:
    """Mark random whole all-real split groups, not yet held out, as `name`'s until its reals match its fakes."""
    mine = (owner == name).fillna(False)
    is_real = df["label"] == "real"
    need = int((mine & ~is_real).sum() - (mine & is_real).sum())
    groups = pd.DataFrame({"group": df["split_group"].to_numpy(), "free": owner.isna().to_numpy(),
                           "real": is_real.to_numpy()}).groupby("group", sort=False)[["free", "real"]].all()
    # only groups of free reals: a group holding a fake would slip unmatched fakes in as "matched reals"
    candidates = groups.index[groups["free"] & groups["real"]].to_numpy()
    rng.shuffle(candidates)
    sizes = df["split_group"].value_counts()
    chosen, total = [], 0
    for group in candidates:
        if total >= need:
            break
        chosen.append(group)
        total += int(sizes[group])
    if total < need:
        log.warning("holdout %s: only %d free real faces left to match %d of its fakes", name, total, need)
    owner = owner.copy()
    owner[df["split_group"].isin(chosen)] = name
    return owner


def stratum_keys(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """One string key per row, e.g. 'female|20-29|asian'; missing values become 'unknown'."""
    if not columns:
        return pd.Series("all", index=df.index)
    parts = [df[c].astype("string").fillna(UNKNOWN) for c in columns]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key


def merge_small_strata(df: pd.DataFrame, cfg: SampleConfig) -> tuple[pd.Series, dict[str, str], dict[str, int]]:
    """Assign each row a stratum, merging strata without `min_per_stratum` of both labels into their parents."""
    strata = cfg.all_strata
    final = pd.Series(pd.NA, index=df.index, dtype="string")
    merged: dict[str, str] = {}
    pending = df.index
    for level in range(len(strata), -1, -1):
        keys = stratum_keys(df.loc[pending], strata[:level])
        counts = pd.crosstab(keys, df.loc[pending, "label"]).reindex(columns=["real", "fake"], fill_value=0)
        big = counts.index[counts.min(axis=1) >= cfg.min_per_stratum]
        ok = keys.isin(big)
        final.loc[keys.index[ok]] = keys[ok]
        if level < len(strata):
            for fine, coarse in zip(stratum_keys(df.loc[keys.index[ok]], strata), keys[ok], strict=True):
                if fine != coarse:
                    merged[fine] = coarse
        pending = keys.index[~ok]
        if pending.empty:
            break
    dropped = stratum_keys(df.loc[pending], strata).value_counts().to_dict() if len(pending) else {}
    return final, merged, {str(k): int(v) for k, v in dropped.items()}


def cap_source_share(df: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Within each class, downsample any source above `share` of the class (uniformly at random)."""
    keep = []
    for _, cls in df.groupby("label", observed=True):
        counts = cls["source"].value_counts()
        others = len(cls) - counts
        # the largest n with n / (n + others) <= share
        limit = np.floor(share * others / (1 - share)).astype(int) if share < 1 else counts
        for source, rows in cls.groupby("source", observed=True):
            n = int(min(len(rows), max(limit[source], 1)))
            keep.append(rows.loc[rng.choice(rows.index, n, replace=False)])
    return pd.concat(keep).sort_index() if keep else df.iloc[:0]


def balanced_sample(df: pd.DataFrame, cfg: SampleConfig) -> SampleResult:
    """Draw equal numbers of real and fake faces per stratum, uniformly at random within each stratum."""
    rng = np.random.default_rng(cfg.seed)
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    reason[df["source"].isin(cfg.exclude_sources)] = "excluded-source"
    pool = df[reason.isna()]
    if cfg.max_source_share:
        capped = cap_source_share(pool, cfg.max_source_share, rng)
        reason[pool.index.difference(capped.index)] = "source-cap"
        pool = capped
    # quality bands from the pool the draw is made from; measures absent from the table are only an error
    # when they are strata (crafted tables and old metadata have none)
    measured = {m: b for m, b in cfg.quality_bins.items() if m in df or m in cfg.quality_strata}
    edges = band_edges(pool, measured)
    df, pool = add_bands(df, edges), add_bands(pool, edges)
    strata, merged, dropped = merge_small_strata(pool, cfg)
    reason[strata.index[strata.isna()]] = "stratum-too-small"
    pool = pool.assign(stratum=strata).dropna(subset=["stratum"])
    per_stratum = pool.groupby(["stratum", "label"], observed=True).size().unstack(fill_value=0)
    take = per_stratum.reindex(columns=["real", "fake"], fill_value=0).min(axis=1)
    if cfg.max_per_class and take.sum() > cfg.max_per_class:
        take = _scale_down(take, cfg.max_per_class)
    chosen = []
    for (stratum, _), rows in pool.groupby(["stratum", "label"], observed=True, sort=True):
        chosen.append(rng.choice(rows.index.to_numpy(), int(take.get(stratum, 0)), replace=False))
    picked = np.concatenate(chosen) if chosen else np.array([], dtype=int)
    reason[pool.index.difference(picked)] = "not-drawn"
    selected = pool.loc[picked].sort_values("face_id", kind="stable").reset_index(drop=True)
    unselected = df.loc[reason.notna()].assign(stratum=strata.reindex(reason.index[reason.notna()]),
                                              exclude_reason=reason[reason.notna()])
    return SampleResult(selected, unselected.reset_index(drop=True), dropped, merged, edges)


def _scale_down(take: pd.Series, total: int) -> pd.Series:
    """Shrink per-stratum counts proportionally to sum to `total` (largest remainders get the spare units)."""
    exact = take * total / take.sum()
    base = np.floor(exact).astype(int)
    spare = total - base.sum()
    order = (exact - base).sort_values(ascending=False).index[:spare]
    base[order] += 1
    return base


def tv_distance(df: pd.DataFrame, key: pd.Series) -> float:
    """Total-variation distance between the real and the fake distributions over `key`."""
    table = pd.crosstab(key, df["label"]).reindex(columns=["real", "fake"], fill_value=0)
    if table["real"].sum() == 0 or table["fake"].sum() == 0:
        return 1.0
    p = table["real"] / table["real"].sum()
    q = table["fake"] / table["fake"].sum()
    return float(0.5 * (p - q).abs().sum())


def assign_splits(df: pd.DataFrame, cfg: SampleConfig) -> pd.Series:
    """Split whole groups 70/15/15, stratified by label × stratum × source (systematic allocation, allocate_groups)."""
    bins = allocate_groups(df, astuple(cfg.fractions), np.random.default_rng(cfg.seed + 1))
    return bins.map(dict(enumerate(SPLITS))).astype("string")


def allocate_groups(df: pd.DataFrame, fractions, rng: np.random.Generator) -> pd.Series:
    """Each row's bin (0..len(fractions)-1), whole split groups at a time, stratified by label × stratum × source.

    Groups are ordered by their cell (label, stratum, source) and shuffled within it; each group goes to the bin
    whose share of its label lags furthest behind the target. Consecutive groups of one cell are thus spread over
    the bins in proportion, and the deficits carry over between small cells so no bin starves. Used for the
    train/val/test split and for cross-validation folds (realfake.cv).
    """
    groups = df.groupby("split_group", sort=True, observed=True)
    first = groups.first()
    info = pd.DataFrame({
        "cell": first["label"].astype(str) + "/" + first["stratum"].astype(str) + "/" + first["source"].astype(str),
        "size": groups.size(),
        "label": first["label"].astype(str),
        "draw": rng.random(len(first)),
    }).sort_values(["cell", "draw"])
    target = np.asarray(fractions, dtype=np.float64)
    counts = {lab: np.zeros(len(target)) for lab in ("real", "fake")}
    bin_of: dict[str, int] = {}
    for group, row in info.iterrows():
        have = counts[row["label"]]
        deficit = target * (have.sum() + row["size"]) - have
        choice = int(np.argmax(deficit))
        have[choice] += row["size"]
        bin_of[group] = choice
    return df["split_group"].map(bin_of).astype("int64")


def balance_eval_splits(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Make val and test hold exactly as many real as fake faces.

    Surplus faces of the larger class leave the split: a face that is its group's only member in that split moves
    to train (no leak possible); otherwise it is excluded from every split with reason `balance-trim`.
    """
    df = df.copy()
    df["exclude_reason"] = pd.Series(pd.NA, index=df.index, dtype="string")
    for split in ("val", "test"):
        rows = df[df["split"] == split]
        n = rows["label"].value_counts().reindex(["real", "fake"], fill_value=0)
        surplus = int(abs(n["real"] - n["fake"]))
        if surplus == 0:
            continue
        bigger = rows[rows["label"] == ("real" if n["real"] > n["fake"] else "fake")]
        group_size = rows["split_group"].map(rows["split_group"].value_counts())
        order = bigger.assign(alone=group_size[bigger.index] == 1, draw=rng.random(len(bigger)))
        trim = order.sort_values(["alone", "draw"], ascending=[False, True]).index[:surplus]
        alone = order.loc[trim, "alone"]
        df.loc[alone.index[alone], "split"] = "train"
        df.loc[alone.index[~alone], "split"] = pd.NA
        df.loc[alone.index[~alone], "exclude_reason"] = "balance-trim"
    return df


def leakage_counts(df: pd.DataFrame, columns: tuple[str, ...] = ("split_group", "group", "cluster_id")) -> dict:
    """For each grouping column present, how many of its values appear in more than one split (must be 0)."""
    placed = df[df["split"].notna()]
    out = {}
    for col in columns:
        if col in placed:
            spread = placed.dropna(subset=[col]).groupby(col, observed=True)["split"].nunique()
            out[col] = int((spread > 1).sum())
    out["face_id"] = int(placed["face_id"].duplicated().sum())
    return out


def check_split(df: pd.DataFrame, cfg: SampleConfig) -> None:
    """Fail loudly when a promised property of the split does not hold."""
    leaks = leakage_counts(df)
    if any(leaks.values()):
        raise AssertionError(f"group leakage across splits: {leaks}")
    for split in ("val", "test"):
        n = df.loc[df["split"] == split, "label"].value_counts()
        if n.get("real", 0) != n.get("fake", 0):
            raise AssertionError(f"{split} is not balanced: {n.to_dict()}")
    unplaced = df["split"].isna() & df["exclude_reason"].isna()
    if unplaced.any():
        raise AssertionError(f"{int(unplaced.sum())} selected faces have neither a split nor a reason")


def make_splits(selected: pd.DataFrame, cfg: SampleConfig) -> pd.DataFrame:
    """Assign every selected face to train/val/test (or exclude it with a reason) and check the result."""
    df = selected.assign(split=assign_splits(selected, cfg))
    df = balance_eval_splits(df, np.random.default_rng(cfg.seed + 2))
    check_split(df, cfg)
    return df
