"""Faces stage: geometry rules, real MTCNN on real and bad files, and the stage script end to end."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import assert_user_error, run_script
from PIL import Image

from realfake.core.params import load_section
from realfake.faces.alignment import align, pad_fraction, warp_crop
from realfake.faces.batch import face_id, process_batch
from realfake.faces.config import FacesConfig
from realfake.faces.detect import Face, FaceDetector, choose_primary

REPO = Path(__file__).resolve().parents[1]
RAW_SCHEMA = pa.schema([
    ("source", pa.string()), ("path", pa.string()), ("label", pa.string()), ("kind", pa.string()),
    ("bytes", pa.int64()), ("sha256", pa.string()), ("group", pa.string()), ("age_source", pa.int16()),
    ("gender_source", pa.string()), ("race_source", pa.string()), ("ethnicity_source", pa.string()),
    ("label_note", pa.string()),
])
LANDMARKS = np.array([[100.0, 120.0], [160.0, 120.0], [130.0, 150.0], [108.0, 180.0], [152.0, 180.0]])


# ---------------------------------------------------------------- files made by the tests

def jpeg(arr: np.ndarray, **kw) -> bytes:
    """Encode RGB array as JPEG."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def landscape(w: int = 320, h: int = 240) -> np.ndarray:
    """A face-free picture: sky gradient, green hills, a little texture."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w]
    sky = np.stack([90 + 60 * y / h, 140 + 60 * y / h, 230 - 20 * y / h], axis=2)
    ground = np.stack([50 + 0 * y, 120 + 30 * np.sin(x / 17.0), 40 + 0 * y], axis=2)
    horizon = h * 0.55 + 15 * np.sin(x / 40.0)
    img = np.where((y > horizon)[..., None], ground, sky) + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def bad_files() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expected reason) for the decode-level bad inputs."""
    good = jpeg(landscape())
    return {
        "zero.jpg": (b"", "empty_file"),
        "truncated.jpg": (good[: len(good) // 3], "truncated"),
        "text.jpg": (b"hello, I am a text file\n" * 10, "not_an_image"),
        "tiny.png": (_png(Image.new("RGB", (1, 1))), "too_small"),
        "landscape.jpg": (good, "no_face"),
    }


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def mirror_face(mirror: Path, member: str = "tpdne/0002.jpg", archive: str = "tpdne.zip") -> np.ndarray:
    """One real face image from the mirror as RGB."""
    with zipfile.ZipFile(mirror / archive) as zf:
        return np.asarray(Image.open(io.BytesIO(zf.read(member))).convert("RGB"))


def write_raw(root: Path, source: str, files: dict[str, bytes]) -> None:
    """A data/raw/<source>.parquet plus files, in the download stage's schema (docs/data.md)."""
    rows = []
    for rel, data in files.items():
        (root / "data/raw" / source / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "data/raw" / source / rel).write_bytes(data)
        rows.append({"source": source, "path": rel, "label": "real", "kind": None, "bytes": len(data),
                     "sha256": "0" * 64, "group": f"{source}:{rel}", "age_source": None, "gender_source": None,
                     "race_source": None, "ethnicity_source": None, "label_note": None})
    (root / "data/raw").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA), root / "data/raw" / f"{source}.parquet")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    import torch

    torch.set_num_threads(1)
    return FaceDetector(detect_size=256, min_face_src=64, pad=0.2)


# ---------------------------------------------------------------- geometry, no detector

def test_face_id_is_stable_and_distinct():
    assert face_id("lfw", "a/b.jpg") == face_id("lfw", "a/b.jpg")
    assert face_id("lfw", "a/b.jpg") != face_id("utkface", "a/b.jpg")
    assert len(face_id("x", "y")) == 16


def test_alignment_levels_eyes_and_fixes_eye_mouth_geometry():
    angle = math.radians(25)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    tilted = (LANDMARKS - 140) @ rot.T * 1.7 + [300, 260]  # rotated, scaled, moved face
    for pts in (LANDMARKS, tilted):
        al = align(pts, margin=1.6, crop_size=224)
        out = (al.matrix[:, :2] @ pts.T).T + al.matrix[:, 2]
        assert abs(out[0, 1] - out[1, 1]) < 1e-6  # eyes level
        eyes, mouth = (out[0] + out[1]) / 2, (out[3] + out[4]) / 2
        assert np.hypot(*(mouth - eyes)) == pytest.approx(224 / 1.6)  # eye-mouth distance fixed
        assert (eyes + mouth) / 2 == pytest.approx([112, 112])  # centred between eyes and mouth
    assert align(tilted, 1.6, 224).side == pytest.approx(1.7 * align(LANDMARKS, 1.6, 224).side)


def test_pad_fraction_zero_inside_and_measured_at_the_edge():
    al = align(LANDMARKS, 1.6, 224)  # crop side 96 px around (130, 150)
    assert pad_fraction(al, 400, 400) == 0.0
    # image cut at x = 130: half of the crop lies outside
    assert pad_fraction(al, 130, 400) == pytest.approx(0.5, abs=0.02)


def test_warp_crop_size_and_downscale_is_antialiased():
    stripes = np.zeros((400, 400, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-px stripes: aliasing would show as strong bands after shrinking
    al = align(LANDMARKS * 1.0, 1.6, 32)  # 96 source px -> 32 px: 3x shrink
    crop = warp_crop(stripes, al, 32)
    assert crop.shape == (32, 32, 3)
    assert crop[4:-4, 4:-4].std() < 20 and abs(crop.mean() - 127) < 15


def test_primary_rules():
    big_left = Face(np.array([0.0, 100, 200, 300]), 0.99, LANDMARKS)
    small_centre = Face(np.array([270.0, 170, 330, 230]), 0.95, LANDMARKS)
    confident = Face(np.array([500.0, 0, 560, 60]), 0.999, LANDMARKS)
    weak = Face(np.array([290.0, 190, 310, 210]), 0.5, LANDMARKS)
    faces = [big_left, small_centre, confident, weak]
    assert choose_primary(faces, 600, 400, "center", 0.9) == (small_centre, 3)
    assert choose_primary(faces, 600, 400, "largest", 0.9) == (big_left, 3)
    assert choose_primary(faces, 600, 400, "prob", 0.9) == (confident, 3)
    assert choose_primary([weak], 600, 400, "center", 0.9) == (None, 0)


def test_config_rejects_bad_params():
    from realfake.core.errors import UserError

    with pytest.raises(UserError):
        load_section(FacesConfig, {"faces": {"primary": "leftmost"}}, "faces")
    with pytest.raises(UserError):
        load_section(FacesConfig, {"faces": {"crop_sise": 128}}, "faces")
    assert load_section(FacesConfig, {"faces": {"crop_size": 128}}, "faces").crop_size == 128


# ---------------------------------------------------------------- real MTCNN

def test_bad_inputs_get_reasons_never_crash(tmp_path, detector):
    files = bad_files()
    items = []
    for k, (name, (data, _)) in enumerate(files.items()):
        (tmp_path / name).write_bytes(data)
        items.append((k, str(tmp_path / name), f"id{k}"))
    out = tmp_path / "crops"
    out.mkdir()
    records = dict(process_batch(items, str(out), FacesConfig(workers=1), detector))
    for k, (name, (_, reason)) in enumerate(files.items()):
        assert records[k]["status"] == "rejected", name
        assert records[k]["reason"] == reason, name
    assert records[4]["orig_width"] == 320 and records[4]["n_faces"] == 0
    assert not list(out.iterdir())


@pytest.mark.mirror
def test_real_face_is_kept_with_geometry(tmp_path, detector, mirror):
    face = mirror_face(mirror)
    (tmp_path / "f.jpg").write_bytes(jpeg(face))
    (tmp_path / "crops").mkdir()
    cfg = FacesConfig(workers=1, crop_size=128)
    [(_, rec)] = process_batch([(0, str(tmp_path / "f.jpg"), "abc")], str(tmp_path / "crops"), cfg, detector)
    assert rec["status"] == "kept" and rec["reason"] is None, rec["reason_detail"]
    assert rec["n_faces"] == 1 and rec["prob"] > 0.9 and rec["pad_fraction"] == 0.0
    x1, y1, x2, y2 = rec["box"]
    h, w = face.shape[:2]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h  # original coordinates, inside the frame
    assert rec["scale"] == pytest.approx(128 / rec["face_px"])
    crop = Image.open(tmp_path / "crops" / "abc.png")
    assert crop.size == (128, 128) and crop.mode == "RGB" and crop.format == "PNG"


@pytest.mark.mirror
def test_exif_rotated_face_is_found_upright(tmp_path, detector, mirror):
    face = mirror_face(mirror)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated 90 CW; orientation 8 tells the viewer to rotate it back
    (tmp_path / "r.jpg").write_bytes(jpeg(np.ascontiguousarray(np.rot90(face, k=-1)), exif=exif))
    (tmp_path / "crops").mkdir()
    [(_, rec)] = process_batch([(0, str(tmp_path / "r.jpg"), "r")], str(tmp_path / "crops"),
                               FacesConfig(workers=1), detector)
    assert rec["exif_rotated"] and rec["status"] == "kept", rec["reason_detail"]
    lm = np.asarray(rec["landmarks"]).reshape(5, 2)
    assert lm[3:, 1].mean() > lm[:2, 1].mean()  # mouth below the eyes: the face was turned upright


@pytest.mark.mirror
def test_several_faces_primary_rule(tmp_path, detector, mirror):
    a = mirror_face(mirror, "tpdne/0002.jpg")
    b = np.asarray(Image.fromarray(mirror_face(mirror, "tpdne/0003.jpg")).resize((230, 230), Image.LANCZOS))
    h = a.shape[0]
    canvas = np.full((h, a.shape[1] + 2 * b.shape[1] + 40, 3), 90, np.uint8)
    canvas[:, : a.shape[1]] = a  # a big face on the left
    cx = canvas.shape[1] // 2 - b.shape[1] // 2
    canvas[(h - 230) // 2: (h - 230) // 2 + 230, cx: cx + 230] = b  # a smaller face in the centre
    (tmp_path / "two.jpg").write_bytes(jpeg(canvas))
    (tmp_path / "crops").mkdir()
    centre_x = {}
    for rule in ("center", "largest"):
        [(_, rec)] = process_batch([(0, str(tmp_path / "two.jpg"), rule)], str(tmp_path / "crops"),
                                   FacesConfig(workers=1, primary=rule), detector)
        assert rec["status"] == "kept" and rec["n_faces"] == 2
        centre_x[rule] = (rec["box"][0] + rec["box"][2]) / 2
    assert abs(centre_x["center"] - canvas.shape[1] / 2) < 40
    assert centre_x["largest"] < a.shape[1]


# ---------------------------------------------------------------- the stage script

PARAMS = """faces:
  crop_size: 96
  margin: 1.6
  min_prob: 0.9
  min_face_px: 64
  max_pad_fraction: 0.05
  primary: center
  detect_size: 256
  detect_pad: 0.2
  batch_size: 4
  workers: {workers}
resize:
  size: 48
"""


@pytest.mark.slow  # faces and resize stage scripts, real MTCNN (~10 s here)
def test_stage_end_to_end_reconciles(tmp_path, mirror_or_none):
    files = {name: data for name, (data, _) in bad_files().items()}
    if mirror_or_none is not None:  # real faces too, when the mirror is here
        for k, member in enumerate(["tpdne/0002.jpg", "tpdne/0003.jpg", "tpdne/0007.jpg"]):
            files[f"faces/{k}.jpg"] = jpeg(mirror_face(mirror_or_none, member))
    write_raw(tmp_path, "x", files)
    (tmp_path / "params.yaml").write_text(PARAMS.format(workers=2))
    proc = run_script(tmp_path, "faces.py", "--source", "x")
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "data/faces/x.parquet")
    metrics = json.loads((tmp_path / "metrics/faces/x.json").read_text())
    details = json.loads((tmp_path / "reports/faces/x.json").read_text())
    assert set(metrics) == {"in", "kept", "rejected"}  # the headline; the rest is in reports/
    assert len(df) == len(files) == metrics["in"]
    assert metrics["in"] == metrics["kept"] + metrics["rejected"]
    assert sum(details["rejected_by_reason"].values()) == metrics["rejected"]
    assert "seconds" not in details and "images_per_s" not in details  # timings go to logs/timings.jsonl
    assert any(json.loads(line)["stage"] == "faces@x" for line in (tmp_path / "logs/timings.jsonl").open())
    assert list(df["path"]) == list(files) and (df["source"] == "x").all()  # raw columns carried over
    assert df.loc[df.status == "rejected", "reason"].notna().all()
    assert df.loc[df.status == "kept", "reason"].isna().all()
    expected = {name: reason for name, (_, reason) in bad_files().items()}
    got = dict(zip(df["path"], df["reason"], strict=True))
    assert all(got[name] == reason for name, reason in expected.items())
    kept = df[df.status == "kept"]
    assert len(kept) == (3 if mirror_or_none is not None else 0)
    crops = sorted(p.name for p in (tmp_path / "data/faces/x").iterdir())
    assert crops == sorted(kept["crop_path"])
    assert all(Image.open(tmp_path / "data/faces/x" / c).size == (96, 96) for c in crops)
    assert Image.open(tmp_path / "plots/faces/x.png").format == "PNG"

    proc = run_script(tmp_path, "resize.py", "--source", "x")
    assert proc.returncode == 0, proc.stderr[-2000:]
    resize_metrics = json.loads((tmp_path / "metrics/resize/x.json").read_text())
    assert resize_metrics["in"] == len(kept) == resize_metrics["kept"] + resize_metrics["rejected"]
    assert all(Image.open(p).size == (48, 48) for p in (tmp_path / "data/resized/x").iterdir())


def test_stage_empty_source_writes_full_schema(tmp_path):
    write_raw(tmp_path, "off", {})
    (tmp_path / "params.yaml").write_text(PARAMS.format(workers=1))
    proc = run_script(tmp_path, "faces.py", "--source", "off")
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pq.read_table(tmp_path / "data/faces/off.parquet")
    assert table.num_rows == 0
    assert {"path", "label", "face_id", "status", "reason", "box", "landmarks", "pad_fraction", "transform"} <= set(
        table.column_names)
    metrics = json.loads((tmp_path / "metrics/faces/off.json").read_text())
    assert metrics["in"] == metrics["kept"] == metrics["rejected"] == 0
    assert (tmp_path / "data/faces/off").is_dir() and (tmp_path / "plots/faces/off.png").is_file()


def test_stage_missing_input_is_a_user_error(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS.format(workers=1))
    assert_user_error(run_script(tmp_path, "faces.py", "--source", "nothing"), "download")


@pytest.fixture
def mirror_or_none():
    """The mirror if present, else None (the test then runs on made-up files only)."""
    from realfake.core.params import find_mirror

    return find_mirror(REPO)


MIRROR_SOURCES = ["boredhumans", "ciplab-photoshop", "dfdc-faceswap", "ffhq", "ffhq-1024", "generated-faces", "lfw",
                  "stylegan-140k", "tpdne", "utkface"]


@pytest.mark.mirror_full
@pytest.mark.parametrize("source", MIRROR_SOURCES)
def test_whole_mirror_source(tmp_path, mirror, source):
    """Every image of a mirror source: reconciled counts, rare padding, not mostly upscaled at 64 px."""
    from realfake.faces.stage import run_source

    with zipfile.ZipFile(mirror / f"{source}.zip") as zf:
        names = [n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png"))]
        write_raw(tmp_path, source, {n: zf.read(n) for n in names})
    m = run_source(source, FacesConfig(), tmp_path / "data/raw", tmp_path / "data/faces",
                   tmp_path / "metrics/faces", tmp_path / "plots/faces", progress=False)
    assert m["in"] == len(names) == m["kept"] + m["rejected"]
    assert m["kept"] >= 0.8 * m["in"]
    assert m["pad"]["share_padded"] <= 0.2
    df = pd.read_parquet(tmp_path / "data/faces" / f"{source}.parquet")
    assert (df.loc[df.status == "kept", "face_px"] < 64).mean() == 0
