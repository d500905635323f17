"""The evaluation at the checkpoint's operating point (real / uncertain / fake) and the view's coverage per source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from realfake.core.tables import markdown_table
from realfake.detector.verdict import OperatingPoint, expected_calibration_error, rates
from realfake.evaluation.breakdowns import BreakdownConfig, disparity, group_rates

HELD_OUT_SPLIT = "holdout"
SCORED_SPLITS = ("test", HELD_OUT_SPLIT)


def uncalibrated(p: np.ndarray, temperature: float, bias: float = 0.0) -> np.ndarray:
    """The scores before calibration: sigmoid(T * (logit(p) - b))."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return expit(temperature * (np.log(p) - np.log1p(-p) - bias))


def per_source_rates(frame: pd.DataFrame, decided: np.ndarray) -> dict[str, dict[str, Any]]:
    """For each source: n and the shares of its faces called real / uncertain / fake."""
    out = {}
    for source, rows in frame.assign(decision=decided).astype({"source": str}).groupby("source", sort=True):
        label = str(rows["label"].iloc[0])
        share = rows["decision"].value_counts(normalize=True)
        out[str(source)] = {"label": label, "n": len(rows),
                            **{f"called_{d}": float(share.get(d, 0.0)) for d in ("real", "uncertain", "fake")}}
    return out


def operating_point_report(point: OperatingPoint | None, test: pd.DataFrame, held: pd.DataFrame | None,
                           bins: int) -> dict[str, Any]:
    """Test and held-out faces at the operating point: rates, per source, and the test ECE before/after calibration.

    `test` and `held` have columns source, label, y, p_fake (calibrated). Whether the validation false-alarm rate
    transfers shows in `held_out_fpr` per real source against `target_fpr`.
    """
    if point is None:
        return {"notes": ["the checkpoint predates the operating point: retrain to get one"]}
    y, p = test["y"].to_numpy(), test["p_fake"].to_numpy()
    decided = point.decide(p)
    out: dict[str, Any] = {
        **point.record(),
        "test": rates(y, decided),
        "test_ece_before": expected_calibration_error(y, uncalibrated(p, point.temperature, point.bias), bins),
        "test_ece_after": expected_calibration_error(y, p, bins),
        "test_per_source": per_source_rates(test, decided),
    }
    if held is not None and len(held):
        own = held[held["source"] == held["holdout_for"]]  # a source's own faces, not the reals matched to it
        held_decided = point.decide(own["p_fake"].to_numpy())
        out["held_out_per_source"] = per_source_rates(own, held_decided)
        reals = own["y"].to_numpy() == 0
        if reals.any():
            out["held_out_real"] = rates(np.zeros(int(reals.sum()), dtype=int), held_decided[reals])
            out["held_out_fpr"] = {s: v["called_fake"] for s, v in out["held_out_per_source"].items()
                                   if v["label"] == "real"}
    return out


def operating_point_disparity(point: OperatingPoint | None, joined: pd.DataFrame,
                              cfg: BreakdownConfig) -> dict[str, Any]:
    """Per demographic attribute, the worst/best group ratios of the verdict's errors: a real called `fake` (p from
    t_fake: the false alarm a user sees) and a fake not caught (below t_fake); `joined` is the test faces with metadata.
    """
    if point is None:
        return {}
    return {attr: disparity(group_rates(joined, attr, point.t_fake, cfg.cols), attr, cfg.min_group)
            for attr in cfg.cols.demographics if attr in joined.columns}


def coverage(splits_path: Path, test: pd.DataFrame, held: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Per source: faces the sample placed in test or held out, faces the view packed (scored), and the share."""
    splits = pd.read_parquet(splits_path, columns=["face_id", "source", "split"])
    placed = splits[splits["split"].isin(SCORED_SPLITS)].astype({"source": str}).groupby("source").size()
    scored_ids = pd.concat([test[["face_id", "source"]]] + ([held[["face_id", "source"]]] if held is not None else []))
    scored = scored_ids.drop_duplicates("face_id").astype({"source": str}).groupby("source").size()
    return {str(s): {"placed": int(n), "scored": int(scored.get(s, 0)), "coverage": float(scored.get(s, 0) / n)}
            for s, n in placed.sort_index().items()}


def _calibration(op: dict[str, Any]) -> str:
    """'temperature 1.230' or, for Platt scaling, 'temperature 1.230, bias -0.412'."""
    bias = op.get("bias", 0.0)
    return f"temperature {op['temperature']:.3f}" + (f", bias {bias:+.3f}" if bias else "")


def verdict_lines(report: dict[str, Any], coverage_by_source: dict[str, dict[str, Any]]) -> list[str]:
    """reports/evaluate.md: the operating point, what it does on test and held-out faces, and the coverage."""
    op = report
    if "t_fake" not in op:
        return ["## Operating point", "", *op.get("notes", []), ""]
    t, lines = op["test"], ["## Operating point (the decision `realfake predict` gives)", ""]
    band = (f"`uncertain` from {op['t_real']:.4f} up to {op['t_fake']:.4f}" if op["t_real"] < op["t_fake"]
            else "no uncertain band")
    lines += [f"Calibrated p(fake) ({_calibration(op)}; test ECE {op['test_ece_before']:.4f} before, "
              f"{op['test_ece_after']:.4f} after). `fake` from p = {op['t_fake']:.4f} (chosen for {op['target_fpr']:.0%} "
              f"of validation reals called fake), `real` below {op['t_real']:.4f}, {band}.", "",
              f"Test: {_pct(t['fpr'])} of real faces called fake, {_pct(t['real_called_uncertain'])} uncertain; "
              f"{_pct(t['recall'])} of fakes caught, {_pct(t['fake_called_uncertain'])} uncertain.", ""]
    lines += [f"In words: {in_words(op)}", ""]
    rows = [{"source": s, "split": "test", **v} for s, v in op["test_per_source"].items()]
    rows += [{"source": s, "split": "held out", **v} for s, v in op.get("held_out_per_source", {}).items()]
    lines += [markdown_table(rows, ["source", "split", "label", "n", "called_real", "called_uncertain", "called_fake"]), ""]
    fpr = {a: d["fpr"] for a, d in op.get("disparity", {}).items() if "max_group" in d.get("fpr", {})}
    if fpr:
        lines += ["Real faces called fake, worst / best group (groups of at least "
                  f"{next(iter(op['disparity'].values()))['min_group']} test faces): "
                  + "; ".join(f"{a} {d['ratio']:.2f} ({d['max_group']} {d['max']:.3f}, {d['min_group']} {d['min']:.3f})"
                              for a, d in fpr.items()) + ".", ""]
    cov = [{"source": s, **v} for s, v in coverage_by_source.items()]
    lines += ["## Coverage (test and held-out faces the view could score)", "",
              markdown_table(cov, ["source", "placed", "scored", "coverage"]), ""]
    return lines


def in_words(op: dict[str, Any]) -> str:
    """The operating point's effect as a user meets it: false alarms on unseen reals, fakes caught, known and not."""
    t = op["test"]
    held = op.get("held_out_per_source", {})
    reals = {s: v for s, v in held.items() if v["label"] == "real"}
    fakes = {s: v for s, v in held.items() if v["label"] == "fake"}
    parts = []
    if reals:
        n = sum(v["n"] for v in reals.values())
        called_fake = sum(v["called_fake"] * v["n"] for v in reals.values()) / n
        uncertain = sum(v["called_uncertain"] * v["n"] for v in reals.values()) / n
        parts.append(f"of {n:,} real photos from sources it never trained on ({', '.join(sorted(reals))}), "
                     f"{_pct(called_fake)} are called fake and {_pct(uncertain)} uncertain")
    parts.append(f"of real test photos from the training sources, {_pct(t['fpr'])} are called fake and "
                 f"{_pct(t['real_called_uncertain'])} uncertain")
    parts.append(f"{_pct(t['recall'])} of fakes from the training generators are caught "
                 f"({_pct(t['fake_called_uncertain'])} uncertain)")
    for source, v in sorted(fakes.items()):
        parts.append(f"{_pct(v['called_fake'])} of fakes from `{source}`, a generator it never trained on "
                     f"({_pct(v['called_uncertain'])} uncertain)")
    return "At the operating point, " + "; ".join(parts) + "."


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"

