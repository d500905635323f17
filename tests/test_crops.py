"""The crops stage (docs/views.md): native windows are the original's own pixels at recorded integer offsets, shifted
inside the frame, rejected when the frame is smaller, never reading a declared watermark; context crops obey the pad
and watermark rules; in = kept + rejected per view. Real images from the embedded sample through the real download
and faces stages (real MTCNN)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from realfake.core.imageio import read_image
from realfake.core.params import load_params, load_section
from realfake.core.training_image import ResizeConfig
from realfake.core.watermark import Watermark, crop_reads_box
from realfake.crops.context import candidate_margins, context_alignment, context_view
from realfake.crops.native import NativeWindow, face_geometry, place_window, window_reads_box
from realfake.crops.stage import run_crops
from realfake.crops.views import CropsConfig, NativeConfig, crops_config, recorded_view, view_record
from realfake.faces.config import FacesConfig
from realfake.faces.stage import run_source
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")
FACES = load_section(FacesConfig, {"faces": {**PARAMS["faces"], "workers": 1}}, "faces")
RESIZE = load_section(ResizeConfig, PARAMS, "resize")
CROPS = replace(crops_config(PARAMS), workers=1)
LFW_PEOPLE = ["Amram_Mitzna", "Bill_Duffey", "Cathy_Chisholm", "Colleen_OClair", "Dany_Heatley", "Emmy_Rossum"]


def png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def faced(tmp_path_factory) -> Path:
    """pollinations (all 16, a declared watermark) and six LFW people (250 px frames), downloaded and through faces."""
    root = tmp_path_factory.mktemp("crops")
    specs = {"pollinations": PARAMS["sources"]["pollinations"],
             "lfw": {**PARAMS["sources"]["lfw"], "include": [f"lfw-deepfunneled/{p}/*.jpg" for p in LFW_PEOPLE]}}
    for name, spec in specs.items():
        src = resolve_source(name, spec, "sample")
        run_download(src, load_section(DownloadConfig, PARAMS, "download"), root / "raw", root / f"{name}-d.json")
        run_source(name, FACES, root / "raw", root / "faces", root / "m", root / "p", progress=False)
    return root


def crops_of(root: Path, source: str, cfg: CropsConfig = CROPS, tag: str = "default") -> tuple[pd.DataFrame, dict, Path]:
    """run_crops into root/<tag>: the table, the metrics headline (with each view's `<view>_rejected` from the
    report) and the crops folder."""
    out = root / tag
    run_crops(source, cfg, FACES.margin, RESIZE, FACES.max_pixels, root / "raw", root / "faces", out / "crops",
              out / "metrics", out / "reports", progress=False)
    table = pd.read_parquet(out / "crops" / f"{source}.parquet")
    metrics = json.loads((out / "metrics" / f"{source}.json").read_text())
    report = json.loads((out / "reports" / f"{source}.json").read_text())
    assert set(metrics) == {"in", "kept", "rejected"}
    metrics.update({f"{view}_rejected": report[view]["rejected"] for view in ("native", "context")})
    return table, metrics, out / "crops" / source


# ---------------------------------------------------------------- geometry (no images)


def test_window_is_centred_and_shifted_inside_the_frame_by_whole_pixels():
    assert place_window(np.array([100.0, 80.0]), 64, 300, 200) == NativeWindow(68, 48, 64, 0, 0)
    assert place_window(np.array([10.4, 195.0]), 64, 300, 200) == NativeWindow(0, 136, 64, 22, -27)
    assert place_window(np.array([10.0, 10.0]), 64, 63, 200) is None  # narrower than the window: never upscaled
    assert place_window(np.array([10.0, 10.0]), 64, 64, 64) == NativeWindow(0, 0, 64, 22, 22)  # the whole frame


def test_window_reads_a_box_only_when_a_pixel_overlaps_it():
    window = NativeWindow(10, 10, 20, 0, 0)  # pixels 10..29
    assert not window_reads_box(window, (30.0, 0.0, 40.0, 40.0))
    assert window_reads_box(window, (29.5, 0.0, 40.0, 40.0))  # box reaches into pixel 29
    assert not window_reads_box(window, (0.0, 0.0, 10.0, 10.0))  # ends where the window starts
    assert window_reads_box(window, (0.0, 0.0, 10.2, 10.2))


def test_view_record_names_the_view_and_its_params():
    assert view_record("aligned", PARAMS) == {"name": "aligned", "size": PARAMS["resize"]["size"]}
    assert view_record("native", PARAMS) == {"name": "native", "size": 128, "native": {"side": 128}}
    assert view_record("context", PARAMS)["context"] == {"margin": 2.2, "size": 96, "max_pad_fraction": 0.05,
                                                         "max_upscale": None, "fit": "shrink", "min_margin": 1.6}


def test_shrink_tries_margins_from_the_widest_down_to_min_margin():
    assert candidate_margins(CROPS.context)[:3] == [2.2, 2.15, 2.1] and candidate_margins(CROPS.context)[-1] == 1.6
    assert candidate_margins(replace(CROPS.context, min_margin=1.62))[-2:] == [1.65, 1.62]
    assert candidate_margins(replace(CROPS.context, fit="reject")) == [2.2]


def test_a_checkpoint_from_before_the_fit_policy_keeps_rejecting_padded_faces():
    old = {"view": {"name": "context", "size": 96, "context": {"margin": 2.2, "size": 96, "max_pad_fraction": 0.05,
                                                               "max_upscale": 1.0}}}
    assert recorded_view(old)["context"] == {"margin": 2.2, "size": 96, "max_pad_fraction": 0.05, "max_upscale": 1.0,
                                             "fit": "reject", "min_margin": 2.2}


# ---------------------------------------------------------------- the stage on real images


@pytest.mark.slow
def test_native_pixels_are_the_originals_at_the_recorded_offsets(faced):
    table, metrics, folder = crops_of(faced, "lfw")
    faces = pd.read_parquet(faced / "faces" / "lfw.parquet").set_index("face_id")
    kept = table[table["native_status"] == "kept"]
    assert len(kept) >= 6 and metrics["native_rejected"] == 0
    for row in kept.itertuples():
        rgb = read_image(faced / "raw" / "lfw" / faces.loc[row.face_id, "path"]).rgb
        x0, y0, side = row.native_x0, row.native_y0, row.native_side
        assert side == CROPS.native.side
        stored = png(folder / row.native_path)
        assert np.array_equal(stored, rgb[y0:y0 + side, x0:x0 + side])  # no resampling: the very pixels
        centre, face_px = face_geometry(faces.loc[row.face_id, "landmarks"], FACES.margin)
        assert abs(face_px - faces.loc[row.face_id, "face_px"]) < 1e-3 and abs(row.face_px - face_px) < 1e-3
        assert np.abs(np.array([x0 - row.native_shift_x, y0 - row.native_shift_y]) + side / 2 - centre).max() <= 0.5


@pytest.mark.slow
def test_windows_near_the_edge_shift_inside_and_frames_smaller_than_the_window_are_rejected(faced):
    near = replace(CROPS, native=NativeConfig(side=240))  # LFW frames are 250 px: most windows meet an edge
    table, _, folder = crops_of(faced, "lfw", near, "side240")
    shifted = table[(table["native_shift_x"] != 0) | (table["native_shift_y"] != 0)]
    assert len(shifted) >= 1 and (table["native_status"] == "kept").all()
    assert ((table["native_x0"] >= 0) & (table["native_x0"] + 240 <= table["orig_width"])).all()
    assert ((table["native_y0"] >= 0) & (table["native_y0"] + 240 <= table["orig_height"])).all()

    small = replace(CROPS, native=NativeConfig(side=256))
    table, metrics, folder = crops_of(faced, "lfw", small, "side256")
    assert (table["native_reason"] == "native_too_small").all() and table["native_path"].isna().all()
    assert metrics["native_rejected"] == metrics["in"] and not list((folder / "native").iterdir())
    default = crops_of(faced, "lfw")[0]
    # one view's rejection leaves the other alone
    assert table["context_status"].tolist() == default["context_status"].tolist() and (table["context_status"] == "kept").any()


@pytest.mark.slow
def test_context_crops_that_would_be_upscaled_are_rejected_only_under_max_upscale(faced):
    """LFW's small faces: by default upscaled (every face gets a crop); max_upscale 1.0 refuses them."""
    from realfake.faces.alignment import align

    table, metrics, _ = crops_of(faced, "lfw", replace(CROPS, context=replace(CROPS.context, max_upscale=1.0)), "up1")
    size = CROPS.context.size
    faces = pd.read_parquet(faced / "faces" / "lfw.parquet").set_index("face_id")
    side = {fid: align(np.asarray(faces.loc[fid, "landmarks"], dtype=np.float32).astype(np.float64).reshape(5, 2),
                       CROPS.context.margin, size).side for fid in table["face_id"]}
    small = table["face_id"].map(side) < size
    assert small.any() and (~small).any(), "the sample's LFW faces lie on both sides of the output size"
    assert (table.loc[small, "context_reason"] == "upscale").all()
    assert (table.loc[~small, "context_status"] == "kept").all()
    assert metrics["context_rejected"] == int(small.sum())
    allowed, details, _ = crops_of(faced, "lfw")
    assert (allowed["context_status"] == "kept").all()
    assert details["context_rejected"] == 0


@pytest.mark.slow
def test_in_is_kept_plus_rejected_per_view_and_the_headline_says_so(faced):
    table, metrics, folder = crops_of(faced, "pollinations")
    details = json.loads((faced / "default" / "reports" / "pollinations.json").read_text())
    faces = json.loads((faced / "m" / "pollinations.json").read_text())
    assert metrics["in"] == faces["kept"] == len(table)
    for view in ("native", "context"):
        d = details[view]
        assert d["in"] == d["kept"] + d["rejected"] == len(table)
        assert d["rejected"] == sum(d["rejected_by_reason"].values()) == metrics[f"{view}_rejected"]
        assert len(list((folder / view).glob("*.png"))) == d["kept"]
    assert metrics["kept"] + metrics["rejected"] == metrics["in"]


@pytest.mark.slow
def test_no_kept_crop_of_either_view_reads_the_pollinations_watermark(faced):
    """The declared box, as the faces stage's rule: geometry clear, and painting the box changes no kept pixel."""
    table, metrics, folder = crops_of(faced, "pollinations")
    faces = pd.read_parquet(faced / "faces" / "pollinations.parquet").set_index("face_id")
    mark = Watermark(tuple(PARAMS["sources"]["pollinations"]["watermark"]["box"]))
    checked = 0
    for row in table.itertuples():
        rgb = read_image(faced / "raw" / "pollinations" / faces.loc[row.face_id, "path"]).rgb.copy()
        h, w = rgb.shape[:2]
        box_px = mark.pixels(w, h)
        x1, y1, x2, y2 = (int(v) for v in (np.floor(box_px[0]), np.floor(box_px[1]), np.ceil(box_px[2]),
                                           np.ceil(box_px[3])))
        painted = rgb.copy()
        painted[y1:y2, x1:x2] = (255, 0, 255)
        landmarks = faces.loc[row.face_id, "landmarks"]
        if row.native_status == "kept":
            assert not window_reads_box(NativeWindow(row.native_x0, row.native_y0, row.native_side, 0, 0), box_px)
            s = row.native_side
            assert np.array_equal(png(folder / row.native_path), painted[row.native_y0:row.native_y0 + s,
                                                                         row.native_x0:row.native_x0 + s])
            checked += 1
        if row.context_status == "kept":
            cut = context_view(rgb, landmarks, CROPS.context, RESIZE)
            assert not crop_reads_box(cut.alignment.matrix, CROPS.context.size, w, h, box_px)
            assert np.array_equal(png(folder / row.context_path), cut.pixels)
            assert np.array_equal(context_view(painted, landmarks, CROPS.context, RESIZE).pixels, cut.pixels)
            checked += 1
        elif row.context_reason == "watermark":  # even the narrowest margin would read it
            al = context_alignment(landmarks, CROPS.context, CROPS.context.min_margin)
            assert crop_reads_box(al.matrix, CROPS.context.size, w, h, box_px)
    assert checked >= 10


@pytest.mark.slow
def test_a_window_reaching_a_declared_box_is_rejected_with_a_reason(faced, tmp_path):
    """A box over the lower half of every pollinations image: every view reads it, every view is rejected."""
    faces = pd.read_parquet(faced / "faces" / "pollinations.parquet")
    faces["watermark_box"] = [[0.0, 0.5, 1.0, 1.0]] * len(faces)
    root = tmp_path / "boxed"
    (root / "faces").mkdir(parents=True)
    faces.to_parquet(root / "faces" / "pollinations.parquet")
    (root / "raw").symlink_to(faced / "raw")
    table, metrics, _ = crops_of(root, "pollinations")
    assert (table["native_reason"] == "watermark").all() and (table["context_reason"] == "watermark").all()
    assert metrics["kept"] == 0 and metrics["native_rejected"] == metrics["context_rejected"] == metrics["in"] > 0


@pytest.mark.slow
def test_context_crops_that_would_pad_are_cut_at_a_narrower_margin_and_every_face_is_kept(faced):
    tight = replace(CROPS, context=replace(CROPS.context, margin=4.0, max_pad_fraction=0.0))
    table, metrics, folder = crops_of(faced, "lfw", tight, "shrink")
    assert (table["context_status"] == "kept").all() and metrics["context_rejected"] == 0
    narrowed = table[table["context_fit"] != "full"]
    assert len(narrowed) >= 1 and (narrowed["context_margin"] < 4.0).all()
    assert (narrowed["context_margin"] >= CROPS.context.min_margin - 1e-6).all()
    shrunk = table[table["context_fit"] == "shrunk"]
    assert (shrunk["context_pad_fraction"] == 0).all()  # a margin that fits pads nothing here
    padded = table[table["context_fit"] == "padded"]
    assert (padded["context_margin"].round(4) == CROPS.context.min_margin).all()
    assert (padded["context_pad_fraction"] > 0).all()
    assert len(list((folder / "context").glob("*.png"))) == len(table)


@pytest.mark.slow
def test_context_crops_padded_beyond_the_limit_are_rejected_under_fit_reject(faced):
    tight = replace(CROPS, context=replace(CROPS.context, margin=4.0, max_pad_fraction=0.0, fit="reject"))
    table, metrics, _ = crops_of(faced, "lfw", tight, "pad")
    rejected = table[table["context_status"] != "kept"]
    assert len(rejected) >= 1 and (rejected["context_reason"] == "pad").all()
    assert (rejected["context_pad_fraction"] > 0).all()
    assert (table.loc[table["context_status"] == "kept", "context_pad_fraction"] == 0).all()


@pytest.mark.slow
def test_the_declared_box_in_params_applies_when_the_faces_table_has_none(faced, tmp_path):
    """Faces tables built before the download stage recorded the box (the mirror's) still get the params' box."""
    faces = pd.read_parquet(faced / "faces" / "pollinations.parquet").drop(columns="watermark_box")
    root = tmp_path / "old"
    (root / "faces").mkdir(parents=True)
    faces.to_parquet(root / "faces" / "pollinations.parquet")
    (root / "raw").symlink_to(faced / "raw")
    out = root / "out"
    run_crops("pollinations", CROPS, FACES.margin, RESIZE, FACES.max_pixels, root / "raw", root / "faces",
              out / "crops", out / "metrics", out / "reports", progress=False,
              watermark=Watermark((0.0, 0.5, 1.0, 1.0)))
    table = pd.read_parquet(out / "crops" / "pollinations.parquet")
    assert len(table) > 0 and (table["native_reason"] == "watermark").all()
    assert (table["context_reason"] == "watermark").all()
