"""realfake.evaluation.robustness: each transform damages images as specified, deterministically."""

from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.params import find_mirror
from realfake.evaluation import robustness as R


def textured(n: int = 4, size: int = 96, seed: int = 0) -> np.ndarray:
    """Photo-like uint8 N×3×S×S images: smooth shading plus fine texture and sharp edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        base = 100 + 60 * np.sin(2 * np.pi * (xx * (1 + i) + yy)) + 30 * (xx > 0.5)
        for c in range(3):
            out[i, c] = np.clip(base + 25 * rng.standard_normal((size, size)) + 10 * c, 0, 255)
    return out


def high_freq_energy(batch: np.ndarray) -> float:
    """Spectral energy above a quarter of the sampling rate (mean over images and channels)."""
    spec = np.abs(np.fft.fftshift(np.fft.fft2(batch.astype(np.float64), axes=(-2, -1)), axes=(-2, -1))) ** 2
    s = batch.shape[-1]
    yy, xx = np.indices((s, s)) - s // 2
    return float(spec[..., np.hypot(yy, xx) > s / 4].sum() / spec.size)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_jpeg_lower_quality_changes_more_and_is_deterministic():
    x = textured()
    errors = {q: mse(R.jpeg(x, q), x) for q in (95, 75, 50, 30)}
    assert 0 < errors[95] < errors[75] < errors[50] < errors[30]
    out = R.jpeg(x, 50)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out, R.jpeg(x, 50))


def test_jpeg_is_a_real_encode_decode():
    x = textured(1)
    hwc = np.ascontiguousarray(x[0].transpose(1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(hwc).save(buf, format="JPEG", quality=30)
    expected = np.asarray(Image.open(buf).convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(R.jpeg(x, 30)[0], expected)


def test_blur_reduces_high_frequency_energy_more_with_larger_sigma():
    x = textured()
    e0, e1, e2 = high_freq_energy(x), high_freq_energy(R.gaussian_blur(x, 1)), high_freq_energy(R.gaussian_blur(x, 2))
    assert e2 < e1 < 0.5 * e0
    assert abs(R.gaussian_blur(x, 2).mean() - x.mean()) < 2  # blur moves no brightness


def test_downscale_and_back_loses_detail_but_keeps_smooth_content():
    x = textured()
    out = R.downscale(x, 0.5)
    assert out.shape == x.shape and high_freq_energy(out) < 0.5 * high_freq_energy(x)
    smooth = np.repeat(np.linspace(40, 200, 96, dtype=np.float64)[None, None, None, :], 3, axis=1)
    smooth = np.repeat(smooth, 96, axis=2).astype(np.uint8)
    assert np.abs(R.downscale(smooth, 0.5).astype(int) - smooth).max() <= 3


def test_centre_crop_keeps_the_centre_and_drops_the_border():
    size = 100
    img = np.full((1, 3, size, size), 128, dtype=np.uint8)
    img[:, 0, :5, :] = img[:, 0, -5:, :] = img[:, 0, :, :5] = img[:, 0, :, -5:] = 255  # red 5 px frame: outside 90%
    img[:, :, 45:55, 45:55] = 0  # a dark 10 px square in the centre
    out = R.centre_crop(img, 0.9)
    assert out.shape == img.shape
    assert out[0, 0].max() < 200  # the frame is gone
    dark = (out[0, 1] < 64).sum(axis=0).max()
    assert 10 <= dark <= 12  # the centre square is kept, enlarged by 1/0.9
    assert out[0, 1, 50, 50] == 0


def test_parse_transform_specs():
    x = textured(2)
    np.testing.assert_array_equal(R.parse_transform("jpeg:50")(x), R.jpeg(x, 50))
    np.testing.assert_array_equal(R.parse_transform("crop:0.9")(x), R.centre_crop(x, 0.9))
    for bad in ("jpeg", "sharpen:2", "blur:abc"):
        with pytest.raises(UserError):
            R.parse_transform(bad)
    with pytest.raises(ValueError):
        R.jpeg(x.astype(np.float32), 50)


def test_robustness_table_with_a_real_score_function():
    """A high-frequency detector: blur and downscaling must hurt its AUC, the clean AUC is high."""
    clean = textured(20, 64, seed=1)
    clean = np.stack([cv2.GaussianBlur(im.transpose(1, 2, 0), (5, 5), 1.5).transpose(2, 0, 1) for im in clean])
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 24 - 12).astype(np.int16)
    fake = np.clip(clean.astype(np.int16) + checker, 0, 255).astype(np.uint8)  # the same faces plus an artefact
    images = np.concatenate([clean, fake])
    y = np.array([0] * 20 + [1] * 20)

    def score(batch: np.ndarray) -> np.ndarray:
        return np.array([high_freq_energy(b[None]) for b in batch])

    rows = {r["transform"]: r for r in R.robustness_table(images, y, score, ["blur:2", "downscale:0.5"], batch_size=16)}
    assert rows["none"]["roc_auc"] > 0.95
    assert rows["blur:2"]["roc_auc"] < rows["none"]["roc_auc"]
    assert all(r["n"] == 40 for r in rows.values())


@pytest.mark.mirror
def test_transforms_on_mirror_faces():
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("offline mirror not available")
    with zipfile.ZipFile(mirror / "ffhq.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))[:4]
        faces = [np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB").resize((128, 128))) for n in names]
    x = np.stack(faces).transpose(0, 3, 1, 2).copy()
    assert mse(R.jpeg(x, 30), x) > mse(R.jpeg(x, 75), x) > 0
    assert high_freq_energy(R.gaussian_blur(x, 2)) < high_freq_energy(R.gaussian_blur(x, 1)) < high_freq_energy(x)
    assert high_freq_energy(R.downscale(x, 0.5)) < high_freq_energy(x)
