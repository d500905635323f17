"""The metadata table: one row per face that survived dedupe, with an explicit, enforced schema."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realfake.attributes.face_measures import MEASURE_COLUMNS, measure_batch, pose_from_landmarks, skin_tone
from realfake.core.components import union_find
from realfake.core.engine import ComputeConfig, map_chunks
from realfake.core.errors import UserError
from realfake.core.progress import tqdm
from realfake.core.tables import surviving_faces
from realfake.core.vocab import ETHNICITY_TO_RACE, RACE_GROUPS, age_to_group
from realfake.metadata.schema import coerce

log = logging.getLogger(__name__)
MEASURE_CHUNK = 32  # crops per engine batch


def age_range_to_group(lo: pd.Series, hi: pd.Series, bins: list[int] | tuple[int, ...]) -> pd.Series:
    """An age range in years (a prompt's "child") to its age group when the range lies in one bin, else null."""
    lo_group, hi_group = age_to_group(lo, bins), age_to_group(hi, bins)
    return lo_group.where(lo_group.notna() & (lo_group == hi_group), None)


def race_from_source(race: pd.Series, ethnicity: pd.Series) -> pd.Series:
    """UTKFace race where given, else the generated-faces ethnicity mapped onto UTKFace's classes."""
    mapped = ethnicity.map(lambda e: ETHNICITY_TO_RACE.get(e) if isinstance(e, str) else None)
    out = race.astype("object").where(race.notna(), mapped)
    return out.where(out.isin(RACE_GROUPS), None)


# ---------------------------------------------------------------- reading the upstream tables (adapters)

def face_geometry(df: pd.DataFrame) -> pd.DataFrame:
    """THE adapter to the faces stage's encodings: landmarks as (5, 2) arrays, the numeric columns as floats.

    The faces stage stores `landmarks` as a flat list of 10 floats (x0, y0, …) and `box` as [x1, y1, x2, y2];
    a change of encoding there is fixed here only.
    """
    out = pd.DataFrame(index=df.index)

    def points(v: Any) -> np.ndarray | None:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        arr = np.asarray(list(v), dtype=np.float64).reshape(-1)
        return arr.reshape(5, 2) if arr.size == 10 else None

    def box_side(v: Any) -> float:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return np.nan
        b = np.asarray(list(v), dtype=np.float64).reshape(-1)
        return float(np.sqrt(max(b[2] - b[0], 0) * max(b[3] - b[1], 0))) if b.size == 4 else np.nan

    out["landmarks"] = df["landmarks"].map(points) if "landmarks" in df else None

    def to_crop(lm: np.ndarray | None, t: Any) -> np.ndarray | None:
        if lm is None or t is None or (isinstance(t, float) and np.isnan(t)):
            return None
        m = np.asarray(list(t), dtype=np.float64).reshape(-1)
        return lm @ m.reshape(2, 3)[:, :2].T + m.reshape(2, 3)[:, 2] if m.size == 6 else None

    out["crop_landmarks"] = ([to_crop(lm, t) for lm, t in zip(out["landmarks"], df["transform"], strict=True)]
                             if "transform" in df else None)
    out["box_px"] = df["box"].map(box_side) if "box" in df else np.nan
    for col in ("face_px", "prob", "pad_fraction", "scale"):
        out[col] = pd.to_numeric(df[col], errors="coerce").astype("float64") if col in df else np.nan
    for col in ("orig_width", "orig_height", "jpeg_quality", "n_faces"):
        out[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    for col in ("orig_format", "orig_mode", "crop_path"):
        out[col] = df[col].astype("object") if col in df else None
    for col in ("is_grayscale", "exif_rotated"):
        out[col] = df[col].astype("object") if col in df else None
    return out


def first_member(keys) -> np.ndarray:
    """For each position, the first position with the same key: linking the two joins every key's members."""
    codes, _ = pd.factorize(pd.Series(keys))
    return np.unique(codes, return_index=True)[1][codes]


def split_groups(dedupe: pd.DataFrame, faces: pd.DataFrame) -> pd.Series:
    """Per face_id, the connected component joining source groups and dedupe clusters (named by its min group).

    Built over every dedupe row, dropped ones too: a dropped duplicate can link two surviving faces.
    """
    group_of = dict(zip(faces["face_id"], faces["group"], strict=True)) if len(faces) else {}
    ids = dedupe["face_id"].tolist()
    groups = [g if isinstance(g, str) else group_of.get(f) or f"face:{f}"
              for f, g in zip(ids, dedupe["group"].tolist(), strict=True)]
    clusters = dedupe["cluster_id"].to_numpy()
    edges = [first_member(groups), first_member(np.where(clusters >= 0, clusters, -1 - np.arange(len(ids))))]
    everyone = np.arange(len(ids))
    roots = union_find(len(ids), np.concatenate(edges), np.concatenate([everyone, everyone])).tolist()
    name = {}
    for r, g in zip(roots, groups, strict=True):
        name[r] = min(name.get(r, g), g)
    return pd.Series([name[r] for r in roots], index=ids, dtype="object")


# ---------------------------------------------------------------- measures on crops

def measure_faces(crop_paths: list[Path], crop_landmarks: list | None = None, workers: int = 2,
                  progress: bool = True, compute: ComputeConfig | None = None) -> pd.DataFrame:
    """Lighting, quality and ITA of every aligned crop; an unreadable crop gives NaNs and its error."""
    items = list(zip(map(os.fspath, crop_paths), crop_landmarks or [None] * len(crop_paths), strict=True))
    with tqdm(total=len(items), desc="measure crops", unit="face", disable=not progress or not items) as bar:
        rows = map_chunks(measure_batch, items, compute or ComputeConfig(), workers, MEASURE_CHUNK, bar.update)
    return pd.DataFrame(rows, columns=MEASURE_COLUMNS)


# ---------------------------------------------------------------- assembly

@dataclass
class MetadataConfig:
    """Params of the metadata stage (params.yaml section `metadata`)."""

    workers: int = 2  # threads measuring crops (PIL and OpenCV release the GIL)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UserError("metadata.workers must be >= 1")


def final_column(source: pd.Series, pred: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The source label where present, else the prediction; and which one was used."""
    value = source.astype("object").where(source.notna(), pred.astype("object"))
    origin = pd.Series(np.where(source.notna(), "source", np.where(pred.notna(), "model", None)),
                       index=source.index, dtype="object")
    return value.where(value.notna(), None), origin


def build_metadata(
    faces: pd.DataFrame, dedupe: pd.DataFrame, attributes: pd.DataFrame | None, sources: list[str],
    age_bins, faces_dir: Path, resized_dir: Path, raw_dir: Path, cfg: MetadataConfig, progress: bool = True,
    compute: ComputeConfig | None = None,
) -> pd.DataFrame:
    """Assemble the table (schema dtypes) from the faces rows, the dedupe table and the attribute predictions."""
    surv = surviving_faces(faces, dedupe)
    geo = face_geometry(surv)
    crop_files = [faces_dir / str(s) / str(c) for s, c in zip(surv["source"], geo["crop_path"], strict=True)]
    measures = measure_faces(crop_files, list(geo["crop_landmarks"]), cfg.workers, progress, compute)
    n_err = int(measures["measure_error"].notna().sum())
    if n_err:
        log.warning("%d crop(s) could not be measured: their measures are null", n_err)
    poses = [pose_from_landmarks(lm) if lm is not None else None for lm in geo["landmarks"]]
    split = split_groups(dedupe, faces)
    cluster = dict(zip(dedupe["face_id"], dedupe["cluster_id"], strict=True))

    def col(name: str) -> pd.Series:
        return surv[name] if name in surv else pd.Series([None] * len(surv), index=surv.index, dtype="object")

    out = pd.DataFrame(index=surv.index)
    out["face_id"] = surv["face_id"].astype(str)
    out["source"] = surv["source"].astype(str)
    out["label"] = col("label")
    out["kind"] = col("kind")
    out["group"] = col("group")
    out["split_group"] = out["face_id"].map(split)
    out["cluster_id"] = out["face_id"].map(cluster).fillna(-1).astype(np.int64)
    out["raw_path"] = [os.fspath(raw_dir / s / p) if isinstance(p, str) else None
                       for s, p in zip(out["source"], col("path"), strict=True)]
    out["crop_path"] = [os.fspath(p) for p in crop_files]
    out["resized_path"] = [os.fspath(resized_dir / s / f"{f}.png") for s, f in zip(out["source"], out["face_id"], strict=True)]
    out["age_source"] = col("age_source")
    out["gender_source"] = col("gender_source")
    out["race_source"] = col("race_source")
    out["ethnicity_source"] = col("ethnicity_source")
    from_range = age_range_to_group(col("age_min_source"), col("age_max_source"), age_bins)
    out["age_group_source"] = age_to_group(out["age_source"], age_bins).where(out["age_source"].notna(), from_range)
    out["label_note"] = col("label_note")
    out = out.join(_predictions(out["face_id"], attributes))
    race_src = race_from_source(out["race_source"], out["ethnicity_source"])
    out["gender"], out["gender_from"] = final_column(out["gender_source"], out["gender_pred"])
    out["age_group"], out["age_group_from"] = final_column(out["age_group_source"], out["age_group_pred"])
    out["race_group"], out["race_group_from"] = final_column(race_src, out["race_group_pred"])
    for name in ("yaw", "pitch", "roll"):
        out[name] = [float(getattr(p, name)) if p is not None else np.nan for p in poses]
    out["face_px"] = geo["face_px"]
    out["box_px"] = geo["box_px"]
    out["eye_dist_px"] = [float(np.hypot(*(lm[1] - lm[0]))) if lm is not None else np.nan for lm in geo["landmarks"]]
    out["face_prob"] = geo["prob"]
    out["n_faces"] = geo["n_faces"]
    out["pad_fraction"] = geo["pad_fraction"]
    for name in ("brightness", "contrast", "sharpness", "noise", "ita"):
        out[name] = measures[name].to_numpy(np.float64)
    out["skin_tone"] = [skin_tone(v) for v in out["ita"]]
    out["skin_px"] = measures["skin_px"].to_numpy()
    for name in ("orig_width", "orig_height", "orig_format", "orig_mode", "jpeg_quality", "is_grayscale"):
        out[name] = geo[name]
    return coerce(out.reset_index(drop=True), sources, age_bins)


def _predictions(face_ids: pd.Series, attributes: pd.DataFrame | None) -> pd.DataFrame:
    """The *_pred / *_conf / attr_split columns aligned to face_ids (null where no prediction)."""
    cols = ["gender_pred", "gender_conf", "age_group_pred", "age_group_conf", "race_group_pred",
            "race_group_conf", "attr_split"]
    if attributes is None or not len(attributes):
        return pd.DataFrame({c: [None] * len(face_ids) for c in cols}, index=face_ids.index)
    attrs = attributes.drop_duplicates("face_id").set_index("face_id")
    missing = [c for c in cols if c not in attrs]
    if missing:
        raise UserError(f"attributes table lacks {missing}: rerun the attributes stage")
    got = attrs.reindex(face_ids.to_numpy())[cols]
    got.index = face_ids.index
    n_missing = int(got["gender_conf"].isna().sum())
    if n_missing:
        log.warning("%d surviving face(s) have no attribute prediction", n_missing)
    return got


def metadata_metrics(meta: pd.DataFrame, dedupe: pd.DataFrame) -> dict[str, Any]:
    """Row counts that reconcile (surviving dedupe rows = rows written + skipped), nulls and label origins."""
    surviving = int(dedupe["survived"].sum())
    per_source = meta.groupby(meta["source"].astype(str)).size()
    return {
        "rows": len(meta),
        "in_surviving_dedupe": surviving,
        "skipped_no_faces_row": surviving - len(meta),
        "rows_by_label": {k: int(v) for k, v in meta["label"].astype(str).value_counts().sort_index().items()},
        "rows_by_source": {k: int(v) for k, v in per_source.items()},
        "null_share": {c: round(float(meta[c].isna().mean()), 4) for c in meta.columns if meta[c].isna().any()},
        "label_from": {
            c: {k: int(v) for k, v in meta[f"{c}_from"].astype("object").fillna("none").value_counts().items()}
            for c in ("gender", "age_group", "race_group")
        },
    }
