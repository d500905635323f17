"""The pollinations watermark: where it is, measured on real images, and that no kept crop reads it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.imageio import read_image
from realfake.core.params import load_params, load_section
from realfake.core.watermark import Watermark, crop_reads_box, measure_box, stroke_share
from realfake.faces.alignment import align, warp_crop
from realfake.faces.config import FacesConfig
from realfake.faces.stage import run_source
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.embedded_sample import POLLINATIONS_WATERMARK
from realfake.ingest.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
FACES = load_section(FacesConfig, {"faces": {**PARAMS["faces"], "workers": 1}}, "faces")


def declared() -> Watermark:
    return resolve_source("pollinations", PARAMS["sources"]["pollinations"], "mirror").watermark


def mirror_images(mirror: Path, names: list[str] | None = None, first: int | None = None) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(mirror / "pollinations.zip") as zf:
        chosen = names or sorted(n for n in zf.namelist() if n.endswith(".jpg"))[:first]
        return {n: np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB")) for n in chosen}


@pytest.mark.mirror
def test_declared_box_holds_the_watermark_measured_on_the_mirror(mirror):
    images = list(mirror_images(mirror, first=60).values())
    box, marked = measure_box(images)
    assert marked >= 10, "about a quarter of pollinations images carry the mark"
    x1, y1, x2, y2 = declared().box
    assert box is not None and x1 <= box[0] and y1 <= box[1] and box[2] <= x2 and box[3] <= y2, (box, declared())
    assert (box[2] - box[0]) * 384 > 80 and (box[3] - box[1]) * 384 > 10  # the "pollinations.ai" text itself
    assert declared().box == POLLINATIONS_WATERMARK  # the embedded sample picks its watermarked images with it


def faces_of(tmp_path: Path, spec: dict, profile: str) -> tuple[pd.DataFrame, dict]:
    """Download and crop one source with the project's params (real MTCNN)."""
    src = resolve_source("pollinations", spec, profile)
    run_download(src, load_section(DownloadConfig, PARAMS, "download"), tmp_path / "raw", tmp_path / "d.json")
    metrics = run_source("pollinations", FACES, tmp_path / "raw", tmp_path / "faces", tmp_path / "m", tmp_path / "p",
                         progress=False)
    return pd.read_parquet(tmp_path / "faces" / "pollinations.parquet"), metrics


def assert_crops_never_read(table: pd.DataFrame, raw: Path, mark: Watermark) -> int:
    """Every kept crop: geometry clear of the box, and painting the box magenta leaves its pixels unchanged."""
    kept = table[table["status"] == "kept"]
    for row in kept.itertuples():
        rgb = read_image(raw / row.path).rgb.copy()
        h, w = rgb.shape[:2]
        box_px = mark.pixels(w, h)
        assert not crop_reads_box(row.transform, FACES.crop_size, w, h, box_px), row.path
        al = align(np.asarray(row.landmarks, dtype=np.float64).reshape(5, 2), FACES.margin, FACES.crop_size)
        before = warp_crop(rgb, al, FACES.crop_size)
        x1, y1, x2, y2 = (int(v) for v in (np.floor(box_px[0]), np.floor(box_px[1]), np.ceil(box_px[2]),
                                           np.ceil(box_px[3])))
        rgb[y1:y2, x1:x2] = (255, 0, 255)
        assert np.array_equal(before, warp_crop(rgb, al, FACES.crop_size)), row.path
    return len(kept)


@pytest.mark.mirror
@pytest.mark.slow
def test_no_kept_crop_of_watermarked_mirror_images_reads_the_mark(mirror, tmp_path):
    """A fixed sample: the first 12 watermarked pollinations images by name, through download and faces."""
    mark = declared()
    marked = [n for n, rgb in mirror_images(mirror, first=60).items()
              if stroke_share(rgb, mark.pixels(rgb.shape[1], rgb.shape[0])) > 0.1][:12]
    assert len(marked) == 12
    spec = {**PARAMS["sources"]["pollinations"], "include": marked}
    table, metrics = faces_of(tmp_path, spec, "mirror")
    assert metrics["in"] == 12 == metrics["kept"] + metrics["rejected"]
    assert assert_crops_never_read(table, tmp_path / "raw" / "pollinations", mark) >= 8


@pytest.mark.mirror_full
def test_no_kept_crop_of_any_pollinations_image_reads_the_mark(mirror, tmp_path):
    table, metrics = faces_of(tmp_path, PARAMS["sources"]["pollinations"], "mirror")
    assert metrics["in"] == 1001 == metrics["kept"] + metrics["rejected"]
    kept = assert_crops_never_read(table, tmp_path / "raw" / "pollinations", declared())
    (tmp_path / "summary.json").write_text(json.dumps({"kept": kept, **metrics["rejected_by_reason"]}))
    print(json.dumps({"kept": kept, "rejected": metrics["rejected_by_reason"]}))


@pytest.mark.slow
def test_a_crop_reaching_a_declared_box_is_rejected_with_a_reason(tmp_path):
    """On the embedded sample: declare a box over the lower half of the image; every crop reaches it."""
    spec = {**PARAMS["sources"]["pollinations"], "watermark": {"box": [0.0, 0.5, 1.0, 1.0]}}
    table, metrics = faces_of(tmp_path, spec, "sample")
    assert metrics["kept"] == 0 and metrics["rejected_by_reason"]["watermark"] >= 10
    assert metrics["in"] == metrics["kept"] + metrics["rejected"]
    rows = table[table["reason"] == "watermark"]
    assert rows["reason_detail"].str.contains("0.5").all() and rows["crop_path"].isna().all()
    assert not list((tmp_path / "faces" / "pollinations").glob("*.png"))


def test_crop_geometry_against_a_box_includes_the_mirrored_border():
    al = align(np.array([[40, 40], [60, 40], [50, 50], [42, 60], [58, 60]], dtype=float), 1.6, 64)
    matrix = al.matrix.reshape(-1)
    assert not crop_reads_box(matrix, 64, 100, 100, (80, 90, 100, 100))
    assert crop_reads_box(matrix, 64, 100, 100, (45, 45, 55, 55))
    # a crop that runs past the bottom edge reads the rows above it again (reflected border)
    low = align(np.array([[40, 80], [60, 80], [50, 90], [42, 100], [58, 100]], dtype=float), 1.6, 64)
    assert crop_reads_box(low.matrix.reshape(-1), 64, 100, 102, (30, 97, 70, 99))


@pytest.mark.parametrize("spec", [{"box": [0.9, 0.9, 0.8, 1.0]}, {"box": [0, 0, 1]}, {"where": "corner"},
                                  {"box": [0, 0, 1, 1.2]}])
def test_malformed_watermark_is_a_clear_error(spec):
    with pytest.raises(UserError, match="watermark"):
        resolve_source("x", {"label": "fake", "kind": "diffusion", "watermark": spec,
                             "profiles": {"p": {"uri": "x.zip"}}}, "p")
