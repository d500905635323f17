"""Labels that need no model: head pose from 5 landmarks, skin tone (ITA), lighting, sharpness and noise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# ---------------------------------------------------------------- head pose

# A generic frontal face in units of the inter-ocular distance (x right, y down, z towards the camera).
# x/y: the ArcFace 112 px reference template of the 5 MTCNN points (an average of frontal faces), recentred.
# z: the nose tip stands about half an inter-ocular distance in front of the eye/mouth plane (anthropometric
# average); this constant only scales yaw and pitch, it never changes their sign or their zero.
NOSE_BELOW_EYES = 0.571  # nose tip below the eye line
MOUTH_BELOW_EYES = 1.155  # mouth corners below the eye line
NOSE_DEPTH = 0.5


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees: yaw + when the nose points to image right, pitch + looking down, roll + clockwise."""

    yaw: float
    pitch: float
    roll: float


def pose_from_landmarks(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll of one face from its 5 MTCNN points (left eye, right eye, nose, mouth left, right).

    Weak-perspective model: roll is the eye-line angle; after undoing roll, yaw comes from the nose's
    sideways offset from the eye/mouth midline and pitch from the nose's height between eyes and mouth,
    both measured against the generic face above.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(pts).all():
        return Pose(math.nan, math.nan, math.nan)
    left_eye, right_eye, nose, mouth_l, mouth_r = pts
    dx, dy = right_eye - left_eye
    roll = math.atan2(dy, dx)
    eye_dist = math.hypot(dx, dy)
    if eye_dist <= 0:
        return Pose(math.nan, math.nan, math.degrees(roll))
    c, s = math.cos(-roll), math.sin(-roll)
    rot = np.array([[c, -s], [s, c]])
    eyes = (left_eye + right_eye) / 2.0
    level = (pts - eyes) @ rot.T  # eye midpoint at the origin, eye line horizontal
    mouth = (level[3] + level[4]) / 2.0
    nose_l = level[2]
    midline_x = mouth[0] / 2.0  # x of the eye/mouth midline at the nose (eyes at 0)
    mouth_y = mouth[1]
    # Yaw: nose offset = depth * sin(yaw), eye distance = IOD * cos(yaw)  ->  offset / eye_dist = depth * tan(yaw)
    yaw = math.atan2(nose_l[0] - midline_x, NOSE_DEPTH * eye_dist / 1.0)
    # Pitch: nose height / mouth height = (n cos p + z sin p) / (m cos p)  ->  tan p = (ratio m - n) / z
    if mouth_y <= 0:
        pitch = math.nan
    else:
        ratio = nose_l[1] / mouth_y
        pitch = math.atan2(ratio * MOUTH_BELOW_EYES - NOSE_BELOW_EYES, NOSE_DEPTH)
    return Pose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def project_generic_face(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, scale: float = 60.0,
                         center: tuple[float, float] = (112.0, 112.0)) -> np.ndarray:
    """The 5 points of the generic face turned by (yaw, pitch, roll) degrees, orthographic projection (5, 2)."""
    half = 0.5
    mouth_half = (70.73 - 41.55) / 2.0 / 35.24  # template mouth width / inter-ocular distance / 2
    model = np.array([
        [-half, 0.0, 0.0], [half, 0.0, 0.0], [0.0, NOSE_BELOW_EYES, NOSE_DEPTH],
        [-mouth_half, MOUTH_BELOW_EYES, 0.0], [mouth_half, MOUTH_BELOW_EYES, 0.0],
    ])
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    # yaw about the vertical axis: +z (towards camera) swings to +x
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    # pitch about the horizontal axis: looking down moves the nose tip (+z) down (+y)
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    pts = (model @ (ry @ rx).T)[:, :2]
    return pts @ rz.T * scale + np.asarray(center)


# ---------------------------------------------------------------- skin tone (ITA)

# Skin patches, placed from the 5 landmarks mapped into the aligned crop: each cheek patch is a square of
# 0.25 x the inter-ocular distance centred on the centroid of the eye / nose tip / mouth corner triangle of its
# side (below the eye, beside the nose, above the mouth corner); the forehead patch (0.5 x 0.15 inter-ocular
# distances) sits 0.35 eye-to-mouth distances above the eye midpoint and is used only when it lies inside the
# crop (tight crops often cut it off). Without landmarks, DEFAULT_CROP_LANDMARKS (the faces stage's typical
# geometry, fractions of the crop side) stand in.
DEFAULT_CROP_LANDMARKS = np.array([[0.22, 0.19], [0.78, 0.19], [0.5, 0.55], [0.27, 0.81], [0.73, 0.81]])
CHEEK_SIDE = 0.25
FOREHEAD_SIZE = (0.5, 0.15)
FOREHEAD_RISE = 0.35
# ITA bins (Chardon et al. 1991; Del Bino et al. 2006): lower edges, highest first.
ITA_BINS = (("very_light", 55.0), ("light", 41.0), ("intermediate", 28.0), ("tan", 10.0), ("brown", -30.0))
SKIN_TONES = ("very_light", "light", "intermediate", "tan", "brown", "dark")
MIN_SKIN_PIXELS = 50


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) to CIE L*a*b* (D65), float64: L in 0..100."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ita_degrees(lightness: float, b: float) -> float:
    """Individual Typology Angle: atan((L* - 50) / b*) in degrees."""
    return math.degrees(math.atan2(lightness - 50.0, b))


def skin_tone(ita: float) -> str | None:
    """The standard ITA category of an angle (None for NaN)."""
    if ita is None or not math.isfinite(ita):
        return None
    for name, lower in ITA_BINS:
        if ita > lower:
            return name
    return "dark"


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels: the YCrCb box of Chai & Ngan (1999), minus clipped highlights and deep shadows."""
    ycrcb = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (y > 20) & (y < 250)


def skin_patches(landmarks: np.ndarray, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) of the skin patches for crop-coordinate landmarks (5, 2)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    iod = float(np.hypot(*(lm[1] - lm[0])))
    eyes, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    boxes = []
    for eye, corner in ((lm[0], lm[3]), (lm[1], lm[4])):
        c = (eye + lm[2] + corner) / 3
        boxes.append((*(c - CHEEK_SIDE * iod / 2), *(c + CHEEK_SIDE * iod / 2)))
    fc = eyes - FOREHEAD_RISE * (mouth - eyes)
    half = np.array(FOREHEAD_SIZE) * iod / 2
    forehead = (*(fc - half), *(fc + half))
    if forehead[0] >= 0 and forehead[1] >= 0 and forehead[2] <= width and forehead[3] <= height:
        boxes.append(forehead)
    out = []
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(int(round(x0)), 0), max(int(round(y0)), 0)
        x1, y1 = min(int(round(x1)), width), min(int(round(y1)), height)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1, y1))
    return out


def skin_pixels(crop: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
    """The skin-masked pixels (n, 3) of the patches of an aligned crop."""
    h, w = crop.shape[:2]
    lm = DEFAULT_CROP_LANDMARKS * [w, h] if landmarks is None or not np.isfinite(landmarks).all() else landmarks
    parts = [crop[y0:y1, x0:x1][skin_mask(crop[y0:y1, x0:x1])] for x0, y0, x1, y1 in skin_patches(lm, w, h)]
    return np.concatenate(parts) if parts else np.zeros((0, 3), np.uint8)


def skin_ita(crop: np.ndarray, landmarks: np.ndarray | None = None, min_pixels: int = MIN_SKIN_PIXELS
             ) -> tuple[float, int]:
    """ITA of the median L* and b* over the skin pixels of an aligned crop, and the pixel count (NaN if too few)."""
    pixels = skin_pixels(crop, landmarks)
    if len(pixels) < min_pixels:
        return math.nan, len(pixels)
    lab = srgb_to_lab(pixels)
    return ita_degrees(float(np.median(lab[:, 0])), float(np.median(lab[:, 2]))), len(pixels)


# ---------------------------------------------------------------- lighting and quality

def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma, float64 in 0..255."""
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def brightness_contrast(gray: np.ndarray) -> tuple[float, float]:
    """Mean luma (0..255) and RMS contrast (standard deviation of luma)."""
    return float(gray.mean()), float(gray.std())


def sharpness(gray: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian (higher = sharper)."""
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F, ksize=1).var())


def noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer (1996) fast noise estimate: std of additive Gaussian noise, in luma units."""
    h, w = gray.shape
    if h < 3 or w < 3:
        return math.nan
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    conv = cv2.filter2D(gray.astype(np.float64), -1, kernel)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2.0) * np.abs(conv).sum() / (6.0 * (w - 2) * (h - 2)))


@dataclass
class CropMeasures:
    """Everything measured on one aligned crop."""

    brightness: float
    contrast: float
    sharpness: float
    noise: float
    ita: float
    skin_px: int


def measure_crop(crop: np.ndarray, landmarks: np.ndarray | None = None) -> CropMeasures:
    """Lighting, quality and skin tone of one aligned RGB crop (landmarks in crop pixels, if known)."""
    gray = luma(crop)
    bright, contrast = brightness_contrast(gray)
    ita, n_skin = skin_ita(crop, landmarks)
    return CropMeasures(bright, contrast, sharpness(gray), noise_sigma(gray), ita, n_skin)


MEASURE_COLUMNS = ["brightness", "contrast", "sharpness", "noise", "ita", "skin_px", "measure_error"]


def measure_file(path: str, landmarks: np.ndarray | None = None) -> dict[str, Any]:
    """measure_crop of one crop file; an unreadable crop gives only its error."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            crop = np.asarray(im.convert("RGB"))
        return {**measure_crop(crop, landmarks).__dict__, "measure_error": None}
    except (OSError, ValueError) as exc:
        return {"measure_error": f"{type(exc).__name__}: {exc}"[:200]}


def measure_batch(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """measure_file over (crop path, crop landmarks) items: the per-batch function both engines run."""
    return [measure_file(path, landmarks) for path, landmarks in items]
