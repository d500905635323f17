"""Pose, ITA, lighting, sharpness and noise on synthetic inputs with known answers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from realfake.attributes.face_measures import (
    brightness_contrast,
    ita_degrees,
    luma,
    measure_crop,
    noise_sigma,
    pose_from_landmarks,
    project_generic_face,
    sharpness,
    skin_ita,
    skin_tone,
    srgb_to_lab,
)

# A hand-made, left-right symmetric face (not the generic model): frontal by construction.
SYMMETRIC = np.array([[80.0, 100.0], [144.0, 100.0], [112.0, 135.0], [88.0, 170.0], [136.0, 170.0]])


def rotate(points: np.ndarray, degrees: float, center=(112.0, 112.0)) -> np.ndarray:
    """Rotate image points clockwise on screen (y down) by `degrees` about `center`."""
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (points - center) @ rot.T + center


def test_symmetric_landmarks_are_frontal():
    pose = pose_from_landmarks(SYMMETRIC)
    assert pose.yaw == pytest.approx(0.0, abs=1e-9)
    assert pose.roll == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("angle", [-40.0, -10.0, 15.0, 30.0])
def test_rotated_landmarks_give_the_roll_and_keep_yaw_and_pitch(angle):
    base = pose_from_landmarks(SYMMETRIC)
    pose = pose_from_landmarks(rotate(SYMMETRIC, angle, center=(57.0, 203.0)))
    assert pose.roll == pytest.approx(angle, abs=1e-6)
    assert pose.yaw == pytest.approx(base.yaw, abs=1e-6)
    assert pose.pitch == pytest.approx(base.pitch, abs=1e-6)


def test_nose_to_image_right_is_positive_yaw_and_lower_nose_is_positive_pitch():
    right = SYMMETRIC.copy()
    right[2, 0] += 10
    lower = SYMMETRIC.copy()
    lower[2, 1] += 10
    assert pose_from_landmarks(right).yaw > 5
    assert pose_from_landmarks(lower).pitch > pose_from_landmarks(SYMMETRIC).pitch + 5


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, 0, 0), (-35, 0, 10), (0, -15, 0), (0, 20, -5)])
def test_generic_face_turned_by_known_angles_is_recovered(yaw, pitch, roll):
    pose = pose_from_landmarks(project_generic_face(yaw, pitch, roll, scale=80.0, center=(300.0, 200.0)))
    assert pose.yaw == pytest.approx(yaw, abs=0.5)
    assert pose.pitch == pytest.approx(pitch, abs=0.5)
    assert pose.roll == pytest.approx(roll, abs=0.5)


def test_degenerate_landmarks_give_nan_not_an_error():
    pose = pose_from_landmarks(np.full((5, 2), np.nan))
    assert math.isnan(pose.yaw) and math.isnan(pose.roll)
    assert math.isnan(pose_from_landmarks(np.zeros((5, 2))).yaw)


def lab_to_rgb_uint8(lab: tuple[float, float, float]) -> np.ndarray:
    """An independent Lab -> sRGB conversion (OpenCV), rounded to uint8."""
    rgb = cv2.cvtColor(np.array([[lab]], dtype=np.float32), cv2.COLOR_Lab2RGB)[0, 0]
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def test_srgb_to_lab_matches_opencv_on_known_colours():
    for lab in [(60.0, 10.0, 18.0), (40.0, 15.0, 25.0), (75.0, 5.0, 12.0)]:
        got = srgb_to_lab(lab_to_rgb_uint8(lab))
        assert got == pytest.approx(np.array(lab), abs=0.8)
    assert srgb_to_lab(np.array([255, 255, 255], np.uint8)) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)


@pytest.mark.parametrize("lab,tone", [
    ((75.0, 6.0, 12.0), "very_light"),   # ITA 64.4
    ((65.0, 10.0, 16.0), "light"),        # ITA 43.2
    ((60.0, 12.0, 17.0), "intermediate"),  # ITA 30.5
    ((57.0, 12.0, 20.0), "tan"),          # ITA 19.3
    ((45.0, 14.0, 20.0), "brown"),        # ITA -14.0
    ((30.0, 12.0, 15.0), "dark"),         # ITA -53.1
])
def test_uniform_skin_patch_gives_the_known_ita(lab, tone):
    crop = np.broadcast_to(lab_to_rgb_uint8(lab), (224, 224, 3)).copy()
    ita, n = skin_ita(crop)
    expected = math.degrees(math.atan((lab[0] - 50.0) / lab[2]))
    assert n > 1000
    assert ita == pytest.approx(expected, abs=1.5)
    assert skin_tone(expected) == tone
    assert skin_tone(ita) == tone


@pytest.mark.parametrize("ita,tone", [(60, "very_light"), (55.5, "very_light"), (50, "light"), (30, "intermediate"),
                                      (12, "tan"), (0, "brown"), (-29, "brown"), (-31, "dark"), (math.nan, None)])
def test_ita_bins(ita, tone):
    assert skin_tone(ita) == tone


def test_ita_formula():
    assert ita_degrees(50.0, 20.0) == pytest.approx(0.0)
    assert ita_degrees(70.0, 20.0) == pytest.approx(45.0)
    assert ita_degrees(30.0, 20.0) == pytest.approx(-45.0)


def test_grey_patch_is_not_skin():
    ita, n = skin_ita(np.full((224, 224, 3), 128, np.uint8))
    assert n == 0 and math.isnan(ita)


def test_brightness_contrast_sharpness_noise_on_known_images():
    rng = np.random.default_rng(0)
    flat = np.full((128, 128), 100.0)
    assert brightness_contrast(flat) == pytest.approx((100.0, 0.0))
    halves = np.hstack([np.full((64, 32), 50.0), np.full((64, 32), 150.0)])
    assert brightness_contrast(halves) == pytest.approx((100.0, 50.0))
    # a smooth ramp plus Gaussian noise of known sigma
    ramp = np.tile(np.linspace(60, 180, 200), (200, 1))
    for sigma in (3.0, 8.0):
        noisy = ramp + rng.normal(0, sigma, ramp.shape)
        assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)
    assert noise_sigma(ramp) == pytest.approx(0.0, abs=1e-6)
    checker = (np.indices((128, 128)).sum(0) // 4 % 2) * 200.0
    blurred = cv2.GaussianBlur(checker, (0, 0), 2.0)
    assert sharpness(checker) > 5 * sharpness(blurred) > 0


def test_measure_crop_on_a_real_looking_uniform_face():
    crop = np.broadcast_to(lab_to_rgb_uint8((60.0, 12.0, 17.0)), (224, 224, 3)).copy()
    m = measure_crop(crop)
    assert m.brightness == pytest.approx(float(luma(crop[:1, :1]).mean()), abs=1e-6)
    assert m.contrast == pytest.approx(0.0, abs=1e-6)
    assert skin_tone(m.ita) == "intermediate"
