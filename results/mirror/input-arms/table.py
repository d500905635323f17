"""Issue-15 arms on the mirror: one Markdown table (mean ± std over seeds) + summary.json, from run folders.

Usage: python table_final.py OUT_DIR RUNS_DIR [RUNS_DIR ...]; a run is <arm>-s<seed> or <arm>-lo-<source>-s0.
"""
import json
import statistics as st
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

LOO = {"sg140k": "stylegan-140k", "tpdne": "tpdne", "poll": "pollinations", "pixa": "pixabay"}


def heldout_real_auc(run: Path) -> float | None:
    """Threshold-free: held-out ciplab-real faces against the test fakes (reports/scores.parquet)."""
    path = run / "reports" / "scores.parquet"
    if not path.exists():
        return None
    s = pd.read_parquet(path)
    real = s[(s["split"] == "holdout") & (s["source"] == "ciplab-real")]["p_fake"]
    fake = s[(s["split"] == "test") & (s["y"] == 1)]["p_fake"]
    if real.empty:
        return None
    return float(roc_auc_score([0] * len(real) + [1] * len(fake), list(real) + list(fake)))


def row_of(run: Path) -> dict:
    ev = json.loads((run / "metrics/evaluate.json").read_text())
    rep = json.loads((run / "reports/evaluate.json").read_text())
    log = next((p for p in (run / "logs/timings.jsonl", run / "timings.jsonl") if p.exists()), run / "none")
    timing = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    train_s = next((t["train_seconds"] for t in timing if t.get("stage") == "train"), None)
    hp, ho, rb = rep["honest_pair"], rep["holdout"], rep.get("robustness", {})
    row = {"test_auc": ev["auc"], "pair_auc": hp["pair_auc"], "ffhq_acc": hp["real_accuracy"],
           "stylegan_acc": hp["fake_accuracy"], "ciplab_real_called_real": ho.get("ciplab-real", {}).get("called_right"),
           "ciplab_real_vs_fakes_auc": heldout_real_auc(run), "audit_auc": ev["audit_auc"],
           "cnn_minus_audit": ev["auc"] - ev["audit_auc"], "n_test": rep["n"]["test"],
           **{f"rob_{k}": rb.get(k, {}).get("roc_auc") for k in ("jpeg:95", "jpeg:75", "jpeg:50", "downscale:0.5", "blur:1")},
           "train_min": train_s / 60 if train_s else None}
    for src in ("stylegan-140k", "tpdne", "pollinations", "pixabay"):
        if src in ho:
            row[f"left_out_{src}"] = ho[src].get("called_right") if src == "pixabay" else ho[src].get("auc")
    return row


out = Path(sys.argv[1])
rows = {}
for runs in sys.argv[2:]:
    # finished runs: an experiment folder's `done` marker, or a published folder (no run.json) with its metrics
    for d in sorted(p for p in Path(runs).iterdir() if (p / "done").exists() or (
            not (p / "run.json").exists() and (p / "metrics/evaluate.json").exists())):
        rows[d.name] = row_of(d)
out.mkdir(parents=True, exist_ok=True)
(out / "summary.json").write_text(json.dumps(rows, indent=1, sort_keys=True))
arms, loo = {}, {}
for name, row in rows.items():
    arm, _, seed = name.rpartition("-s")
    if "-lo-" in arm:
        base, _, src = arm.partition("-lo-")
        loo.setdefault(base, {})[LOO[src]] = row[f"left_out_{LOO[src]}"]
    elif seed.isdigit() and not arm.startswith("default"):  # default runs: see ../default
        arms.setdefault(arm, []).append(row)


def cell(values: list, digits: int = 3) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "—"
    return f"{st.mean(v):.{digits}f}" if len(v) == 1 else f"{st.mean(v):.{digits}f} ± {st.stdev(v):.{digits}f}"


cols = [("test AUC", "test_auc"), ("pair AUC", "pair_auc"), ("ffhq acc", "ffhq_acc"), ("stylegan-140k acc", "stylegan_acc"),
        ("ciplab-real called real", "ciplab_real_called_real"), ("ciplab-real vs test fakes AUC", "ciplab_real_vs_fakes_auc"),
        ("audit AUC", "audit_auc"), ("CNN − audit", "cnn_minus_audit"), ("JPEG 95", "rob_jpeg:95"), ("JPEG 75", "rob_jpeg:75"),
        ("JPEG 50", "rob_jpeg:50"), ("downscale 0.5", "rob_downscale:0.5"), ("blur 1", "rob_blur:1"), ("train min", "train_min")]
lines = ["| arm | seeds | " + " | ".join(c for c, _ in cols) + " | left out: stylegan-140k / tpdne / pollinations AUC | left out: pixabay called real |",
         "|---|---|" + "---|" * (len(cols) + 2)]
for arm, rs in arms.items():
    lo = loo.get(arm, {})
    lo_cell = " / ".join(f"{lo[s]:.3f}" if s in lo else "—" for s in ("stylegan-140k", "tpdne", "pollinations"))
    lines.append(f"| {arm} | {len(rs)} | " + " | ".join(cell([r.get(k) for r in rs], 1 if k == "train_min" else 3)
                                                        for _, k in cols) + f" | {lo_cell} | "
                 + (f"{lo['pixabay']:.3f}" if "pixabay" in lo else "—") + " |")
(out / "table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
