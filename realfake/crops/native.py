"""The native view: an axis-aligned window of original pixels around the face, cut at integer offsets, never resampled.

Resampling (rotation, resize) low-passes the neighbouring-pixel relations a generator leaves (NPR, Tan et al. CVPR
2024; SAFE 2024: crop, never resize). This window keeps them: the decoded original's own pixels, stored lossless.
Caveat: the window has a fixed side in original pixels, so it frames a 60 px face with background and a 600 px face
with a patch of skin (face_px is recorded so the audit can see framing), and it carries whatever resampling and
compression the source applied before us (the mirror downscaled large images to 384 px): docs/views.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from realfake.faces.alignment import align


@dataclass(frozen=True)
class NativeWindow:
    """Where the window lies in the decoded original (integer px) and how far the frame's edges pushed it."""

    x0: int
    y0: int
    side: int
    shift_x: int  # x0 minus the centred position: non-zero when the window met the frame's edge
    shift_y: int


def face_geometry(landmarks, margin: float) -> tuple[np.ndarray, float]:
    """The aligned face's centre (original px) and its side at `margin` (face_px), from the five landmarks.

    Landmarks pass through float32 first, as the faces table stores them, so the pipeline (reading the table) and
    `realfake predict` (fresh from MTCNN) cut the same window.
    """
    points = np.asarray(landmarks, dtype=np.float32).astype(np.float64).reshape(5, 2)
    al = align(points, margin, 1)
    return al.center, al.side


def place_window(center: np.ndarray, side: int, width: int, height: int) -> NativeWindow | None:
    """The side x side window centred on `center`, shifted inside the frame; None when the frame is smaller."""
    if width < side or height < side:
        return None
    # floor(c - side/2 + 0.5): the integer offset whose window centre lies nearest the face centre
    cx, cy = (int(math.floor(float(c) - side / 2.0 + 0.5)) for c in center)
    x0, y0 = min(max(cx, 0), width - side), min(max(cy, 0), height - side)
    return NativeWindow(x0, y0, side, x0 - cx, y0 - cy)


def cut_window(rgb: np.ndarray, window: NativeWindow) -> np.ndarray:
    """The window's pixels, copied as they are (H x W x 3 uint8)."""
    return np.ascontiguousarray(rgb[window.y0:window.y0 + window.side, window.x0:window.x0 + window.side])


def window_reads_box(window: NativeWindow, box_px: tuple[float, float, float, float]) -> bool:
    """True when any pixel of the window lies (even partly) in the box: no filter reach, the window reads no more."""
    x1, y1, x2, y2 = box_px
    end_x, end_y = window.x0 + window.side, window.y0 + window.side
    return window.x0 < math.ceil(x2) and end_x > math.floor(x1) and window.y0 < math.ceil(y2) and end_y > math.floor(y1)


@dataclass
class NativeCut:
    """One face's native view: the pixels, or the reason there are none."""

    pixels: np.ndarray | None
    window: NativeWindow | None
    face_px: float
    reason: str | None = None
    detail: str | None = None


def native_view(rgb: np.ndarray, landmarks, margin: float, side: int,
                watermark_px: tuple[float, float, float, float] | None = None) -> NativeCut:
    """Cut the native window of one face (the crops stage and `realfake predict` both call this).

    Rejected: `native_too_small` when the frame is smaller than the window (never upscaled), `watermark` when the
    window would read the source's declared watermark box.
    """
    height, width = rgb.shape[:2]
    center, face_px = face_geometry(landmarks, margin)
    window = place_window(center, side, width, height)
    if window is None:
        return NativeCut(None, None, face_px, "native_too_small", f"frame {width}x{height} < window {side} px")
    if watermark_px is not None and window_reads_box(window, watermark_px):
        return NativeCut(None, window, face_px, "watermark",
                         f"the window would read the source's declared watermark box {list(watermark_px)}")
    return NativeCut(cut_window(rgb, window), window, face_px)
