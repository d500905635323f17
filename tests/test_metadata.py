"""The metadata table from small crafted faces / dedupe / attributes parquets: rows, split groups, schema."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from realfake.attributes.face_measures import DEFAULT_CROP_LANDMARKS
from realfake.core.tables import read_dedupe, read_faces, surviving_faces
from realfake.metadata.build import MetadataConfig, build_metadata, split_groups
from realfake.metadata.dataset_card import write_card
from realfake.metadata.schema import (
    SchemaError,
    arrow_schema,
    coerce,
    pandas_dtypes,
    validate_frame,
    write_metadata,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
SOURCES = ["generated-faces", "lfw", "tpdne"]
BINS = [0, 13, 20, 30, 40, 50, 60, 120]


def sample_images(archive: str, n: int) -> list[tuple[str, np.ndarray]]:
    """The first n images of a sample archive, resized to 224 px (stand-ins for aligned crops)."""
    with zipfile.ZipFile(SAMPLE / archive) as zf:
        names = sorted(m for m in zf.namelist() if m.endswith(".jpg"))[:n]
        return [(m, np.asarray(Image.open(io.BytesIO(zf.read(m))).convert("RGB").resize((224, 224)))) for m in names]


def faces_rows(source: str, label: str, items, groups, tmp: Path, statuses=None) -> pd.DataFrame:
    """A faces-stage table for `items`, with crops written under tmp/faces/<source>/."""
    rows = []
    for k, ((path, img), group) in enumerate(zip(items, groups, strict=True)):
        fid = f"{source[:3]}{k:02d}"
        status = statuses[k] if statuses else "kept"
        (tmp / "faces" / source).mkdir(parents=True, exist_ok=True)
        if status == "kept":
            Image.fromarray(img).save(tmp / "faces" / source / f"{fid}.png")
        # original = crop scaled by 2: landmarks in original px, transform original -> crop
        lm = (DEFAULT_CROP_LANDMARKS * 224 * 2).reshape(-1).astype(np.float32).tolist()
        parts = Path(path).parts
        rows.append({
            "source": source, "path": path, "label": label, "kind": "gan" if label == "fake" else None,
            "bytes": 1000, "sha256": "0" * 64, "group": group, "age_source": 35 if source == "lfw" and k == 0 else None,
            "gender_source": parts[-3] if source == "generated-faces" else None, "race_source": None,
            "ethnicity_source": parts[-2] if source == "generated-faces" else None, "dfdc_original": None,
            "label_note": None, "face_id": fid, "status": status, "reason": None if status == "kept" else "no_face",
            "crop_path": f"{fid}.png" if status == "kept" else None, "orig_width": 448, "orig_height": 448,
            "orig_mode": "RGB", "orig_format": "JPEG", "jpeg_quality": 75, "is_grayscale": False,
            "exif_rotated": False, "n_faces": 1, "prob": 0.99, "box": [100.0, 80.0, 350.0, 400.0], "landmarks": lm,
            "face_px": 220.0, "pad_fraction": 0.0, "scale": 0.5, "transform": [0.5, 0.0, 0.0, 0.0, 0.5, 0.0],
        })
    df = pd.DataFrame(rows)
    df["age_source"] = df["age_source"].astype("Int16")
    df.to_parquet(tmp / "faces" / f"{source}.parquet")
    return df


@pytest.fixture
def project(tmp_path: Path) -> dict:
    """Three sources; lfw has a person with two images; a tpdne face is a dropped duplicate of an lfw face."""
    lfw_items = sample_images("lfw.zip", 4)
    lfw_groups = ["lfw:A", "lfw:A", "lfw:B", "lfw:C"]
    faces_rows("lfw", "real", lfw_items, lfw_groups, tmp_path, statuses=["kept", "kept", "kept", "rejected"])
    faces_rows("generated-faces", "fake", sample_images("generated-faces.zip", 3),
               [f"generated-faces:{i}" for i in range(3)], tmp_path)
    faces_rows("tpdne", "fake", sample_images("tpdne.zip", 3), [f"tpdne:{i}" for i in range(3)], tmp_path)
    (tmp_path / "faces" / "tpdne" / "tpd02.png").write_bytes(b"broken")  # unreadable crop: null measures
    dedupe = pd.DataFrame({
        "face_id": ["gen00", "gen01", "gen02", "lfw00", "lfw01", "lfw02", "tpd00", "tpd01", "tpd02"],
        "source": ["generated-faces"] * 3 + ["lfw"] * 3 + ["tpdne"] * 3,
        "group": ["generated-faces:0", "generated-faces:1", "generated-faces:2", "lfw:A", "lfw:A", "lfw:B",
                  "tpdne:0", "tpdne:1", "tpdne:2"],
        # tpd00 (dropped) duplicates lfw02 (person B) and sits in one cluster with gen00 and lfw02
        "cluster_id": [0, 1, 2, 3, 4, 0, 0, 5, 6],
        "is_keeper": [True, True, True, True, True, True, False, True, True],
        "reason": [None, None, None, None, None, None, "duplicate", None, None],
    })
    dedupe.to_parquet(tmp_path / "dedupe.parquet")
    attributes = pd.DataFrame({
        "face_id": ["gen00", "gen01", "gen02", "lfw00", "lfw01", "lfw02", "tpd01", "tpd02"],
        "gender_pred": ["male", "female", "male", "female", "male", "female", "female", None],
        "gender_conf": np.float32([0.9, 0.8, 0.7, 0.6, 0.9, 0.8, 0.7, np.nan]),
        "age_group_pred": ["20-29", "30-39", "40-49", "50-59", "60+", "0-12", "13-19", None],
        "age_group_conf": np.float32([0.5] * 7 + [np.nan]),
        "race_group_pred": ["white", "black", "asian", "indian", "others", "white", "black", None],
        "race_group_conf": np.float32([0.5] * 7 + [np.nan]),
        "attr_split": ["predict"] * 8,
    })
    return {"root": tmp_path, "attributes": attributes}


def build(project) -> pd.DataFrame:
    root = project["root"]
    faces = read_faces(root / "faces", SOURCES)
    dedupe = read_dedupe(root / "dedupe.parquet")
    return build_metadata(faces, dedupe, project["attributes"], SOURCES, BINS, root / "faces", root / "resized",
                          root / "raw", MetadataConfig(workers=1), progress=False)


def test_rows_are_the_surviving_kept_faces(project):
    meta = build(project)
    assert sorted(meta["face_id"]) == ["gen00", "gen01", "gen02", "lfw00", "lfw01", "lfw02", "tpd01", "tpd02"]
    assert meta["source"].astype(str).tolist() == sorted(meta["source"].astype(str).tolist())
    assert meta["crop_path"].str.endswith(".png").all()
    assert meta.loc[meta["face_id"] == "lfw00", "resized_path"].item().endswith("resized/lfw/lfw00.png")


def test_split_group_joins_groups_and_clusters(project):
    meta = build(project).set_index("face_id")
    sg = meta["split_group"]
    assert sg["lfw00"] == sg["lfw01"]  # same person
    assert sg["gen00"] == sg["lfw02"]  # same dedupe cluster (via the dropped tpdne duplicate too)
    assert sg["lfw00"] != sg["lfw02"] and sg["gen01"] != sg["gen02"] and sg["tpd01"] != sg["gen00"]
    assert sg["gen00"] == min("generated-faces:0", "lfw:B", "tpdne:0")


def test_split_groups_is_transitive_through_dropped_rows():
    dedupe = pd.DataFrame({"face_id": list("abcd"), "group": ["g1", "g2", "g2", "g3"], "cluster_id": [0, 0, 1, 2],
                           "survived": [True, False, True, True]})
    sg = split_groups(dedupe, pd.DataFrame({"face_id": [], "group": []}))
    assert sg["a"] == sg["b"] == sg["c"] == "g1" and sg["d"] == "g3"


def test_final_columns_prefer_source_labels(project):
    meta = build(project).set_index("face_id")
    assert meta.loc["gen00", "gender_from"] == "source"
    assert meta.loc["gen00", "race_group_from"] == "source"
    assert meta.loc["lfw00", "gender"] == "female" and meta.loc["lfw00", "gender_from"] == "model"
    assert meta.loc["lfw00", "age_group"] == "30-39" and meta.loc["lfw00", "age_group_from"] == "source"
    assert meta.loc["lfw01", "age_group"] == "60+" and meta.loc["lfw01", "age_group_from"] == "model"
    assert pd.isna(meta.loc["tpd02", "gender"]) and pd.isna(meta.loc["tpd02", "gender_from"])
    eth = meta.loc[meta["source"] == "generated-faces", "ethnicity_source"]
    race = meta.loc[eth.index, "race_group"].astype(str)
    assert ((eth == race) | ((eth == "latino") & (race == "others"))).all()


def test_measures_are_filled_and_an_unreadable_crop_gives_nulls(project):
    meta = build(project).set_index("face_id")
    good = meta.drop(index="tpd02")
    for col in ("brightness", "contrast", "sharpness", "noise", "yaw", "pitch", "roll"):
        assert good[col].notna().all(), col
    assert good["sharpness"].gt(0).all() and good["brightness"].between(0, 255).all()
    assert meta.loc["tpd02", ["brightness", "sharpness", "ita"]].isna().all()
    assert good["yaw"].abs().lt(1).all() and good["roll"].abs().lt(1e-3).all()  # symmetric default landmarks
    assert good["face_px"].eq(220).all() and good["eye_dist_px"].gt(0).all()


def test_schema_is_enforced_and_read_back_gives_the_same_dtypes(project, tmp_path):
    meta = build(project)
    path = tmp_path / "metadata.parquet"
    write_metadata(meta, path, SOURCES, BINS)
    back = pd.read_parquet(path)
    assert back.dtypes.to_dict() == pandas_dtypes(SOURCES, BINS)
    assert back.dtypes.to_dict() == meta.dtypes.to_dict()
    assert pq.read_schema(path).remove_metadata().equals(arrow_schema(SOURCES, BINS))
    pd.testing.assert_frame_equal(back, meta)
    assert list(back["source"].cat.categories) == SOURCES  # unused categories survive too


def test_wrong_dtype_fails_loudly(project, tmp_path):
    meta = build(project)
    with pytest.raises(SchemaError, match="yaw"):
        write_metadata(meta.assign(yaw=meta["yaw"].astype("float64")), tmp_path / "m.parquet", SOURCES, BINS)
    with pytest.raises(SchemaError, match="label"):
        validate_frame(meta.assign(label=meta["label"].astype(str)), SOURCES, BINS)
    with pytest.raises(SchemaError, match="missing"):
        validate_frame(meta.drop(columns=["ita"]), SOURCES, BINS)
    with pytest.raises(SchemaError, match="gender"):
        coerce(meta.assign(gender=meta["gender"].astype("object").fillna("unknown")), SOURCES, BINS)
    assert not (tmp_path / "m.parquet").exists()


@pytest.mark.slow  # renders every figure with matplotlib (~4 s here)
def test_dataset_card_is_written(project, tmp_path):
    meta = build(project)
    (tmp_path / "metrics" / "faces").mkdir(parents=True)
    (tmp_path / "metrics" / "faces" / "lfw.json").write_text('{"in": 4, "kept": 3, "rejected": 1}')
    (tmp_path / "metrics" / "faces" / "tpdne.json").write_text(
        '{"in": 5, "kept": 3, "rejected": 2, "rejected_by_reason": {"watermark": 2}}')
    (tmp_path / "metrics" / "dedupe.json").write_text('{"faces_in": 9, "by_source": {"tpdne": {"in": 3, "kept": 2}}}')
    # the crops stage's details: the context view refuses 1 face for the mark, the native view 2 (too small 1)
    (tmp_path / "reports" / "crops").mkdir(parents=True)
    (tmp_path / "reports" / "crops" / "tpdne.json").write_text(json.dumps({
        "in": 3, "kept": 1, "rejected": 2,
        "context": {"in": 3, "kept": 2, "rejected": 1, "rejected_by_reason": {"watermark": 1}},
        "native": {"in": 3, "kept": 1, "rejected": 2, "rejected_by_reason": {"native_too_small": 1, "watermark": 1}}}))
    summary = write_card(meta, tmp_path / "metrics", tmp_path / "reports" / "dataset.md",
                         tmp_path / "reports" / "figures", tmp_path / "reports" / "plots",
                         watermarks={"tpdne": [0.68, 0.93, 1.0, 1.0]}, crops_reports=tmp_path / "reports" / "crops")
    card = (tmp_path / "reports" / "dataset.md").read_text()
    assert "no training input keeps a declared mark" in card and "| tpdne | 0.68, 0.93, 1, 1 | 5 | 2 | 3 | 1 | 1 |" in card
    assert "| crops: context view | tpdne | 3 | 2 | 1 |" in card and "| crops: native view | tpdne | 3 | 1 | 2 |" in card
    assert card.index("| faces | lfw") < card.index("| crops: context view") < card.index("| dedupe | tpdne")
    assert "figures/gender.png" in card and "| faces | lfw | 4 | 3 | 1 |" in card
    assert "| dedupe | tpdne | 3 | 2 | 1 |" in card
    for name in ("gender", "age_group", "race_group", "skin_tone", "yaw", "sharpness", "jpeg_quality"):
        assert (tmp_path / "reports" / "figures" / f"{name}.png").stat().st_size > 1000
        shares = pd.read_csv(tmp_path / "reports" / "plots" / f"{name}.csv")
        assert shares["real"].sum() == pytest.approx(1.0, abs=0.01)
    real_female = (meta.loc[meta["label"] == "real", "gender"] == "female").mean()
    assert summary["gender"]["female"]["real"] == pytest.approx(real_female, abs=1e-3)


def test_surviving_faces_skips_stale_ids(project):
    root = project["root"]
    faces = read_faces(root / "faces", SOURCES)
    dedupe = read_dedupe(root / "dedupe.parquet")
    dedupe.loc[len(dedupe)] = {"face_id": "ghost", "source": "lfw", "group": "lfw:Z", "cluster_id": 9,
                               "survived": True}
    assert "ghost" not in set(surviving_faces(faces, dedupe)["face_id"])


def test_age_range_becomes_an_age_group_only_inside_one_bin():
    from realfake.metadata.build import age_range_to_group

    lo = pd.Series([0, 13, 20, 40, 65, None], dtype="Int16")
    hi = pd.Series([12, 19, 39, 64, 119, None], dtype="Int16")
    got = age_range_to_group(lo, hi, (0, 13, 20, 30, 40, 50, 60, 120))
    assert got.tolist() == ["0-12", "13-19", None, None, "60+", None]
