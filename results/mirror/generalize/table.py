"""Issue-23 arms on the mirror: table.md (mean ± std over seeds) and summary.json, from the run folders.

Usage: python results/mirror/generalize/table.py. A run folder is <arm>-s<seed> (or <arm>-lo-<source>-s<seed>, that
generator left out of training) holding metrics/, reports/ (with scores.parquet), params.yaml and wall.json; the
default's runs are read from ../verdict (d-s*, lo-pollinations-s0), where issue 22 measured them.
"""
import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).parent
VERDICT = HERE.parent / "verdict"
# the default's runs measured for issue 22, under this table's arm names
BORROWED = {"d": "default", "lo-pollinations": "default-lo-pollinations"}
ROBUST = ("jpeg:50", "downscale:0.5", "blur:2")


def within_auc(scores: pd.DataFrame, fake: str, real: str) -> float | None:
    """AUC of one fake source against the reals of its own collection (test fakes; test or held-out reals)."""
    f = scores[(scores.source == fake) & (scores.split == "test")].p_fake
    r = scores[(scores.source == real) & scores.split.isin(["test", "holdout"])].p_fake
    if f.empty or r.empty:
        return None
    return float(roc_auc_score([1] * len(f) + [0] * len(r), pd.concat([f, r])))


def row_of(run: Path) -> dict:
    """The figures issue 23 compares the arms on, from one run folder."""
    rep = json.loads((run / "reports/evaluate.json").read_text())
    members = yaml.safe_load((run / "params.yaml").read_text())["model"]["members"]
    # an ensemble joined from single-seed checkpoints (../verdict/join.py) has no train report of its own
    train = json.loads((run / "reports/train.json").read_text()) if members == 1 else {}
    scores = pd.read_parquet(run / "reports/scores.parquet")
    pair, op = rep["honest_pair"], rep["operating_point"]
    test_auc = rep["at_threshold"]["roc_auc"]
    row = {"test_auc": test_auc, "pair_auc": pair["pair_auc"],
           f"pair_{pair['real_source']}_accuracy": pair["real_accuracy"],
           f"pair_{pair['fake_source']}_accuracy": pair["fake_accuracy"],
           "ciplab-real_called_real": op["held_out_per_source"]["ciplab-real"]["called_real"],
           "test_fakes_caught": op["test"]["fake_called_fake"],
           "test_reals_called_fake": op["test"]["real_called_fake"],
           "faceswap_auc_vs_dfdc-real": within_auc(scores, "dfdc-faceswap", "dfdc-real"),
           "photoshop_auc_vs_ciplab-real": within_auc(scores, "ciplab-photoshop", "ciplab-real"),
           "cnn_minus_audit_auc": test_auc - rep["baselines"]["audit"]["roc_auc"],
           "epochs_run": train.get("epochs_run"), "best_epoch": train.get("best_epoch")}
    for kind in ROBUST:
        row[f"robust_{kind}_auc"] = rep["robustness"][kind]["roc_auc"]
    for src, held in rep["holdout"].items():
        if isinstance(held, dict) and "auc" in held:  # a generator left out of training
            row[f"left_out_{src}_auc"] = held["auc"]
            row[f"left_out_{src}_caught"] = op["held_out_per_source"][src]["called_fake"]
    sbi = train.get("data", {}).get("train", {}).get("pseudo_fakes", {}).get("sbi")
    if sbi:  # self-blended pseudo-fakes drawn over the whole run
        row["sbi_pseudo_fakes"] = sbi
    wall = run / "wall.json"  # wall seconds of the stage commands on the shared 2-core machine
    if wall.exists():
        seconds = json.loads(wall.read_text())
        row["train_wall_min"] = seconds.get("train_s", seconds.get("members_train_s", 0)) / 60 or None
    # NaN (e.g. the pair AUC when stylegan-140k is left out: one class left) is no figure
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def runs() -> dict[str, Path]:
    """Every run folder by its name (the default's from ../verdict renamed to this table's arm names)."""
    found = {d.name: d for d in sorted(HERE.iterdir()) if (d / "reports/evaluate.json").exists()}
    for d in sorted(VERDICT.iterdir()):
        arm, _, seed = d.name.rpartition("-s")
        if arm in BORROWED and (d / "reports/evaluate.json").exists():
            found[f"{BORROWED[arm]}-s{seed}"] = d
    return found


def verdict_table():
    """../verdict/table.py as a module: its mean ± std and its table writer."""
    spec = importlib.util.spec_from_file_location("verdict_table", VERDICT / "table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    # today's default first, then the arms by name
    verdict_table().write_tables(HERE, {name: row_of(path) for name, path in runs().items()},
                                 order=lambda kv: (not kv[0].startswith("default"), kv[0]))
