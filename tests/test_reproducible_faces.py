"""Face crops that survive another CPU's float noise: landmarks on a 1/16 px grid before the warp (issue 13)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from realfake.core.imageio import decode_image
from realfake.faces.alignment import align, warp_crop
from realfake.faces.config import FacesConfig
from realfake.faces.detect import GRID, Face, FaceDetector, _to_original, choose_primary, on_grid

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def sample_images(n: int) -> list[np.ndarray]:
    """n real photos from the embedded sample (tpdne and lfw)."""
    out = []
    for name in ("tpdne.zip", "lfw.zip"):
        with zipfile.ZipFile(SAMPLE / name) as z:
            members = [m for m in z.namelist() if m.endswith(".jpg")][: n // 2]
            out += [decode_image(z.read(m)).rgb for m in members]
    return out


def test_sub_grid_noise_gives_the_same_face():
    face = Face(np.array([10.01, 20.02, 110.03, 140.04]), 0.9999871, np.arange(10, dtype=float).reshape(5, 2) * 7.3)
    noise = Face(face.box + 4e-4, face.prob + 3e-8, face.landmarks - 4e-4)
    a, b = _to_original(face, 0.5, 12), _to_original(noise, 0.5, 12)
    assert np.array_equal(a.box, b.box) and np.array_equal(a.landmarks, b.landmarks) and a.prob == b.prob
    assert np.array_equal(a.landmarks * GRID, np.round(a.landmarks * GRID))  # on the grid, exactly
    assert np.abs(a.landmarks - (face.landmarks / 0.5 - 12)).max() <= 0.5 / GRID
    assert np.array_equal(on_grid(np.float32([1.03125])), [1.0])


@pytest.mark.slow
def test_crops_are_identical_under_another_convolution_implementation():
    """oneDNN on vs off stands in for another CPU: MTCNN's landmarks move by ~1e-4 px, the crops must not."""
    cfg = FacesConfig()
    images = sample_images(8)
    torch.set_num_threads(1)
    detector = FaceDetector(cfg.detect_size, cfg.min_face_px, cfg.detect_pad)
    runs = []
    for onednn in (True, False):
        with torch.backends.mkldnn.flags(enabled=onednn):
            runs.append(detector.detect(images))
    crops = [[], []]
    for img, *found in zip(images, *runs, strict=True):
        h, w = img.shape[:2]
        for k, faces in enumerate(found):
            primary, _ = choose_primary(faces, w, h, cfg.primary, cfg.min_prob)
            assert primary is not None
            crops[k].append(warp_crop(img, align(primary.landmarks, cfg.margin, cfg.crop_size), cfg.crop_size))
    assert all(np.array_equal(a, b) for a, b in zip(*crops, strict=True))
