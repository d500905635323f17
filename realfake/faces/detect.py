"""MTCNN face detection on bounded-size, border-padded copies, and the choice of the subject."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from realfake.faces.config import FacesConfig

log = logging.getLogger(__name__)

# MTCNN never finds faces below its 12 px window; below 20 px its recall drops (its own default).
MTCNN_WINDOW = 12
MTCNN_MIN_FACE = 20
# Boxes and landmarks are rounded to 1/GRID px of the original image, probabilities to PROB_DIGITS decimals, so
# the float noise of another CPU's convolution code (a different oneDNN kernel moved landmarks by a median 7e-5 px,
# at most 5e-4 px, on the sample's faces) no longer changes the crops: measured, it changed 178 of 180 crops
# unrounded and 0 of 180 at 1/16 px. Rounding itself moves a crop by 0.19 grey levels on average (docs/reproducibility.md).
GRID = 16
PROB_DIGITS = 6


@dataclass
class Face:
    """One detected face in original-image coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    prob: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right (image left/right)


class FaceDetector:
    """MTCNN on bounded-size, border-padded, downscaled copies, batched; results mapped back to original coords.

    The grey border matters: on tight crops (UTKFace, DFDC) the face runs off the frame and MTCNN then
    returns shifted boxes and landmarks, which in turn made the aligned crop run off the image (padding).
    """

    def __init__(self, detect_size: int = 192, min_face_src: float = 0.0, pad: float = 0.2, device: str = "cpu"):
        import torch
        from facenet_pytorch import MTCNN

        self.torch = torch
        self.mtcnn = MTCNN(keep_all=True, device=device, select_largest=False)
        self.detect_size = detect_size
        self.min_face_src = min_face_src  # faces smaller than this (source px) need not be found
        self.pad = pad  # grey border added on each side, as a share of the long side

    def detect(self, images: list[np.ndarray], pad: float | None = None) -> list[list[Face]]:
        """Detect faces in RGB uint8 images; copies of one shape and one pyramid share an MTCNN call.

        Grouping by the pyramid too (min_face_size) keeps an image's faces independent of its batch: the faces
        stage and `realfake predict` see the same landmarks, so the same crop (they differed by up to 30 grey
        levels on 256 px photos batched with 384 px ones, whose smaller factor set the group's pyramid).
        """
        prepared = [self._prepare(img, self.pad if pad is None else pad) for img in images]
        results: list[list[Face]] = [[] for _ in images]
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, (copy, factor, _) in enumerate(prepared):
            groups.setdefault((*copy.shape[:2], self._min_face_size(copy, factor)), []).append(i)
        for (_, _, min_face), idx in groups.items():
            batch = np.stack([prepared[i][0] for i in idx])
            for i, faces in zip(idx, self._run(batch, min_face), strict=True):
                _, factor, border = prepared[i]
                results[i] = [_to_original(face, factor, border) for face in faces]
        return results

    def _min_face_size(self, copy: np.ndarray, factor: float) -> int:
        """MTCNN's smallest face (copy px) for one detection copy; 0 when the copy is below MTCNN's window.

        Faces we would reject as too small need not be searched for, and a coarser pyramid is much cheaper:
        the MTCNN box is about 1.6x face_px (measured), so min_face_px itself leaves a 1.6x margin. MTCNN builds
        its pyramid from min_face_size down to its 12 px window, so an image shorter than min_face_size gave
        an empty pyramid and torch.cat([]) deep inside facenet-pytorch: capped at the copy's short side.
        """
        short = min(copy.shape[:2])
        if short < MTCNN_WINDOW:
            return 0
        return min(max(MTCNN_MIN_FACE, int(self.min_face_src * factor)), short)

    def _prepare(self, img: np.ndarray, pad: float) -> tuple[np.ndarray, float, int]:
        """Add the grey border, then shrink so the long side is at most detect_size (area filter)."""
        h, w = img.shape[:2]
        border = int(round(pad * max(h, w)))
        if border:
            img = cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        h, w = img.shape[:2]
        factor = min(1.0, self.detect_size / max(h, w))
        if factor >= 1.0:
            return img, 1.0, border
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA), size[0] / w, border

    def _run(self, batch: np.ndarray, min_face: int) -> list[list[Face]]:
        """One MTCNN call on a (N, H, W, 3) batch; returns faces in detection-copy coords."""
        if min_face <= 0:
            return [[] for _ in batch]
        self.mtcnn.min_face_size = min_face
        with self.torch.inference_mode():
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
        out = []
        for b, p, pts in zip(boxes, probs, points, strict=True):
            if b is None:
                out.append([])
                continue
            b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
            p = np.asarray(p, dtype=np.float64).reshape(-1)
            pts = np.asarray(pts, dtype=np.float64).reshape(-1, 5, 2)
            out.append([Face(b[k], float(p[k]), pts[k]) for k in range(len(b))])
        return out


def _to_original(face: Face, factor: float, border: int) -> Face:
    """Map a face from detection-copy coords to original coords (undo the downscale, then the border), rounded."""
    return Face(on_grid(face.box / factor - border), round(float(face.prob), PROB_DIGITS),
                on_grid(face.landmarks / factor - border))


def on_grid(coords: np.ndarray) -> np.ndarray:
    """Coordinates rounded to the nearest 1/GRID px (exact in float32 and float64: GRID is a power of two)."""
    return np.round(np.asarray(coords, dtype=np.float64) * GRID) / GRID


def choose_primary(faces: list[Face], width: int, height: int, rule: str, min_prob: float) -> tuple[Face | None, int]:
    """Pick the subject among faces above min_prob; return it (or None) and how many faces qualified."""
    candidates = [f for f in faces if f.prob >= min_prob]
    if not candidates:
        return None, 0
    if rule == "largest":
        key = lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1])  # noqa: E731
    elif rule == "prob":
        key = lambda f: -f.prob  # noqa: E731
    else:
        centre = np.array([width / 2.0, height / 2.0])
        key = lambda f: float(np.hypot(*((f.box[:2] + f.box[2:]) / 2.0 - centre)))  # noqa: E731
    return min(candidates, key=key), len(candidates)


@dataclass
class Detection:
    """Detection's answer for one image: its faces, or the reason it could not look (then no faces)."""

    faces: list[Face]
    reason: str | None = None  # image_too_small | detection_error
    detail: str | None = None


def too_small(width: int, height: int, cfg: FacesConfig) -> str | None:
    """Why no face of cfg.min_face_px can be kept from an image this small (None when one can).

    A crop of side s sticks out of an image whose short side is d by at least 1 - d/s of its area, so with
    at most max_pad_fraction outside, s <= d / (1 - max_pad_fraction).
    """
    short = min(width, height)
    if short >= max(cfg.min_face_px * (1.0 - cfg.max_pad_fraction), MTCNN_WINDOW):
        return None
    return f"{width}x{height} px: too small to hold a face of faces.min_face_px={cfg.min_face_px}"


def _detect_isolated(detector: FaceDetector, images: list[np.ndarray], pad: float | None) -> list[list[Face] | str]:
    """detector.detect, but a failure costs only the image that caused it (found by retrying one by one)."""
    try:
        return list(detector.detect(images, pad=pad))
    except Exception as exc:  # noqa: BLE001 -- MTCNN raises anything from deep inside torch; keep the others
        if len(images) == 1:
            log.warning("detection failed on one image (%dx%d): %s", images[0].shape[1], images[0].shape[0], exc)
            return [f"{type(exc).__name__}: {exc}"[:200]]
        return [result for img in images for result in _detect_isolated(detector, [img], pad)]


def detect_faces(detector: FaceDetector, images: list[np.ndarray], cfg: FacesConfig) -> list[Detection]:
    """Faces in each RGB image, as the faces stage and `realfake predict` both see them, one image never costing another.

    Too-small images are answered without MTCNN; images MTCNN misses (no face >= min_prob) get a second look
    without the grey border, as MTCNN's probability on a borderline face moves with the pyramid (measured:
    recovers 2 of 4 UTKFace misses).
    """
    out = [Detection([]) for _ in images]
    todo = []
    for k, img in enumerate(images):
        reason = too_small(img.shape[1], img.shape[0], cfg)
        if reason:
            out[k] = Detection([], "image_too_small", reason)
        else:
            todo.append(k)
    for k, found in zip(todo, _detect_isolated(detector, [images[k] for k in todo], None), strict=True):
        out[k] = Detection([], "detection_error", found) if isinstance(found, str) else Detection(found)
    retry = [k for k in todo if out[k].reason is None and not any(f.prob >= cfg.min_prob for f in out[k].faces)]
    if retry and detector.pad > 0:
        for k, found in zip(retry, _detect_isolated(detector, [images[k] for k in retry], 0.0), strict=True):
            if not isinstance(found, str):  # a failed second look leaves the first one standing
                out[k].faces = out[k].faces + found
    return out
