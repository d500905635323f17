"""Lead's summary of the issue-15 input/architecture arms (runs/<arm>-s<seed>) -> Markdown + summary.json."""
import json
import statistics as st
import sys
from pathlib import Path

runs = Path(sys.argv[1])
rows = {}
for d in sorted(p for p in runs.iterdir() if (p / "done").exists()):
    ev = json.loads((d / "metrics/evaluate.json").read_text())
    rep = json.loads((d / "reports/evaluate.json").read_text())
    timing = [json.loads(x) for x in (d / "logs/timings.jsonl").read_text().splitlines()] if (d / "logs/timings.jsonl").exists() else []
    train_s = next((t["train_seconds"] for t in timing if t.get("stage") == "train"), None)
    hp, ho, rb = rep["honest_pair"], rep["holdout"], rep.get("robustness", {})
    row = {"test_auc": ev["auc"], "pair_auc": hp["pair_auc"], "ffhq_acc": hp["real_accuracy"],
           "stylegan_acc": hp["fake_accuracy"], "ciplab_real_called_real": ho.get("ciplab-real", {}).get("called_right"),
           "audit_auc": ev["audit_auc"], "cnn_minus_audit": round(ev["auc"] - ev["audit_auc"], 4),
           "spectral_auc": ev.get("spectral_auc"),
           "jpeg75": rb.get("jpeg:75", {}).get("roc_auc"), "jpeg50": rb.get("jpeg:50", {}).get("roc_auc"),
           "down0.5": rb.get("downscale:0.5", {}).get("roc_auc"), "blur1": rb.get("blur:1", {}).get("roc_auc"),
           "train_min": round(train_s / 60, 1) if train_s else None}
    for src in ("pixabay", "pollinations", "stylegan-140k", "tpdne"):
        if src in ho:
            row[f"{src}_left_out"] = ho[src].get("called_right") if src == "pixabay" else ho[src].get("auc")
    rows[d.name] = row
(runs / "summary.json").write_text(json.dumps(rows, indent=1, sort_keys=True))
arms = {}
for name, row in rows.items():
    arm, _, seed = name.rpartition("-s")
    if seed.isdigit():
        arms.setdefault(arm, []).append(row)
cols = ["test_auc", "pair_auc", "ffhq_acc", "stylegan_acc", "ciplab_real_called_real", "audit_auc", "cnn_minus_audit",
        "spectral_auc", "jpeg75", "jpeg50", "down0.5", "blur1", "train_min"]
print("| arm | runs | " + " | ".join(cols) + " |")
print("|---|---|" + "---|" * len(cols))
for arm, rs in arms.items():
    cells = []
    for c in cols:
        v = [r[c] for r in rs if r.get(c) is not None]
        cells.append("—" if not v else f"{st.mean(v):.3f}" if len(v) == 1 else f"{st.mean(v):.3f} ± {st.stdev(v):.3f}")
    print(f"| {arm} | {len(rs)} | " + " | ".join(cells) + " |")
for name, row in rows.items():
    lo = {k: round(v, 3) for k, v in row.items() if k.endswith("_left_out") and v is not None}
    if lo:
        print(f"- {name}: {lo}, test AUC {row['test_auc']}")
