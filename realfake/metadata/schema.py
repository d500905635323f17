"""The schema of data/metadata.parquet: columns, dtypes, validation and the write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from realfake.attributes.face_measures import SKIN_TONES
from realfake.core.vocab import GENDERS, KINDS, LABELS, RACE_GROUPS, age_group_labels

FROM = ("source", "model")


class SchemaError(ValueError):
    """A frame does not match the metadata schema (a bug upstream, never silently cast)."""


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

    from realfake.core.atomic import atomic_path

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
