"""The `evaluate` stage: test metrics at a val-chosen threshold, breakdowns, robustness, baselines, plots, report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from realfake.core.atomic import write_json, write_parquet, write_text
from realfake.core.device import resolve_device
from realfake.core.stage_metrics import write_stage_metrics
from realfake.core.tables import markdown_table
from realfake.detector.checkpoint import to_model_input
from realfake.detector.fitness import fitness_of, warning_line
from realfake.detector.gradcam import grad_cam
from realfake.detector.packed import PackedSplit, load_split
from realfake.detector.scorer import Scorer
from realfake.evaluation.baselines import (
    AuditConfig,
    SpectralConfig,
    file_bytes,
    fit_audit,
    fit_spectral,
    score_audit,
    score_spectral,
    shortcut_verdict,
)
from realfake.evaluation.breakdowns import (
    BreakdownConfig,
    attach_metadata,
    breakdowns,
    disparity_sentence,
    side_by_side,
)
from realfake.evaluation.figures import cam_sheet, gallery, reliability_png
from realfake.evaluation.holdout import (  # noqa: F401 -- re-exported for cv and the tests
    held_out_lines,
    held_out_rates,
    held_out_rates_of,
    score_held_out,
    score_held_out_rates,
    score_split,
)
from realfake.evaluation.metrics import (
    binary_metrics,
    evaluate_scores,
    plot_records,
    to_jsonable,
)
from realfake.evaluation.robustness import DEFAULT_SPECS, robustness_table
from realfake.evaluation.verdicts import (
    coverage,
    operating_point_disparity,
    operating_point_report,
    verdict_lines,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HonestPair:
    """The two sources of the honest-pair figure: same size, compression and alignment, one real and one fake."""

    real: str = "ffhq"
    fake: str = "stylegan-140k"


@dataclass
class EvaluateConfig:
    """The `evaluate` params section (read with realfake.core.params.load_section)."""

    calibration_bins: int = 15
    curve_points: int = 200
    min_group: int = 20
    yaw_edges: tuple[float, ...] = (0, 15, 30, 45, 180)
    quality_quantiles: int = 4
    honest_pair: HonestPair = field(default_factory=HonestPair)
    robustness: tuple[str, ...] = DEFAULT_SPECS
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    batch_size: int = 256
    gallery: int = 8  # most confidently wrong test faces per error type
    threads: int = 2
    device: str = "auto"  # auto | cpu | cuda: where the detector scores (float32 everywhere)


def baselines(train: PackedSplit, test: PackedSplit, meta: pd.DataFrame, cfg: EvaluateConfig) -> dict[str, np.ndarray]:
    """Test scores of the spectral (Durall et al.) and file-level audit models, both trained on the train split."""
    spectral = fit_spectral(np.asarray(train.images[train.rows]), train.y, cfg.spectral)
    meta = meta.assign(bytes=file_bytes(meta)) if "bytes" not in meta else meta
    by_id = meta.set_index("face_id")
    audit = fit_audit(by_id.loc[train.meta["face_id"]], train.y, cfg.audit)
    return {"spectral": score_spectral(spectral, np.asarray(test.images[test.rows])),
            "audit": score_audit(audit, by_id.loc[test.meta["face_id"]])}


def cam_figure(scorer: Scorer, images: np.ndarray, frame: pd.DataFrame, threshold: float, n: int, path: Path) -> None:
    """Grad-CAM overlays for a few correct faces of each class and the first wrong ones."""
    correct = (frame["p_fake"] >= threshold) == (frame["y"] == 1)
    picks = pd.concat([frame[correct & (frame["y"] == y)].head(n // 2) for y in (0, 1)]
                      + [frame[~correct].head(n)])
    if picks.empty:
        return
    idx = picks.index.to_numpy()
    x = to_model_input(torch.from_numpy(np.ascontiguousarray(images[idx])), scorer.pre, channels_last=False,
                       device=scorer.device)
    cam_sheet(images, grad_cam(scorer.model, x), picks, correct, path)


def scores_table(test: pd.DataFrame, holdout: pd.DataFrame | None) -> pd.DataFrame:
    """reports/scores.parquet: one row per scored face (test and held-out), for error analysis and score fusion."""
    parts = [test.assign(split="test", holdout_for=pd.array([pd.NA] * len(test), dtype="string"))]
    if holdout is not None:
        parts.append(holdout.assign(split="holdout"))
    frame = pd.concat(parts, ignore_index=True)
    cols = ["split", "face_id", "source", "label", "y", "p_fake", "p_spectral", "p_audit", "holdout_for"]
    frame = frame.reindex(columns=cols)
    frame["y"] = frame["y"].astype("int8")
    for c in ("split", "face_id", "source", "label", "holdout_for"):
        frame[c] = frame[c].astype("string")
    return frame


@dataclass
class Evaluation:
    """What the evaluation scored (score_evaluation): the report, and what the files and figures are drawn from."""

    report: dict[str, Any]
    breakdowns: dict[str, Any]
    per_source: pd.DataFrame  # the CNN beside the non-face baselines, per source
    robust: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]  # the shortcut audit
    scored: pd.DataFrame  # the test faces with every model's score
    held: pd.DataFrame | None  # the held-out sources' faces and scores
    test_images: np.ndarray
    y_test: np.ndarray
    p_test: np.ndarray
    scorer: Scorer


def run_evaluate(cfg: EvaluateConfig, model_path: Path, packed_dir: Path, metadata_path: Path, size: int,
                 out: dict[str, Path], splits_path: Path | None = None) -> dict[str, Any]:
    """Score val/test and compute every metric and breakdown, then write metrics, plots and the report; the report.

    splits_path (data/splits.parquet) gives the faces the sample placed, for the view's coverage per source.
    """
    torch.set_num_threads(cfg.threads)
    evaluation = score_evaluation(cfg, model_path, packed_dir, metadata_path, size, splits_path)
    write_evaluation(evaluation, cfg, out)
    return evaluation.report


def score_evaluation(cfg: EvaluateConfig, model_path: Path, packed_dir: Path, metadata_path: Path, size: int,
                     splits_path: Path | None = None) -> Evaluation:
    """Score val/test with the model and the baselines; every metric, breakdown and verdict, nothing written."""
    scorer = Scorer(model_path, resolve_device(cfg.device, "evaluate.device"))
    splits = {name: load_split(packed_dir, name, size) for name in ("train", "val", "test")}
    val, test = splits["val"], splits["test"]
    p_val, p_test = score_split(scorer, val, cfg.batch_size), score_split(scorer, test, cfg.batch_size)
    core = evaluate_scores(test.y, p_test, val.y, p_val, cfg.calibration_bins)
    threshold = core["threshold"]["threshold"]

    meta = pd.read_parquet(metadata_path)
    scored = test.meta[["face_id", "source", "label"]].assign(y=test.y, p_fake=p_test)
    extra = baselines(splits["train"], test, meta, cfg)
    scored = scored.assign(p_spectral=extra["spectral"], p_audit=extra["audit"])
    joined, missing = attach_metadata(scored, meta)
    bd_cfg = BreakdownConfig(yaw_edges=cfg.yaw_edges, quality_quantiles=cfg.quality_quantiles,
                             min_group=cfg.min_group, honest_real=cfg.honest_pair.real,
                             honest_fake=cfg.honest_pair.fake)
    bd = breakdowns(joined, threshold, bd_cfg)
    spectral_t = 0.5
    per_source = side_by_side(joined, {"cnn": ("p_fake", threshold), "spectral": ("p_spectral", spectral_t),
                                       "audit": ("p_audit", 0.5)})
    verdicts = [shortcut_verdict(test.y, p_test, extra[k], name, cfg.audit.margin, sees)
                for k, name, sees in (("audit", "file-level audit model", "no face pixels"),
                                      ("spectral", "spectral baseline", "only the crop's power spectrum"))]
    test_images = np.asarray(test.images[test.rows])
    robust = robustness_table(test_images, test.y, scorer, cfg.robustness, threshold, cfg.batch_size)
    held = score_held_out(scorer, packed_dir, size, cfg.batch_size)

    verdict = operating_point_report(scorer.operating_point, scored, held, cfg.calibration_bins)
    verdict["disparity"] = operating_point_disparity(scorer.operating_point, joined, bd_cfg)
    covered = coverage(splits_path, scored, held) if splits_path is not None else {}
    report = {
        **core,
        "operating_point": verdict,
        "coverage": covered,
        "holdout": held_out_rates_of(held, threshold),
        "n": {"val": len(val), "test": len(test), "test_without_metadata": missing},
        "honest_pair": bd["honest_pair"],
        "baselines": {"spectral": binary_metrics(test.y, extra["spectral"], spectral_t),
                      "audit": binary_metrics(test.y, extra["audit"], 0.5)},
        "robustness": {r["transform"]: {"roc_auc": r["roc_auc"], "accuracy": r["accuracy"]} for r in robust},
        "disparity": {k: v["disparity"] for k, v in bd["demographics"].items()},
        "per_source": {r["source"]: {k: r[k] for k in ("n", "accuracy", "fpr", "fnr")} for r in bd["per_source"]},
        "fitness": fitness_of(scorer.checkpoint),  # the checkpoint's own verdict: a demo model says so in the report
    }
    return Evaluation(report, bd, per_source, robust, verdicts, scored, held, test_images, test.y, p_test, scorer)


def write_evaluation(ev: Evaluation, cfg: EvaluateConfig, out: dict[str, Path]) -> None:
    """Write what score_evaluation found: metrics, breakdowns, the scores table, plots and reports/evaluate.md."""
    report, bd, threshold = ev.report, ev.breakdowns, ev.report["threshold"]["threshold"]
    write_stage_metrics(out["metrics"], headline(report), to_jsonable(report), out["details"])
    write_json(out["breakdowns"], to_jsonable({**bd, "shortcut_audit": ev.verdicts,
                                               "per_source_models": ev.per_source.to_dict(orient="records")}))
    write_parquet(scores_table(ev.scored, ev.held), out["scores"])
    plots = plot_records(ev.y_test, ev.p_test, threshold, cfg.calibration_bins, cfg.curve_points)
    plots["robustness"] = [{"transform": r["transform"], "roc_auc": r["roc_auc"]} for r in ev.robust]
    for name, records in plots.items():
        write_json(out["plots"] / f"{name}.json", to_jsonable(records))
    reliability_png(plots["calibration"], cfg.calibration_bins, report["ece"], out["plots"] / "calibration.png")
    frame = ev.scored.reset_index(drop=True)
    gallery(ev.test_images, frame, threshold, cfg.gallery, out["plots"] / "errors.png")
    cam_figure(ev.scorer, ev.test_images, frame, threshold, cfg.gallery, out["plots"] / "gradcam.png")
    write_text(out["report"], render_report(report, bd, ev.per_source, ev.robust, ev.verdicts)
               + "\n".join(["", *verdict_lines(report["operating_point"], report["coverage"])]))
    log.info("test AUC %.4f, accuracy %.4f at threshold %.3f; honest pair AUC %s", report["at_threshold"]["roc_auc"],
             report["at_threshold"]["accuracy"], threshold, bd["honest_pair"].get("pair_auc"))


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """metrics/evaluate.json: the test numbers experiments are compared by (the rest stays in reports/evaluate.json).

    Few and short on purpose: `dvc exp show --only-changed` after a model experiment must fit 200 columns.
    """
    m = report["at_threshold"]
    return {
        "auc": m["roc_auc"], "acc": m["accuracy"], "f1": m["f1"], "mcc": m["mcc"], "ap": m["average_precision"],
        "ece": report["ece"], "pair_auc": report["honest_pair"].get("pair_auc"),
        "heldout_real": (report.get("holdout") or {}).get("real_called_real"),
        # held-out reals called fake at the operating point: the false alarms a user meets (recall: the report)
        "heldout_fpr": (report["operating_point"].get("held_out_real") or {}).get("fpr"),
        "audit_auc": report["baselines"]["audit"]["roc_auc"], "spectral_auc": report["baselines"]["spectral"]["roc_auc"],
    }


def render_report(report: dict, bd: dict, per_source: pd.DataFrame, robust: list[dict], verdicts: list[dict]) -> str:
    """reports/evaluate.md: the headline, the shortcut audit, and every breakdown as a table."""
    m, h = report["at_threshold"], bd["honest_pair"]
    demo = warning_line(report.get("fitness") or {"fit": True})
    lines = [
        "# Evaluation report", "",
        *([f"> **Demo model, not a detector.** The checkpoint says: {demo}. Its numbers below show the pipeline "
           "works, not how well real and generated faces can be told apart.", ""] if demo else []),
        f"Test faces: {report['n']['test']}; threshold {report['threshold']['threshold']:.3f} chosen on val "
        f"({report['threshold'].get('rule', '')}).", "",
        markdown_table([{"metric": k, "at threshold": m.get(k), "at 0.5": report["at_0_5"].get(k)}
                        for k in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc", "roc_auc",
                                  "average_precision")]),
        f"Expected calibration error: {report['ece']:.4f}", "",
        "## Shortcut audit", "", *[f"- {v['text']}" for v in verdicts], "",
        "## Honest pair (same size, compression and alignment: only generation tells them apart)", "",
        markdown_table([{k: v for k, v in h.items() if not isinstance(v, list)}]),
        "## Per source: CNN beside the non-face baselines", "", markdown_table(per_source),
        "## Robustness (test AUC under damage)", "", markdown_table(robust),
        *held_out_lines(report.get("holdout") or {}),
    ]
    for attr, data in bd["demographics"].items():
        lines += [f"## By {attr}", "", markdown_table(data["groups"]), disparity_sentence(data["disparity"]), ""]
    for name, rows in bd["bins"].items():
        lines += [f"## By {name} bin", "", markdown_table(rows)]
    lines += ["![reliability diagram](../plots/evaluate/calibration.png)", "",
              "![most confidently wrong](../plots/evaluate/errors.png)", "",
              "![Grad-CAM](../plots/evaluate/gradcam.png)", ""]
    return "\n".join(lines)
