"""The `evaluate` stage: test metrics at a val-chosen threshold, breakdowns, robustness, baselines, plots, report."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from realfake.core.atomic import atomic_path, write_json, write_text
from realfake.core.tables import markdown_table
from realfake.detector.checkpoint import to_model_input
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
from realfake.evaluation.breakdowns import BreakdownConfig, attach_metadata, breakdowns, side_by_side
from realfake.evaluation.metrics import (
    binary_metrics,
    evaluate_scores,
    numeric_only,
    plot_records,
    to_jsonable,
)
from realfake.evaluation.robustness import robustness_table

log = logging.getLogger(__name__)


@dataclass
class EvaluateConfig:
    """The `evaluate` params section."""

    calibration_bins: int = 15
    curve_points: int = 200
    min_group: int = 20
    yaw_edges: tuple[float, ...] = (0, 15, 30, 45, 180)
    quality_quantiles: int = 4
    honest_pair: dict[str, str] = field(default_factory=lambda: {"real": "ffhq", "fake": "stylegan-140k"})
    robustness: tuple[str, ...] = ("jpeg:75", "jpeg:50", "jpeg:30", "blur:1", "blur:2", "downscale:0.5", "crop:0.9")
    spectral: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 256
    gallery: int = 8  # most confidently wrong test faces per error type
    threads: int = 2

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> EvaluateConfig:
        section = dict(section or {})
        for key in ("yaw_edges", "robustness"):
            if key in section:
                section[key] = tuple(section[key])
        return cls(**section)


def score_split(scorer: Scorer, split: PackedSplit, batch_size: int) -> np.ndarray:
    """p_fake for every kept row of a packed split, in order."""
    out = [scorer(split.images[split.rows[i:i + batch_size]]) for i in range(0, len(split), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


def baselines(train: PackedSplit, test: PackedSplit, meta: pd.DataFrame, cfg: EvaluateConfig) -> dict[str, np.ndarray]:
    """Test scores of the spectral (Durall et al.) and file-level audit models, both trained on the train split."""
    spectral = fit_spectral(np.asarray(train.images[train.rows]), train.y, SpectralConfig(**cfg.spectral))
    meta = meta.assign(bytes=file_bytes(meta)) if "bytes" not in meta else meta
    by_id = meta.set_index("face_id")
    audit = fit_audit(by_id.loc[train.meta["face_id"]], train.y, AuditConfig(**cfg.audit))
    return {"spectral": score_spectral(spectral, np.asarray(test.images[test.rows])),
            "audit": score_audit(audit, by_id.loc[test.meta["face_id"]])}


def gallery(images: np.ndarray, frame: pd.DataFrame, threshold: float, n: int, path: Path) -> None:
    """A PNG grid of the most confidently wrong test faces: false positives (top) and false negatives (bottom)."""
    wrong_fp = frame[(frame["y"] == 0) & (frame["p_fake"] >= threshold)].nlargest(n, "p_fake")
    wrong_fn = frame[(frame["y"] == 1) & (frame["p_fake"] < threshold)].nsmallest(n, "p_fake")
    size = images.shape[-1]
    sheet = Image.new("RGB", (max(n, 1) * size, 2 * (size + 28)), "white")
    draw = ImageDraw.Draw(sheet)
    for row_i, (title, rows) in enumerate((("real called fake", wrong_fp), ("fake called real", wrong_fn))):
        top = row_i * (size + 28)
        draw.text((2, top + 2), f"{title}: {len(rows)} shown", fill="black")
        for col, (idx, rec) in enumerate(rows.iterrows()):
            sheet.paste(Image.fromarray(images[idx].transpose(1, 2, 0)), (col * size, top + 14))
            draw.text((col * size + 2, top + size + 14), f"{rec['source'][:12]} p={rec['p_fake']:.2f}", fill="black")
    with atomic_path(path, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")


def grad_cam(scorer: Scorer, images: np.ndarray) -> np.ndarray:
    """Grad-CAM maps (N×S×S in [0,1]) of the fake logit at the second-to-last stage's output."""
    model = scorer.model
    layer = model.stages[-2] if len(model.stages) > 1 else model.stages[-1]
    feats = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: feats.__setitem__("a", out))
    try:
        x = to_model_input(torch.from_numpy(np.ascontiguousarray(images)), scorer.pre, channels_last=False)
        with torch.enable_grad():
            x.requires_grad_(True)
            logits = model(x)
            grads = torch.autograd.grad(logits.sum(), feats["a"])[0]
    finally:
        handle.remove()
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * feats["a"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
    return cam.detach().numpy()


def cam_sheet(scorer: Scorer, images: np.ndarray, frame: pd.DataFrame, threshold: float, n: int, path: Path) -> None:
    """Grad-CAM overlays for a few correct and wrong test faces of each class."""
    correct = (frame["p_fake"] >= threshold) == (frame["y"] == 1)
    picks = pd.concat([frame[correct & (frame["y"] == y)].head(n // 2) for y in (0, 1)]
                      + [frame[~correct].head(n)])
    if picks.empty:
        return
    idx = picks.index.to_numpy()
    cams = grad_cam(scorer, images[idx])
    size = images.shape[-1]
    sheet = Image.new("RGB", (len(idx) * size, 2 * size + 14), "white")
    draw = ImageDraw.Draw(sheet)
    for col, (i, cam) in enumerate(zip(idx, cams, strict=True)):
        face = images[i].transpose(1, 2, 0).astype(np.float32)
        heat = np.stack([cam, np.zeros_like(cam), 1 - cam], -1) * 255
        overlay = (0.55 * face + 0.45 * heat).clip(0, 255).astype(np.uint8)
        sheet.paste(Image.fromarray(face.astype(np.uint8)), (col * size, 0))
        sheet.paste(Image.fromarray(overlay), (col * size, size))
        rec = frame.loc[i]
        tag = "ok" if correct[i] else "WRONG"
        draw.text((col * size + 2, 2 * size + 1), f"{tag} {'fake' if rec['y'] else 'real'} p={rec['p_fake']:.2f}",
                  fill="black")
    with atomic_path(path, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG")


def holdout_table(p_fake: np.ndarray, y: np.ndarray, source: np.ndarray, holdout_for: np.ndarray,
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


def holdout_metrics(scorer: Scorer, packed_dir: Path, size: int, threshold: float, batch: int) -> dict[str, Any]:
    """Sources never trained on: per held-out source the share called right, and a fake source's AUC (holdout_table)."""
    if not (packed_dir / "holdout.npy").exists():
        return {}
    split = load_split(packed_dir, "holdout", size)
    if len(split) == 0:
        return {}
    if "holdout_for" not in split.meta or split.meta["holdout_for"].isna().any():
        log.warning("%s/holdout.parquet lacks holdout_for (packed by older code): re-run the sample stage", packed_dir)
        return {}
    p = score_split(scorer, split, batch)
    return holdout_table(p, split.y, split.meta["source"].to_numpy(), split.meta["holdout_for"].to_numpy(), threshold)


def run_evaluate(cfg: EvaluateConfig, model_path: Path, packed_dir: Path, metadata_path: Path, size: int,
                 out: dict[str, Path]) -> dict[str, Any]:
    """Score val/test, compute every metric and breakdown, write metrics, plots and the report."""
    torch.set_num_threads(cfg.threads)
    scorer = Scorer(model_path)
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
                             min_group=cfg.min_group, honest_real=cfg.honest_pair["real"],
                             honest_fake=cfg.honest_pair["fake"])
    bd = breakdowns(joined, threshold, bd_cfg)
    spectral_t = 0.5
    per_source = side_by_side(joined, {"cnn": ("p_fake", threshold), "spectral": ("p_spectral", spectral_t),
                                       "audit": ("p_audit", 0.5)})
    verdicts = [shortcut_verdict(test.y, p_test, extra[k], name, cfg.audit.get("margin", 0.03))
                for k, name in (("audit", "file-level audit model"), ("spectral", "spectral baseline"))]
    test_images = np.asarray(test.images[test.rows])
    robust = robustness_table(test_images, test.y, scorer, cfg.robustness, threshold, cfg.batch_size)

    report = {
        **core,
        "holdout": holdout_metrics(scorer, packed_dir, size, threshold, cfg.batch_size),
        "n": {"val": len(val), "test": len(test), "test_without_metadata": missing},
        "honest_pair": bd["honest_pair"],
        "baselines": {"spectral": binary_metrics(test.y, extra["spectral"], spectral_t),
                      "audit": binary_metrics(test.y, extra["audit"], 0.5)},
        "robustness": {r["transform"]: {"roc_auc": r["roc_auc"], "accuracy": r["accuracy"]} for r in robust},
        "disparity": {k: v["disparity"] for k, v in bd["demographics"].items()},
        "per_source": {r["source"]: {k: r[k] for k in ("n", "accuracy", "fpr", "fnr")} for r in bd["per_source"]},
    }
    write_json(out["metrics"], numeric_only(to_jsonable(report)))
    write_json(out["breakdowns"], to_jsonable({**bd, "shortcut_audit": verdicts,
                                               "per_source_models": per_source.to_dict(orient="records")}))
    plots = plot_records(test.y, p_test, threshold, cfg.calibration_bins, cfg.curve_points)
    plots["robustness"] = [{"transform": r["transform"], "roc_auc": r["roc_auc"]} for r in robust]
    for name, records in plots.items():
        write_json(out["plots"] / f"{name}.json", to_jsonable(records))
    frame = scored.reset_index(drop=True)
    gallery(test_images, frame, threshold, cfg.gallery, out["figures"] / "errors.png")
    cam_sheet(scorer, test_images, frame, threshold, cfg.gallery, out["figures"] / "gradcam.png")
    write_text(out["report"], render_report(report, bd, per_source, robust, verdicts))
    log.info("test AUC %.4f, accuracy %.4f at threshold %.3f; honest pair AUC %s", core["at_threshold"]["roc_auc"],
             core["at_threshold"]["accuracy"], threshold, bd["honest_pair"].get("pair_auc"))
    return report


def holdout_section(holdout: dict[str, Any]) -> list[str]:
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


def render_report(report: dict, bd: dict, per_source: pd.DataFrame, robust: list[dict], verdicts: list[dict]) -> str:
    """reports/evaluate.md: the headline, the shortcut audit, and every breakdown as a table."""
    m, h = report["at_threshold"], bd["honest_pair"]
    lines = [
        "# Evaluation report", "",
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
        *holdout_section(report.get("holdout") or {}),
    ]
    for attr, data in bd["demographics"].items():
        lines += [f"## By {attr}", "", markdown_table(data["groups"]),
                  f"Largest disparity ratio: {json.dumps(to_jsonable(data['disparity']))}", ""]
    for name, rows in bd["bins"].items():
        lines += [f"## By {name} bin", "", markdown_table(rows)]
    lines += ["![most confidently wrong](../plots/evaluate/errors.png)", "",
              "![Grad-CAM](../plots/evaluate/gradcam.png)", ""]
    return "\n".join(lines)
