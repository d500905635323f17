"""The dataset card: real-vs-fake distributions and per-stage counts as CSV (for `dvc plots`), PNG and Markdown."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realfake.core.atomic import write_text
from realfake.core.tables import markdown_table
from realfake.metadata.card_plots import plot_bars, plot_hist, plot_source_counts

log = logging.getLogger(__name__)

CATEGORICAL = ("gender", "age_group", "race_group", "skin_tone")
# numeric columns: (column, bin edges, transform applied before binning, axis label)
NUMERIC = (
    ("yaw", np.arange(-60, 61, 5), None, "yaw (degrees)"),
    ("sharpness", np.arange(0.0, 4.01, 0.2), np.log10, "log10 variance of Laplacian"),
    ("jpeg_quality", np.arange(0, 101, 5), None, "estimated JPEG quality"),
)


def categorical_shares(meta: pd.DataFrame, col: str) -> pd.DataFrame:
    """Share (and count) of each category among real and among fake faces; columns: col, real, fake, n_real, n_fake."""
    cats = list(meta[col].cat.categories) if isinstance(meta[col].dtype, pd.CategoricalDtype) else sorted(
        meta[col].dropna().unique())
    values = meta[col].astype("object").where(meta[col].notna(), "unknown")
    out = pd.DataFrame({col: [*cats, "unknown"]})
    for label in ("real", "fake"):
        sub = values[meta["label"].astype(str) == label]
        counts = sub.value_counts().reindex(out[col], fill_value=0).to_numpy()
        out[f"n_{label}"] = counts
        out[label] = np.round(counts / max(len(sub), 1), 4)
    return out[[col, "real", "fake", "n_real", "n_fake"]]


def numeric_hist(meta: pd.DataFrame, col: str, edges: np.ndarray, transform=None) -> pd.DataFrame:
    """Share of real and of fake faces per bin (values clipped into the outer bins); columns: col, real, fake."""
    out = pd.DataFrame({col: np.round((edges[:-1] + edges[1:]) / 2, 3)})
    for label in ("real", "fake"):
        v = pd.to_numeric(meta.loc[meta["label"].astype(str) == label, col], errors="coerce").astype(float).dropna()
        v = v[v > 0] if transform is np.log10 else v
        x = transform(v.to_numpy()) if transform is not None else v.to_numpy()
        counts, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
        out[label] = np.round(counts / max(len(x), 1), 4)
    return out


def source_counts(meta: pd.DataFrame) -> pd.DataFrame:
    """Faces per source and label."""
    counts = meta.groupby([meta["source"].astype(str), meta["label"].astype(str)]).size()
    return counts.rename("faces").reset_index().sort_values(["label", "source"], ignore_index=True)


CROP_VIEWS = ("context", "native")  # the crops stage's views (docs/views.md), each with its own rejections


def stage_counts(metrics_dir: Path, dedupe_report: Path | None = None, crops_reports: Path | None = None) -> pd.DataFrame:
    """in/kept/rejected per stage and source from metrics/{download,faces}/*.json, the crops and the dedupe details.

    The crops stage counts each view apart (`crops: context view`, `crops: native view`) from `crops_reports`
    (reports/crops/<source>.json), else one row per source from metrics/crops (a face with both views kept).
    The dedupe counts per source come from `dedupe_report` (reports/dedupe.json) when given, else from
    metrics/dedupe.json (one pooled row when that holds only the headline).
    """
    rows = []
    for stage in ("download", "faces"):
        for path in sorted((metrics_dir / stage).glob("*.json")):
            m = _load_json(path)
            if m is not None:
                rows.append(_count_row(stage, path.stem, m))
    rows += _crops_rows(metrics_dir / "crops", crops_reports)
    dedupe = _load_json(dedupe_report) if dedupe_report is not None else None
    dedupe = dedupe if dedupe is not None else _load_json(metrics_dir / "dedupe.json")
    if dedupe is not None:
        per_source = dedupe.get("by_source") or dedupe.get("per_source")
        if isinstance(per_source, dict):
            rows += [_count_row("dedupe", s, m) for s, m in sorted(per_source.items()) if isinstance(m, dict)]
        else:
            rows.append(_count_row("dedupe", "all", dedupe))
    return pd.DataFrame(rows, columns=["stage", "source", "in", "kept", "rejected"])


def _crops_rows(crops_metrics: Path, crops_reports: Path | None) -> list[dict[str, Any]]:
    """The crops stage's rows: per view from its details where present, else its headline (both views kept)."""
    rows = []
    for view in CROP_VIEWS:
        for path in sorted(crops_reports.glob("*.json")) if crops_reports is not None and crops_reports.is_dir() else []:
            details = _load_json(path) or {}
            if isinstance(details.get(view), dict):
                rows.append(_count_row(f"crops: {view} view", path.stem, details[view]))
    if rows:
        return rows
    return [_count_row("crops: both views", p.stem, m) for p in sorted(crops_metrics.glob("*.json"))
            if (m := _load_json(p)) is not None]


def _count_row(stage: str, source: str, m: dict[str, Any]) -> dict[str, Any]:
    """One stage/source count row from a metrics dict (missing figures stay null)."""
    kept = _first(m, "kept", "images_kept", "faces_kept")
    rejected = _first(m, "rejected", "dropped", "skipped_total", "faces_dropped")
    total = _first(m, "in", "total", "files_seen", "faces_in")
    if total is None and kept is not None and rejected is not None:
        total = kept + rejected
    if rejected is None and kept is not None and total is not None:
        rejected = total - kept
    return {"stage": stage, "source": source, "in": total, "kept": kept, "rejected": rejected}


def _first(m: dict[str, Any], *keys: str) -> Any:
    """The first of keys present in m (metrics of different stages name their counts differently)."""
    return next((m[k] for k in keys if m.get(k) is not None), None)


def _load_json(path: Path) -> dict[str, Any] | None:
    """A metrics JSON, or None when it is absent or unreadable (the card still renders)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """CSV atomically (dvc plots data)."""
    write_text(path, df.to_csv(index=False))


def _write_per_label(df: pd.DataFrame, col: str, plots_dir: Path, name: str) -> None:
    """reports/plots/{real,fake}/<name>.csv with columns col, share: one file per label, as `dvc plots` compares."""
    for label in ("real", "fake"):
        _write_csv(df[[col, label]].rename(columns={label: "share"}), plots_dir / label / f"{name}.csv")


def real_fake_summary(meta: pd.DataFrame) -> dict[str, Any]:
    """Headline real-vs-fake differences: shares of each category and medians of the numeric measures."""
    out: dict[str, Any] = {}
    for col in CATEGORICAL:
        shares = categorical_shares(meta, col)
        out[col] = {str(r[col]): {"real": float(r["real"]), "fake": float(r["fake"])} for _, r in shares.iterrows()}
    for col in ("yaw", "pitch", "roll", "face_px", "brightness", "contrast", "sharpness", "noise", "ita",
                "jpeg_quality"):
        out[f"median_{col}"] = {
            label: _median(meta.loc[meta["label"].astype(str) == label, col]) for label in ("real", "fake")
        }
    return out


def _median(values: pd.Series) -> float | None:
    """Median ignoring nulls (None when empty), rounded."""
    v = pd.to_numeric(values, errors="coerce").astype(float).dropna()
    return round(float(v.median()), 3) if len(v) else None


def watermark_section(watermarks: dict[str, list[float]], faces_reports: Path, crops_reports: Path | None = None) -> str:
    """The card's line on visible watermarks: each declared box and how many crops each stage refused for it.

    The faces stage's aligned crop rarely reaches a corner mark; the wider context view and the native window do, so
    their rejections (reports/crops/<source>.json) are counted too: that is where a mark is refused in practice.
    """
    head = ("## Visible watermarks\n\nA source's known visible mark is declared in params.yaml "
            "(`sources.<name>.watermark.box`, fractions of the image). The faces stage (the aligned crop) and the "
            "crops stage (the context and native views) reject every crop whose source pixels (resampling reach and "
            "mirrored border included) would reach the box, reason `watermark`, so **no training input keeps a "
            "declared mark**; `tests/test_watermark.py` measures the pollinations mark on the mirror and checks the "
            "kept crops against it.\n\n")
    if not watermarks:
        return head + "_No source declares a watermark._\n"
    rows = []
    for source, box in sorted(watermarks.items()):
        faces = _load_json(faces_reports / f"{source}.json") or {}  # the faces stage's details
        crops = (_load_json(crops_reports / f"{source}.json") or {}) if crops_reports is not None else {}
        row = {"source": source, "box (x1, y1, x2, y2)": ", ".join(f"{v:g}" for v in box),
               "images in": faces.get("in"),
               "aligned crops rejected for the mark": _reason(faces, "watermark"), "faces kept": faces.get("kept")}
        for view in CROP_VIEWS:
            if isinstance(crops.get(view), dict):
                row[f"{view} view rejected for the mark"] = _reason(crops[view], "watermark")
        rows.append(row)
    return head + markdown_table(pd.DataFrame(rows))


def _reason(details: dict[str, Any], reason: str) -> int | None:
    """How many rows a stage's details reject for `reason` (None when the details are missing)."""
    if not details:
        return None
    return int((details.get("rejected_by_reason") or {}).get(reason, 0))


def write_card(meta: pd.DataFrame, metrics_dir: Path, report_path: Path, figures_dir: Path, plots_dir: Path,
               attributes_metrics: dict[str, Any] | None = None, dedupe_report: Path | None = None,
               watermarks: dict[str, list[float]] | None = None, faces_reports: Path | None = None,
               crops_reports: Path | None = None) -> dict[str, Any]:
    """Write plot CSVs, PNGs and the Markdown card; return the real-vs-fake summary."""
    sections = []
    counts = source_counts(meta)
    _write_csv(counts, plots_dir / "source_counts.csv")
    plot_source_counts(counts, figures_dir / "source_counts.png")
    stages = stage_counts(metrics_dir, dedupe_report, crops_reports)
    _write_csv(stages, plots_dir / "stage_counts.csv")
    rel = _relative(figures_dir, report_path.parent)
    sections.append("## Faces per source and label\n\n" + markdown_table(counts)
                    + f"\n![faces per source]({rel}/source_counts.png)\n")
    sections.append("## Kept and rejected per stage\n\n" + (markdown_table(stages) if len(stages) else
                                                             "_no stage metrics found_\n"))
    sections.append(watermark_section(watermarks or {}, faces_reports or metrics_dir / "faces", crops_reports))
    for col in CATEGORICAL:
        shares = categorical_shares(meta, col)
        _write_csv(shares, plots_dir / f"{col}.csv")
        _write_per_label(shares, col, plots_dir, col)
        plot_bars(shares, col, figures_dir / f"{col}.png", f"{col}: real vs fake")
        sections.append(f"## {col}\n\n![{col}]({rel}/{col}.png)\n\n" + markdown_table(shares))
    for col, edges, transform, xlabel in NUMERIC:
        hist = numeric_hist(meta, col, edges, transform)
        _write_csv(hist, plots_dir / f"{col}.csv")
        _write_per_label(hist, col, plots_dir, col)
        plot_hist(hist, col, figures_dir / f"{col}.png", xlabel)
        sections.append(f"## {col}\n\n![{col}]({rel}/{col}.png)\n")
    summary = real_fake_summary(meta)
    medians = pd.DataFrame([{"measure": k.removeprefix("median_"), **v} for k, v in summary.items()
                            if k.startswith("median_")])
    sections.insert(2, "## Medians, real vs fake\n\n" + markdown_table(medians))
    if attributes_metrics:
        held = attributes_metrics.get("held_out", {})
        rows = [{"head": h, **{k: v.get(k) for k in ("n", "accuracy", "majority_baseline")}} for h, v in held.items()]
        agree = [{"source": src, "label": lab, **{k: v.get(k) for k in ("n", "accuracy", "majority_baseline")}}
                 for src, entry in sorted(attributes_metrics.get("agreement", {}).items())
                 for lab, v in sorted(entry.items()) if isinstance(v, dict) and "accuracy" in v]
        sections.insert(0, "## How good the predicted labels are\n\nEstimates, for balancing and auditing only. "
                        "Held-out UTKFace accuracy:\n\n" + markdown_table(pd.DataFrame(rows))
                        + "\nAgreement with the labels other sources ship (`accuracy` = share of faces where the "
                        "prediction equals the source's label):\n\n"
                        + (markdown_table(pd.DataFrame(agree)) if agree else "_no source labels to compare_\n"))
    intro = (f"# Dataset card\n\nGenerated by the `metadata` stage from `data/metadata.parquet` "
             f"({len(meta)} faces: {int((meta['label'].astype(str) == 'real').sum())} real, "
             f"{int((meta['label'].astype(str) == 'fake').sum())} fake). Distributions are shares within each "
             "label, before any balancing. `gender`, `age_group` and `race_group` use the source's label where "
             "it has one, else the attribute model's estimate (see docs/metadata.md).\n")
    write_text(report_path, intro + "\n" + "\n".join(sections))
    return summary


def _relative(target: Path, start: Path) -> str:
    """target relative to start, POSIX-style (for Markdown links)."""
    import os

    return Path(os.path.relpath(target, start)).as_posix()
