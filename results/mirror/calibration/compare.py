"""Temperature against Platt scaling on every committed mirror run's test scores, cross-fitted: table.md, summary.json.

The runs' validation logits are not committed, so each run's test faces stand in: its test logits (recovered from
p_fake and the run's temperature) are split in two halves, stratified by label, 20 times; each calibration is fitted
on one half and its ECE measured on the other (and the other way round). Validation and test are drawn alike from
one sample (70/15/15), so this is what fitting on validation gives, less the noise of a half-sized fit.

    python results/mirror/calibration/compare.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root: run from anywhere

from realfake.core.tables import markdown_table  # noqa: E402
from realfake.detector.verdict import calibrate, expected_calibration_error, fit_platt, fit_temperature  # noqa: E402

REPEATS, BINS = 20, 15


def test_logits(run: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(y, logit) of the run's test faces, the temperature undone; None for a run without them."""
    scores, report = run / "reports" / "scores.parquet", run / "reports" / "evaluate.json"
    if not scores.exists() or not report.exists():
        return None
    op = json.loads(report.read_text()).get("operating_point", {})
    frame = pd.read_parquet(scores, columns=["split", "y", "p_fake"])
    frame = frame[frame["split"] == "test"]
    p = np.clip(frame["p_fake"].to_numpy(np.float64), 1e-7, 1 - 1e-7)
    logit = (np.log(p) - np.log1p(-p) - op.get("bias", 0.0)) * op.get("temperature", 1.0)
    return frame["y"].to_numpy(int), logit


def cross_fitted(y: np.ndarray, z: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean held-half ECE of no calibration, temperature and Platt scaling over REPEATS stratified 2-fold splits."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {"none": [], "temperature": [], "platt": []}
    for _ in range(REPEATS):
        half = np.zeros(y.size, dtype=bool)
        for label in (0, 1):
            rows = np.flatnonzero(y == label)
            half[rng.permutation(rows)[: rows.size // 2]] = True
        for fit, score in ((half, ~half), (~half, half)):
            out["none"].append(expected_calibration_error(y[score], calibrate(z[score], 1.0), BINS))
            t = fit_temperature(y[fit], z[fit])
            out["temperature"].append(expected_calibration_error(y[score], calibrate(z[score], t), BINS))
            t, b = fit_platt(y[fit], z[fit])
            out["platt"].append(expected_calibration_error(y[score], calibrate(z[score], t, b), BINS))
    return {k: float(np.mean(v)) for k, v in out.items()}


def arm(run: Path) -> str:
    """The recipe the run trained with, from its params.yaml: sbi, safe, hfonly, npr, resnet or default (any view)."""
    params = yaml.safe_load((run / "params.yaml").read_text()) if (run / "params.yaml").exists() else {}
    train, model = params.get("train") or {}, params.get("model") or {}
    if ((train.get("sbi") or {}).get("p") or 0) > 0:
        return "sbi"
    if ((train.get("augment") or {}).get("rotate_p") or 0) > 0:
        return "safe"
    if model.get("arch") in ("npr", "resnet"):
        return model["arch"]
    return "hfonly" if model.get("input") == "dwt_hh" else "default"


def main() -> None:
    rows = []
    for scores in sorted(HERE.parent.glob("**/reports/scores.parquet")):
        run = scores.parent.parent
        data = test_logits(run)
        if data is None:
            continue
        y, z = data
        t, b = fit_platt(y, z)
        rows.append({"run": str(run.relative_to(HERE.parent)), "arm": arm(run), "n_test": int(y.size),
                     "lean_b": round(b, 3), **{f"ece_{k}": round(v, 4) for k, v in cross_fitted(y, z).items()}})
    frame = pd.DataFrame(rows)
    frame["platt_minus_temperature"] = (frame["ece_platt"] - frame["ece_temperature"]).round(4)
    summary = {}
    for name, part in frame.groupby("arm", sort=True):
        summary[name] = {"runs": len(part), **{c: [round(float(part[c].mean()), 4), round(float(part[c].std()), 4)]
                                               for c in ("ece_none", "ece_temperature", "ece_platt",
                                                         "platt_minus_temperature", "lean_b")},
                         "platt_lower_in": int((part["platt_minus_temperature"] < 0).sum())}
    (HERE / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = [{"arm": k, "runs": v["runs"],
              **{name: f"{v[c][0]:.4f} ± {v[c][1]:.4f}" for name, c in (
                  ("test ECE, none", "ece_none"), ("temperature", "ece_temperature"), ("Platt", "ece_platt"),
                  ("Platt − temperature", "platt_minus_temperature"))},
              "Platt lower in": f"{v['platt_lower_in']} of {v['runs']}",
              "fitted bias b": f"{v['lean_b'][0]:+.2f} ± {v['lean_b'][1]:.2f}"} for k, v in summary.items()]
    text = "\n".join(["# Temperature against Platt scaling, cross-fitted on each run's test faces (compare.py)", "",
                      markdown_table(table), "", "## Per run", "", markdown_table(frame, digits=4), ""])
    (HERE / "table.md").write_text(text)
    print(markdown_table(table))


if __name__ == "__main__":
    main()
