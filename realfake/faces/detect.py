"""MTCNN face detection on bounded-size, border-padded copies, and the choice of the subject."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# MTCNN never finds faces below its 12 px window; below 20 px its recall drops (its own default).
MTCNN_MIN_FACE = 20


@dataclass
class Face:
    """One detected face in original-image coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    prob: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right (image left/right)


class Detector:
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
        """Detect faces in RGB uint8 images; same-shape detection copies share one MTCNN call."""
        prepared = [self._prepare(img, self.pad if pad is None else pad) for img in images]
        results: list[list[Face]] = [[] for _ in images]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, (copy, _, _) in enumerate(prepared):
            by_shape.setdefault(copy.shape[:2], []).append(i)
        for idx in by_shape.values():
            batch = np.stack([prepared[i][0] for i in idx])
            min_factor = min(prepared[i][1] for i in idx)
            for i, faces in zip(idx, self._run(batch, min_factor), strict=True):
                _, factor, border = prepared[i]
                results[i] = [_to_original(face, factor, border) for face in faces]
        return results

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

    def _run(self, batch: np.ndarray, factor: float) -> list[list[Face]]:
        """One MTCNN call on a (N, H, W, 3) batch; returns faces in detection-copy coords."""
        # Faces we would reject as too small need not be searched for, and a coarser pyramid is much
        # cheaper. The MTCNN box is about 1.6x face_px (measured), so min_face_px itself leaves a 1.6x margin.
        self.mtcnn.min_face_size = max(MTCNN_MIN_FACE, int(self.min_face_src * factor))
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
    """Map a face from detection-copy coords to original coords (undo the downscale, then the border)."""
    return Face(face.box / factor - border, face.prob, face.landmarks / factor - border)


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
