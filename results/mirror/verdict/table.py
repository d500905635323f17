"""Issue-22 runs on the mirror: table.md (mean ± std over seeds) and summary.json, from the run folders beside it.

Usage: python results/mirror/verdict/table.py; a run folder is <arm>-s<seed> holding metrics/, reports/, params.yaml.
"""
import json
import statistics as st
from pathlib import Path

import yaml

HERE = Path(__file__).parent
GROUPS = ("age_group", "race_group", "skin_tone", "gender")


def row_of(run: Path) -> dict:
    """The run's verdict figures: coverage, the operating point on test and on every held-out source."""
    rep = json.loads((run / "reports/evaluate.json").read_text())
    members = yaml.safe_load((run / "params.yaml").read_text())["model"]["members"]
    # an ensemble joined from single-seed checkpoints (join.py) has no train report of its own
    train = json.loads((run / "reports/train.json").read_text()) if members == 1 else {}
    op = rep["operating_point"]
    cov = rep["coverage"]
    row = {"test_auc": rep["at_threshold"]["roc_auc"], "pair_auc": rep["honest_pair"]["pair_auc"],
           "val_auc": rep["fitness"]["val_auc"], "members": members,
           "temperature": op["temperature"], "t_real": op["t_real"], "t_fake": op["t_fake"],
           "ece_before": op.get("test_ece_before"), "ece_after": op.get("test_ece_after"),
           "coverage_min": min(c["coverage"] for c in cov.values()),
           "placed": sum(c["placed"] for c in cov.values()), "scored": sum(c["scored"] for c in cov.values()),
           "test_real_called_real": op["test"]["real_called_real"],
           "test_real_called_fake": op["test"]["real_called_fake"],
           "test_uncertain": op["test"]["uncertain"],
           "fake_recall": op["test"]["fake_called_fake"],
           "fake_called_real": op["test"]["fake_called_real"],
           "fake_called_uncertain": op["test"]["fake_called_uncertain"],
           "epochs_run": train.get("epochs_run"), "best_epoch": train.get("best_epoch")}
    wall = run / "wall.json"  # wall seconds of the stage commands on the shared 2-core machine
    if wall.exists():
        row["train_wall_min"] = json.loads(wall.read_text()).get("train_s", 0) / 60 or None
    for src, r in op["held_out_per_source"].items():
        for what in ("called_real", "called_uncertain", "called_fake"):
            row[f"held_{src}_{what}"] = r[what]
        row[f"held_{src}_n"] = r["n"]
    for src, r in op["test_per_source"].items():
        row[f"test_{src}_{'called_fake' if r['label'] == 'fake' else 'called_real'}"] = (
            r["called_fake"] if r["label"] == "fake" else r["called_real"])
    extra = run / "op_disparity.json"  # runs made before evaluate reported it (op_disparity.py)
    at_op = json.loads(extra.read_text()) if extra.exists() else op.get("disparity", {})
    for group in GROUPS:
        fpr = at_op.get(group, {}).get("fpr", {})
        # JSON keeps an infinite ratio (a group with no false alarm) as null beside the groups' rates
        row[f"fpr_ratio_{group}"] = float("inf") if fpr.get("ratio") is None and "max" in fpr else fpr.get("ratio")
    return row


def mean_std(values: list) -> str:
    values = [v for v in values if v is not None and not isinstance(v, list)]
    if not values:
        return "–"
    if any(v == float("inf") for v in values):  # a group without a false alarm: the ratio has no finite mean
        finite = [v for v in values if v != float("inf")]
        return f"inf in {len(values) - len(finite)} of {len(values)}" + (f"; {mean_std(finite)}" if finite else "")
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{st.mean(values):.3f} ± {st.stdev(values):.3f}"


def write_tables(here: Path, rows: dict[str, dict], order=None) -> None:
    """summary.json and table.md of these runs: a column per arm (<arm>-s<seed>), mean ± std over its seeds."""
    (here / "summary.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    arms: dict[str, list[dict]] = {}
    for name, row in sorted(rows.items(), key=order):
        arms.setdefault(name.rpartition("-s")[0], []).append(row)
    keys = sorted({k for r in rows.values() for k in r})
    lines = ["| figure | " + " | ".join(f"{a} (n={len(r)})" for a, r in arms.items()) + " |",
             "|---|" + "---|" * len(arms)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(mean_std([r.get(key) for r in rs]) for rs in arms.values()) + " |")
    (here / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    write_tables(HERE, {d.name: row_of(d) for d in sorted(HERE.iterdir()) if (d / "reports/evaluate.json").exists()})
