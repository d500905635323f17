"""The metadata table: one row per face that survived dedupe, with an explicit, enforced schema."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from realfake.engine import ComputeConfig, map_chunks
from realfake.errors import UserError
from realfake.face_measures import MEASURE_COLUMNS, SKIN_TONES, measure_batch, pose_from_landmarks, skin_tone

log = logging.getLogger(__name__)

GENDERS = ("male", "female")
RACE_GROUPS = ("white", "black", "asian", "indian", "others")  # UTKFace's five classes
# generated-faces folder ethnicities onto UTKFace races. UTKFace defines "others" as "like Hispanic, Latino,
# Middle Eastern", so latino and middle-eastern go there.
ETHNICITY_TO_RACE = {"white": "white", "black": "black", "asian": "asian", "indian": "indian",
                     "latino": "others", "middle-eastern": "others", "others": "others"}
DEFAULT_AGE_BINS = (0, 13, 20, 30, 40, 50, 60, 120)
LABELS = ("real", "fake")
KINDS = ("gan", "diffusion", "faceswap", "photoshop")
MEASURE_CHUNK = 32  # crops per engine batch
FROM = ("source", "model")


class SchemaError(ValueError):
    """A frame does not match the metadata schema (a bug upstream, never silently cast)."""


def age_group_labels(bins: list[int] | tuple[int, ...]) -> list[str]:
    """Readable names of the age bins [b0, b1), …: '0-12', '13-19', …, '60+' for an open top bin."""
    names = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        names.append(f"{lo}+" if hi >= 120 else f"{lo}-{hi - 1}")
    return names


def age_to_group(ages: pd.Series, bins: list[int] | tuple[int, ...]) -> pd.Series:
    """Ages in years to age-group names (null where the age is null or out of the bins)."""
    cut = pd.cut(pd.to_numeric(ages, errors="coerce").astype("float64"), list(bins), right=False,
                 labels=age_group_labels(bins))
    return pd.Series(cut.astype("object"), index=ages.index).where(cut.notna(), None)


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


def read_faces(faces_dir: Path, sources: list[str]) -> pd.DataFrame:
    """Every row of the faces tables of `sources` (kept and rejected), raw columns included."""
    frames = []
    for name in sources:
        path = faces_dir / f"{name}.parquet"
        if not path.is_file():
            raise UserError(f"{path} not found: run the faces stage for {name!r} first")
        df = pd.read_parquet(path)
        if len(df) and "face_id" not in df:
            raise UserError(f"{path} has no face_id column: is it a faces-stage table?")
        frames.append(df)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["face_id", "source"])


def read_dedupe(path: Path) -> pd.DataFrame:
    """The dedupe table as face_id, source, group, cluster_id and `survived` (no drop reason)."""
    if not path.is_file():
        raise UserError(f"{path} not found: run the dedupe stage first")
    df = pd.read_parquet(path)
    reason_col = "drop_reason" if "drop_reason" in df else "reason" if "reason" in df else None
    if reason_col is not None:
        survived = df[reason_col].isna()
    elif "is_keeper" in df:
        survived = df["is_keeper"].astype(bool)
    else:
        raise UserError(f"{path} has neither drop_reason/reason nor is_keeper: is it a dedupe table?")
    out = pd.DataFrame({
        "face_id": df["face_id"].astype(str),
        "source": df["source"].astype(str) if "source" in df else None,
        "group": df["group"].astype("object") if "group" in df else None,
        "cluster_id": pd.to_numeric(df.get("cluster_id", pd.Series(-1, index=df.index)), errors="coerce")
        .fillna(-1).astype(np.int64),
        "survived": survived.to_numpy(bool),
    })
    return out


def surviving_faces(faces: pd.DataFrame, dedupe: pd.DataFrame) -> pd.DataFrame:
    """The faces rows that were kept by the faces stage and survived dedupe, in (source, face_id) order."""
    ids = set(dedupe.loc[dedupe["survived"], "face_id"])
    kept = faces[(faces["status"] == "kept") & faces["face_id"].isin(ids)] if len(faces) else faces
    missing = ids - set(kept["face_id"]) if len(kept) else ids
    if missing:
        log.warning("%d surviving dedupe ids have no kept faces row (stale tables?); they are skipped",
                    len(missing))
    return kept.sort_values(["source", "face_id"], kind="stable").reset_index(drop=True)


def split_groups(dedupe: pd.DataFrame, faces: pd.DataFrame) -> pd.Series:
    """Per face_id, the connected component joining source groups and dedupe clusters (named by its min group).

    Built over every dedupe row, dropped ones too: a dropped duplicate can link two surviving faces.
    """
    group_of = dict(zip(faces["face_id"], faces["group"], strict=True)) if len(faces) else {}
    ids = dedupe["face_id"].tolist()
    groups = [g if isinstance(g, str) else group_of.get(f) or f"face:{f}"
              for f, g in zip(ids, dedupe["group"].tolist(), strict=True)]
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(members: list[int]) -> None:
        root = find(members[0])
        for m in members[1:]:
            parent[find(m)] = root

    clusters = dedupe["cluster_id"].to_numpy()
    for keys in (pd.Series(groups), pd.Series(np.where(clusters >= 0, clusters, -1 - np.arange(len(ids))))):
        for members in keys.groupby(keys.to_numpy()).indices.values():
            if len(members) > 1:
                link([int(m) for m in members])
    roots = [find(i) for i in range(len(ids))]
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


# ---------------------------------------------------------------- the schema

def metadata_columns(sources: list[str], age_bins: list[int] | tuple[int, ...]) -> list[tuple[str, Any, str]]:
    """(column, pandas dtype, pyarrow type name) of every column, in order: the one definition of the schema."""
    def cat(values) -> pd.CategoricalDtype:
        return pd.CategoricalDtype(list(values), ordered=False)

    ages = age_group_labels(age_bins)
    skin = pd.CategoricalDtype(list(SKIN_TONES), ordered=True)
    s, f32, i32, i16 = "string", "float32", "Int32", "Int16"
    return [
        ("face_id", s, "string"), ("source", cat(sources), "dict"), ("label", cat(LABELS), "dict"),
        ("kind", cat(KINDS), "dict"), ("group", s, "string"), ("split_group", s, "string"),
        ("cluster_id", "int64", "int64"),
        ("raw_path", s, "string"), ("crop_path", s, "string"), ("resized_path", s, "string"),
        ("age_source", i16, "int16"), ("gender_source", cat(GENDERS), "dict"),
        ("race_source", cat(RACE_GROUPS), "dict"), ("ethnicity_source", s, "string"),
        ("age_group_source", cat(ages), "dict"), ("label_note", s, "string"),
        ("gender_pred", cat(GENDERS), "dict"), ("gender_conf", f32, "float32"),
        ("age_group_pred", cat(ages), "dict"), ("age_group_conf", f32, "float32"),
        ("race_group_pred", cat(RACE_GROUPS), "dict"), ("race_group_conf", f32, "float32"),
        ("attr_split", cat(("train", "val", "predict")), "dict"),
        ("gender", cat(GENDERS), "dict"), ("gender_from", cat(FROM), "dict"),
        ("age_group", cat(ages), "dict"), ("age_group_from", cat(FROM), "dict"),
        ("race_group", cat(RACE_GROUPS), "dict"), ("race_group_from", cat(FROM), "dict"),
        ("yaw", f32, "float32"), ("pitch", f32, "float32"), ("roll", f32, "float32"),
        ("face_px", f32, "float32"), ("box_px", f32, "float32"), ("eye_dist_px", f32, "float32"),
        ("face_prob", f32, "float32"), ("n_faces", i16, "int16"), ("pad_fraction", f32, "float32"),
        ("brightness", f32, "float32"), ("contrast", f32, "float32"), ("sharpness", f32, "float32"),
        ("noise", f32, "float32"), ("ita", f32, "float32"), ("skin_tone", skin, "odict"),
        ("skin_px", i32, "int32"),
        ("orig_width", i32, "int32"), ("orig_height", i32, "int32"), ("orig_format", s, "string"),
        ("orig_mode", s, "string"), ("jpeg_quality", i16, "int16"), ("is_grayscale", "boolean", "bool"),
    ]


def arrow_schema(sources: list[str], age_bins: list[int] | tuple[int, ...]):
    """The pyarrow schema of data/metadata.parquet."""
    import pyarrow as pa

    simple = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "int16": pa.int16(),
              "float32": pa.float32(), "bool": pa.bool_(), "dict": pa.dictionary(pa.int32(), pa.string()),
              "odict": pa.dictionary(pa.int32(), pa.string(), ordered=True)}
    return pa.schema([pa.field(n, simple[t]) for n, _, t in metadata_columns(sources, age_bins)])


def pandas_dtypes(sources: list[str], age_bins: list[int] | tuple[int, ...]) -> dict[str, Any]:
    """Column -> pandas dtype of the table as read back."""
    return {n: pd.api.types.pandas_dtype(d) if isinstance(d, str) else d for n, d, _ in metadata_columns(sources, age_bins)}


def validate_frame(df: pd.DataFrame, sources: list[str], age_bins: list[int] | tuple[int, ...]) -> None:
    """Raise SchemaError unless df has exactly the schema's columns, in order, with exactly its dtypes."""
    expected = pandas_dtypes(sources, age_bins)
    if list(df.columns) != list(expected):
        missing = [c for c in expected if c not in df.columns]
        extra = [c for c in df.columns if c not in expected]
        raise SchemaError(f"metadata columns differ: missing {missing}, unexpected {extra} (or wrong order)")
    bad = {c: f"{df[c].dtype} != {d}" for c, d in expected.items() if df[c].dtype != d}
    if bad:
        raise SchemaError(f"metadata dtypes differ from the schema: {bad}")


def write_metadata(df: pd.DataFrame, path: Path, sources: list[str], age_bins) -> None:
    """Validate, convert with the explicit schema and write atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from realfake.atomic import atomic_path

    validate_frame(df, sources, age_bins)
    schema = arrow_schema(sources, age_bins)
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    if not table.schema.remove_metadata().equals(schema):
        raise SchemaError(f"arrow schema mismatch after conversion:\n{table.schema}")
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """Read data/metadata.parquet (plain pandas.read_parquet gives the same dtypes)."""
    return pd.read_parquet(path)


# ---------------------------------------------------------------- assembly

@dataclass
class MetadataConfig:
    """Params of the metadata stage (params.yaml section `metadata`)."""

    workers: int = 2  # threads measuring crops (PIL and OpenCV release the GIL)

    @classmethod
    def from_params(cls, section: dict[str, Any] | None) -> MetadataConfig:
        """Build from a params.yaml section; unknown keys are user errors."""
        section = dict(section or {})
        unknown = sorted(set(section) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"metadata: unknown params {unknown}")
        cfg = cls(**section)
        if cfg.workers < 1:
            raise UserError("metadata.workers must be >= 1")
        return cfg


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
    out["age_group_source"] = age_to_group(out["age_source"], age_bins)
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


def coerce(df: pd.DataFrame, sources: list[str], age_bins) -> pd.DataFrame:
    """Cast an assembled frame to the schema dtypes; values outside a categorical's categories fail loudly."""
    out = pd.DataFrame(index=df.index)
    for name, dtype in pandas_dtypes(sources, age_bins).items():
        values = df[name] if name in df else pd.Series([None] * len(df), index=df.index)
        if isinstance(dtype, pd.CategoricalDtype):
            vals = values.astype("object").where(values.notna(), None)
            bad = set(vals.dropna()) - set(dtype.categories)
            if bad:
                raise SchemaError(f"{name}: values {sorted(map(str, bad))[:5]} are not in {list(dtype.categories)}")
            out[name] = pd.Categorical(vals, dtype=dtype)
        elif str(dtype) in ("Int16", "Int32"):
            out[name] = pd.to_numeric(values, errors="raise").round().astype(dtype)
        elif str(dtype) == "boolean":
            out[name] = values.astype("boolean")
        elif str(dtype) == "string":
            out[name] = values.astype("object").where(values.notna(), None).astype("string")
        else:
            out[name] = values.astype(dtype)
    return out


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
