"""realfake.evaluation.baselines: the spectral detector and the file-level shortcut audit."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from realfake.core.atomic import write_parquet
from realfake.evaluation import baselines as BL


def natural(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Face-photo stand-ins: smooth random fields (1/f-like) with varied brightness, uint8 N×3×S×S."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        field = cv2.GaussianBlur(rng.standard_normal((size, size)), (0, 0), rng.uniform(1.5, 4))
        field = field / field.std() * rng.uniform(20, 40) + rng.uniform(80, 170)
        noise = rng.normal(0, 2, (3, size, size))
        out[i] = np.clip(field[None] + noise, 0, 255)
    return out


def with_upsampling_artefact(images: np.ndarray, amplitude: float = 6.0) -> np.ndarray:
    """Add a faint period-2 checkerboard, the transposed-convolution artefact Durall et al. describe."""
    size = images.shape[-1]
    checker = (np.indices((size, size)).sum(axis=0) % 2) * 2 - 1
    return np.clip(images.astype(np.float64) + amplitude * checker, 0, 255).astype(np.uint8)


def test_radial_profile_peaks_at_the_cosine_frequency():
    size, k = 64, 10
    xx = np.arange(size)
    wave = 128 + 100 * np.cos(2 * np.pi * k * xx / size)
    img = np.broadcast_to(wave, (1, 3, size, size)).astype(np.uint8)
    prof = BL.radial_profile(img)
    assert prof.shape == (1, round(size / 2 * np.sqrt(2)) + 1)  # rings out to the corners
    assert int(np.argmax(prof[0, 1:])) + 1 == k


def test_spectral_baseline_separates_periodic_artefacts():
    real_tr, real_te = natural(80, seed=1), natural(40, seed=2)
    fake_tr, fake_te = with_upsampling_artefact(natural(80, seed=3)), with_upsampling_artefact(natural(40, seed=4))
    x_tr, y_tr = np.concatenate([real_tr, fake_tr]), np.array([0] * 80 + [1] * 80)
    x_te, y_te = np.concatenate([real_te, fake_te]), np.array([0] * 40 + [1] * 40)
    model = BL.fit_spectral(x_tr, y_tr, BL.SpectralConfig(batch_size=50))
    assert roc_auc_score(y_te, BL.score_spectral(model, x_te, batch_size=50)) > 0.95
    # the same pipeline with no artefact on either side has nothing to find
    clean = BL.fit_spectral(np.concatenate([real_tr, natural(80, seed=5)]), y_tr)
    assert roc_auc_score(y_te, BL.score_spectral(clean, np.concatenate([real_te, natural(40, seed=6)]))) < 0.8


def audit_meta(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Metadata rows with the audit columns and decoys that must not be read."""
    w = rng.choice([200, 250, 256, 384], n)
    return pd.DataFrame({
        "orig_width": w, "orig_height": w, "orig_format": rng.choice(["JPEG", "PNG"], n, p=[0.9, 0.1]),
        "jpeg_quality": rng.choice([75, 90], n).astype(float), "face_px": rng.uniform(60, 200, n),
        "pad_fraction": rng.uniform(0, 0.1, n), "is_grayscale": rng.random(n) < 0.05,
        "bytes": (w * w * rng.uniform(0.2, 0.4, n)).astype(int),
        # decoys: similar names, not audit inputs
        "width": rng.integers(0, 10, n), "sharpness": rng.random(n), "face_prob": rng.random(n),
    })


def test_audit_features_come_from_the_right_columns():
    rng = np.random.default_rng(0)
    meta = audit_meta(50, rng)
    meta.loc[3, "orig_format"] = "WEBP"
    meta.loc[4, "orig_format"] = None
    meta.loc[5, "jpeg_quality"] = np.nan
    f = BL.audit_features(meta)
    assert list(f.columns) == list(BL.AUDIT_FEATURES)
    np.testing.assert_allclose(f.bytes_per_pixel, meta.bytes / (meta.orig_width * meta.orig_height))
    np.testing.assert_array_equal(f.width, meta.orig_width)
    np.testing.assert_array_equal(f.pad_fraction, meta.pad_fraction)
    np.testing.assert_array_equal(f.is_grayscale, meta.is_grayscale.astype(float))
    assert f.loc[3, "format_webp"] == 1 and f.loc[4, "format_other"] == 1 and np.isnan(f.loc[5, "jpeg_quality"])
    assert (f[[c for c in f.columns if c.startswith("format_")]].sum(axis=1) == 1).all()
    decoyed = meta.assign(width=999, sharpness=0.0, face_prob=0.0)
    pd.testing.assert_frame_equal(BL.audit_features(decoyed), f)
    assert BL.audit_features(meta.drop(columns=["bytes"])).bytes_per_pixel.isna().all()  # absent column -> unknown


@pytest.mark.parametrize("model", ["logistic", "gbm"])
def test_audit_model_finds_a_planted_file_size_shortcut(model):
    rng = np.random.default_rng(1)
    train, test = audit_meta(600, rng), audit_meta(300, rng)
    y_train, y_test = rng.integers(0, 2, 600), rng.integers(0, 2, 300)
    cfg = BL.AuditConfig(model=model, gbm_max_iter=40)
    plain = BL.fit_audit(train, y_train, cfg)
    assert roc_auc_score(y_test, BL.score_audit(plain, test)) < 0.65  # nothing planted, nothing found

    def plant(meta, y):  # fakes are stored with ~60% more bytes per pixel
        meta = meta.copy()
        meta["bytes"] = (meta.bytes * np.where(y == 1, 1.6, 1.0)).astype(int)
        return meta
    planted = BL.fit_audit(plant(train, y_train), y_train, cfg)
    p_audit = BL.score_audit(planted, plant(test, y_test))
    assert roc_auc_score(y_test, p_audit) > 0.9

    p_cnn = np.clip(0.5 + 0.3 * (y_test - 0.5) + rng.normal(0, 0.2, 300), 0, 1)
    verdict = BL.shortcut_verdict(y_test, p_cnn, p_audit)
    assert verdict["other_auc"] >= verdict["cnn_auc"] - 0.03
    assert verdict["shortcut"] is True and "WARNING" in verdict["text"]
    assert BL.shortcut_verdict(y_test, y_test.astype(float), p_cnn * 0 + 0.5)["shortcut"] is False


def test_audit_survives_missing_and_unknown_values():
    rng = np.random.default_rng(2)
    meta = audit_meta(100, rng)
    meta["jpeg_quality"] = np.nan  # e.g. every file a PNG
    meta.loc[:10, "orig_width"] = None
    y = rng.integers(0, 2, 100)
    p = BL.score_audit(BL.fit_audit(meta, y), meta)
    assert p.shape == (100,) and np.isfinite(p).all()
    assert BL.score_audit(BL.fit_audit(meta, y), meta.iloc[:0]).shape == (0,)


def test_file_bytes_joins_the_download_tables(tmp_path):
    raw = tmp_path / "raw"
    write_parquet(pd.DataFrame({"path": ["a.jpg", "b/c.jpg"], "bytes": [1234, 999]}), raw / "ffhq.parquet")
    meta = pd.DataFrame({"source": ["ffhq", "ffhq", "lfw"],
                         "raw_path": [str(raw / "ffhq" / "b/c.jpg"), str(raw / "ffhq" / "a.jpg"), str(raw / "lfw" / "x.jpg")]})
    sizes = BL.file_bytes(meta, raw)
    assert sizes.iloc[0] == 999 and sizes.iloc[1] == 1234 and np.isnan(sizes.iloc[2])


def test_verdict_without_both_classes_is_undecided():
    v = BL.shortcut_verdict([1, 1], [0.9, 0.8], [0.7, 0.6])
    assert v["shortcut"] is None
