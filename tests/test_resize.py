"""Resize stage: training-size copies of the crops; bad crops are counted by reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from realfake.errors import UserError
from realfake.resize import ResizeConfig, resize_crop, run_resize

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
    (tmp_path / "params.yaml").write_text("resize:\n  size: 40\n")
    cmd = [sys.executable, str(REPO / "stages/resize.py"), "--source", "s", "--size", "24"]
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    assert {Image.open(p).size for p in (tmp_path / "data/resized/s").iterdir()} == {(24, 24)}
    assert json.loads((tmp_path / "metrics/resize/s.json").read_text())["size"] == 24
