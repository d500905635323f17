"""Would a two-scale input help? Late fusion of a context run's and a native run's test scores on their common faces.

Usage: python fusion.py CONTEXT_RUN NATIVE_RUN [...pairs]; prints pair AUC and test AUC of each and of the mean logit.
"""
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def heldout_auc(a: pd.DataFrame, b: pd.DataFrame, fakes: pd.DataFrame, col: str) -> float:
    """Held-out ciplab-real faces (both runs scored them) against the common test fakes, threshold-free."""
    h = a.query("split == 'holdout' and source == 'ciplab-real'").merge(
        b.query("split == 'holdout'")[["face_id", "p_fake"]], on="face_id", suffixes=("_ctx", "_nat"))
    h["p_fused"] = 1 / (1 + np.exp(-(logit(h.p_fake_ctx) + logit(h.p_fake_nat)) / 2))
    return roc_auc_score([0] * len(h) + [1] * len(fakes), list(h[col]) + list(fakes[col]))


args = sys.argv[1:]
for ctx_run, nat_run in zip(args[::2], args[1::2], strict=True):
    a_all, b_all = pd.read_parquet(f"{ctx_run}/reports/scores.parquet"), pd.read_parquet(f"{nat_run}/reports/scores.parquet")
    a, b = a_all.query("split == 'test'"), b_all.query("split == 'test'")
    m = a.merge(b[["face_id", "p_fake"]], on="face_id", suffixes=("_ctx", "_nat"))
    m["p_fused"] = 1 / (1 + np.exp(-(logit(m.p_fake_ctx) + logit(m.p_fake_nat)) / 2))
    pair = m[m.source.isin(["ffhq", "stylegan-140k"])]
    out = {k: (roc_auc_score(m.y, m[k]), roc_auc_score(pair.y, pair[k])) for k in ("p_fake_ctx", "p_fake_nat", "p_fused")}
    held = {k: heldout_auc(a_all, b_all, m[m.y == 1], k) for k in out}
    print(f"{ctx_run.split('/')[-1]} + {nat_run.split('/')[-1]}: {len(m)} common test faces ({len(pair)} pair); "
          + "; ".join(f"{k[2:]}: test {t:.3f}, pair {p:.3f}, ciplab-real vs fakes {held[k]:.3f}" for k, (t, p) in out.items())
          + f"; score correlation {np.corrcoef(logit(m.p_fake_ctx), logit(m.p_fake_nat))[0, 1]:.2f}")
