"""Sources never trained on (the holdout split): per source the share called right and a fake source's AUC."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realfake.core.tables import markdown_table
from realfake.detector.packed import PackedSplit, load_split
from realfake.detector.scorer import Scorer, score_in_batches
from realfake.evaluation.metrics import binary_metrics

log = logging.getLogger(__name__)


def score_split(scorer: Scorer, split: PackedSplit, batch_size: int) -> np.ndarray:
    """p_fake for every kept row of a packed split, in order."""
    return score_in_batches(scorer, split.images, batch_size, rows=split.rows)


def held_out_rates(p_fake: np.ndarray, y: np.ndarray, source: np.ndarray, holdout_for: np.ndarray,
                  threshold: float) -> dict[str, Any]:
    """Per held-out source: n, share called right, AUC against its matched faces; pooled real and fake summaries.

    A source's faces are the rows counting for it (`holdout_for`) of its own class; rows counting for it of the
    other class are its matched faces (the random reals drawn for a fake source). `real_called_real` pools the faces
    of every held-out real source; `fake_auc_mean` averages the held-out fake sources' AUCs.
    """
    p, y = np.asarray(p_fake, dtype=np.float64), np.asarray(y).astype(np.int8)
    source, owner = np.asarray(source).astype(str), np.asarray(holdout_for).astype(str)
    called_fake = p >= threshold
    out: dict[str, Any] = {"n": int(p.size)}
    real_right, fake_aucs = [], []
    for name in sorted(set(owner.tolist())):
        mine = owner == name
        own_labels = y[mine & (source == name)]
        is_fake = bool(own_labels.mean() > 0.5) if own_labels.size else bool(y[mine].mean() > 0.5)
        own, matched = mine & (y == is_fake), mine & (y != is_fake)
        right = called_fake[own] == is_fake
        entry = {"n": int(own.sum()), "called_right": float(right.mean()) if right.size else float("nan")}
        if matched.any():
            other = "real" if is_fake else "fake"
            entry[f"n_matched_{other}s"] = int(matched.sum())
            entry[f"matched_{other}s_called_{other}"] = float((called_fake[matched] != is_fake).mean())
            entry["auc"] = binary_metrics(y[mine], p[mine], threshold)["roc_auc"]
        if is_fake:
            fake_aucs.append(entry.get("auc", float("nan")))
        else:
            real_right.append(right)
        out[name] = entry
    if real_right:
        out["real_called_real"] = float(np.concatenate(real_right).mean())
    finite = [a for a in fake_aucs if np.isfinite(a)]
    if fake_aucs:
        out["fake_auc_mean"] = float(np.mean(finite)) if finite else float("nan")
    return out


def score_held_out(scorer: Scorer, packed_dir: Path, size: int, batch: int) -> pd.DataFrame | None:
    """p_fake for every face of the held-out split (sources never trained on), or None when nothing was held out."""
    if not (packed_dir / "holdout.npy").exists():
        return None
    split = load_split(packed_dir, "holdout", size)
    if len(split) == 0:
        return None
    if "holdout_for" not in split.meta or split.meta["holdout_for"].isna().any():
        log.warning("%s/holdout.parquet lacks holdout_for (packed by older code): re-run the sample stage", packed_dir)
        return None
    return split.meta[["face_id", "source", "label", "holdout_for"]].assign(
        y=split.y, p_fake=score_split(scorer, split, batch))


def score_held_out_rates(scorer: Scorer, packed_dir: Path, size: int, threshold: float, batch: int) -> dict[str, Any]:
    """Sources never trained on: per held-out source the share called right, and a fake source's AUC (held_out_rates)."""
    return held_out_rates_of(score_held_out(scorer, packed_dir, size, batch), threshold)


def held_out_rates_of(frame: pd.DataFrame | None, threshold: float) -> dict[str, Any]:
    """held_out_rates of a score_held_out frame ({} when nothing was held out)."""
    if frame is None:
        return {}
    return held_out_rates(frame["p_fake"].to_numpy(), frame["y"].to_numpy(), frame["source"].to_numpy(),
                         frame["holdout_for"].to_numpy(), threshold)


def held_out_lines(holdout: dict[str, Any]) -> list[str]:
    """The report lines on the held-out sources (none when nothing was held out)."""
    rows = [{"held-out source": name, **entry} for name, entry in holdout.items() if isinstance(entry, dict)]
    if not rows:
        return []
    columns = ["held-out source", "n", "called_right", "auc", "n_matched_reals", "matched_reals_called_real"]
    columns = [c for c in dict.fromkeys(columns + [c for row in rows for c in row]) if any(c in r for r in rows)]
    summary = [f"{k}: {holdout[k]:.4f}" for k in ("real_called_real", "fake_auc_mean")
               if isinstance(holdout.get(k), float) and np.isfinite(holdout[k])]
    return ["## Held-out sources (never trained on)", "",
            "called_right: share of a source's faces on the right side of the threshold (a real source: called "
            "real); auc: against the random real faces held out with a fake source.", "",
            markdown_table(rows, columns), *([f"Pooled: {'; '.join(summary)}", ""] if summary else [])]
