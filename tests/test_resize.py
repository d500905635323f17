"""Resize stage: training-size copies of the crops; bad crops are counted by reason."""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter, JpegImagePlugin

from realfake.core.errors import UserError
from realfake.faces.resize import ResizeConfig, reencode_jpeg, resize_crop, run_resize

REPO = Path(__file__).resolve().parents[1]


def make_faces(root: Path, source: str, crop_size: int = 96) -> pd.DataFrame:
    """A faces table with real PNG crops plus the bad cases: unreadable, missing, not square, rejected row."""
    rng = np.random.default_rng(0)
    crops = root / "data/faces" / source
    crops.mkdir(parents=True)
    rows = []
    for k in range(4):
        arr = rng.integers(0, 255, (crop_size, crop_size, 3), dtype=np.uint8)
        Image.fromarray(arr).save(crops / f"good{k}.png")
        rows.append((f"good{k}", "kept", f"good{k}.png", 150.0 - 40 * k))
    (crops / "text.png").write_text("not a png")
    rows.append(("text", "kept", "text.png", 120.0))
    rows.append(("gone", "kept", "gone.png", 120.0))
    Image.new("RGB", (crop_size, crop_size // 2)).save(crops / "wide.png")
    rows.append(("wide", "kept", "wide.png", 120.0))
    rows.append(("nof", "rejected", None, None))  # rejected by faces: not an input of resize
    df = pd.DataFrame(rows, columns=["face_id", "status", "crop_path", "face_px"])
    df.to_parquet(root / "data/faces" / f"{source}.parquet", index=False)
    return df


def make_jpeg_faces(root: Path, source: str, quality: int, n: int = 3, crop_size: int = 96) -> dict:
    """A source whose images were JPEGs at `quality`: crops are the decoded JPEGs stored as PNG (as faces does).

    Returns the source encoder's quantization tables.
    """
    rng = np.random.default_rng(quality)
    crops = root / "data/faces" / source
    crops.mkdir(parents=True)
    ramp = np.linspace(0, 160, crop_size)
    rows, tables = [], {}
    for k in range(n):
        noise = Image.fromarray(rng.integers(0, 96, (crop_size, crop_size, 3), dtype=np.uint8))
        noise = np.asarray(noise.filter(ImageFilter.GaussianBlur(1.5)), dtype=float)
        photo = (noise + ramp[None, :, None] * [1.0, 0.7, 0.4]).clip(0, 255).astype(np.uint8)  # smooth, photo-like
        buf = BytesIO()
        Image.fromarray(photo).save(buf, format="JPEG", quality=quality)
        with Image.open(buf) as jpg:
            tables = jpg.quantization
            jpg.convert("RGB").save(crops / f"f{k}.png")
        rows.append((f"f{k}", "kept", f"f{k}.png", 150.0))
    df = pd.DataFrame(rows, columns=["face_id", "status", "crop_path", "face_px"])
    df.to_parquet(root / "data/faces" / f"{source}.parquet", index=False)
    return tables


def test_reencode_jpeg_gives_every_source_one_encoder(tmp_path):
    """Sources saved at JPEG quality 95 and 40 end up with the same tables; the stored PNG is the decoded JPEG."""
    faces, metrics = tmp_path / "data/faces", tmp_path / "metrics/resize"
    source_tables = {s: make_jpeg_faces(tmp_path, s, q) for s, q in (("q95", 95), ("q40", 40))}
    assert source_tables["q95"] != source_tables["q40"]  # the two sources really differ in compression
    jpeg_cfg = ResizeConfig.from_params({"size": 48, "reencode": "jpeg", "jpeg_quality": 75})
    produced = []
    for source in source_tables:
        m = run_resize(source, jpeg_cfg, faces, tmp_path / "jpeg", metrics, progress=False)
        assert m["reencode"] == "jpeg" and m["jpeg_quality"] == 75 and m["in"] == m["kept"] == 3
        plain = run_resize(source, ResizeConfig(size=48), faces, tmp_path / "none", metrics, progress=False)
        assert plain["reencode"] == "none" and "jpeg_quality" not in plain
        for crop in sorted((faces / source).glob("*.png")):
            resized = resize_crop(crop, 48)
            data, decoded = reencode_jpeg(resized, 75)
            with Image.open(BytesIO(data)) as jpg:
                assert jpg.format == "JPEG" and "progressive" not in jpg.info
                assert JpegImagePlugin.get_sampling(jpg) == 2  # 4:2:0
                produced.append(jpg.quantization)
            stored = np.asarray(Image.open(tmp_path / "jpeg" / source / crop.name))
            assert stored.shape == (48, 48, 3) and np.array_equal(stored, decoded)
            unchanged = np.asarray(Image.open(tmp_path / "none" / source / crop.name))
            assert np.array_equal(unchanged, resized)  # reencode: none is the plain resize, as before
            assert not np.array_equal(stored, unchanged)
    assert len(produced) == 6 and all(t == produced[0] for t in produced)
    assert produced[0] not in source_tables.values()
    assert produced[0][0][0] == 8  # IJG luma DC step 16, scaled by quality 75 (x0.5)


def test_reencode_jpeg_is_deterministic(tmp_path):
    """Same crops, same params: byte-identical PNGs, so DVC sees no change on a rerun."""
    make_jpeg_faces(tmp_path, "s", 40)
    cfg = ResizeConfig(size=32, reencode="jpeg", jpeg_quality=60)
    outs = []
    for run in ("a", "b"):
        run_resize("s", cfg, tmp_path / "data/faces", tmp_path / run, tmp_path / "metrics", progress=False)
        outs.append({p.name: p.read_bytes() for p in (tmp_path / run / "s").iterdir()})
    assert len(outs[0]) == 3 and outs[0] == outs[1]


def test_resize_counts_every_kept_crop(tmp_path):
    make_faces(tmp_path, "s")
    m = run_resize("s", ResizeConfig(size=32), tmp_path / "data/faces", tmp_path / "data/resized",
                   tmp_path / "metrics/resize", progress=False)
    assert m["in"] == 7 and m["kept"] == 4 and m["rejected"] == 3
    assert m["in"] == m["kept"] + m["rejected"] == m["kept"] + sum(m["rejected_by_reason"].values())
    assert m["rejected_by_reason"] == {"crop_missing": 1, "crop_not_square": 1, "crop_unreadable": 1}
    out = sorted(p.name for p in (tmp_path / "data/resized/s").iterdir())
    assert out == [f"good{k}.png" for k in range(4)]
    assert all(Image.open(tmp_path / "data/resized/s" / n).size == (32, 32) for n in out)
    # face_px 150, 110, 70, 30 at size 32: one source face is smaller than the training size
    assert m["share_upscaled"] == pytest.approx(0.25)
    assert json.loads((tmp_path / "metrics/resize/s.json").read_text()) == json.loads(json.dumps(m))


def test_resize_is_lanczos_and_deterministic(tmp_path):
    arr = np.zeros((96, 96, 3), np.uint8)
    arr[:, ::2] = 255  # 1-px stripes average to grey when shrunk with an antialiasing filter
    Image.fromarray(arr).save(tmp_path / "c.png")
    small = resize_crop(tmp_path / "c.png", 32)
    assert small.shape == (32, 32, 3) and small[4:-4, 4:-4].std() < 10
    assert np.array_equal(small, resize_crop(tmp_path / "c.png", 32))
    assert np.array_equal(resize_crop(tmp_path / "c.png", 96), arr)  # same size: untouched


def test_resize_config_validation():
    with pytest.raises(UserError):
        ResizeConfig.from_params({"size": 3})
    with pytest.raises(UserError):
        ResizeConfig.from_params({"sise": 64})
    assert ResizeConfig.from_params({"size": 80}).size == 80
    for bad in ({"reencode": "webp"}, {"reencode": None}, {"jpeg_quality": 0}, {"jpeg_quality": 101},
                {"jpeg_quality": "75"}, {"jpeg_quality": True}, {"reencode": "jpeg", "jpeg_quality": 7.5}):
        with pytest.raises(UserError):
            ResizeConfig.from_params(bad)
    cfg = ResizeConfig.from_params({"reencode": "jpeg", "jpeg_quality": 90})
    assert (cfg.reencode, cfg.jpeg_quality) == ("jpeg", 90)
    assert ResizeConfig.from_params({}).reencode == "none"  # default: unchanged behaviour


def test_resize_stage_script(tmp_path):
    make_faces(tmp_path, "s")
    (tmp_path / "params.yaml").write_text("resize:\n  size: 40\n")
    cmd = [sys.executable, str(REPO / "stages/resize.py"), "--source", "s"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = {p.name: p.read_bytes() for p in (tmp_path / "data/resized/s").iterdir()}
    assert len(first) == 4 and all(Image.open(tmp_path / "data/resized/s" / n).size == (40, 40) for n in first)
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    second = {p.name: p.read_bytes() for p in (tmp_path / "data/resized/s").iterdir()}
    assert first == second  # byte-identical rerun: DVC sees no change
    proc = subprocess.run([sys.executable, str(REPO / "stages/resize.py"), "--source", "none"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_resize_stage_size_argument_overrides_params(tmp_path):
    """dvc.yaml passes --size ${resize.size} (DVC's run cache ignores params named `size`)."""
    make_faces(tmp_path, "s")
    (tmp_path / "params.yaml").write_text("resize:\n  size: 40\n  reencode: jpeg\n  jpeg_quality: 60\n")
    cmd = [sys.executable, str(REPO / "stages/resize.py"), "--source", "s", "--size", "24"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    assert {Image.open(p).size for p in (tmp_path / "data/resized/s").iterdir()} == {(24, 24)}
    m = json.loads((tmp_path / "metrics/resize/s.json").read_text())
    assert (m["size"], m["reencode"], m["jpeg_quality"]) == (24, "jpeg", 60)  # the other params still come through
