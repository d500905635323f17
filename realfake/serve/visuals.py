"""What the page shows beside the rows: each face as the model saw it, its Grad-CAM heat map, and the photo with its
boxes. Pictures travel as data: URLs inside the JSON answer, so nothing is written to disk."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from realfake.core.imageio import DecodeError, encode_png
from realfake.detector.checkpoint import to_model_input
from realfake.detector.gradcam import cam_overlay, grad_cam
from realfake.predict import FaceCrop, Predictor, Upload, load_image

PHOTO_SIDE = 960  # the boxed photo's long side on the page (px); smaller photos keep their size
BOX_COLOURS = {"real": (22, 140, 70), "fake": (200, 40, 40), "uncertain": (210, 140, 0)}
NO_VERDICT = (120, 120, 120)


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def png_url(chw: np.ndarray) -> str:
    """A 3×S×S uint8 picture as a lossless PNG data: URL (the crop pixel for pixel)."""
    return data_url(encode_png(np.ascontiguousarray(chw.transpose(1, 2, 0))), "image/png")


def heat_maps(predictor: Predictor, crops: list[FaceCrop]) -> list[np.ndarray]:
    """Grad-CAM overlays (3×S×S uint8) of the faces, as the evaluate stage computes them."""
    if not crops:
        return []
    scorer = predictor.scorer
    x = to_model_input(torch.from_numpy(np.stack([c.image for c in crops])), scorer.pre, channels_last=False,
                       device=scorer.device)
    return [cam_overlay(c.image, cam) for c, cam in zip(crops, grad_cam(scorer.model, x), strict=True)]


def boxed_photo(upload: Upload, rows: pd.DataFrame, max_pixels: int) -> str | None:
    """The photo (EXIF-rotated, as detection saw it), at most PHOTO_SIDE px, each face boxed and numbered in its
    decision's colour (grey without a verdict); None when the photo does not decode (its row says why)."""
    try:
        rgb = load_image(upload, max_pixels).rgb
    except DecodeError:
        return None
    image = Image.fromarray(rgb)
    scale = min(1.0, PHOTO_SIDE / max(image.size))
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 250))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 30)))
    for rec in rows.itertuples():
        if pd.isna(rec.x1):
            continue
        colour = BOX_COLOURS.get(rec.decision, NO_VERDICT) if isinstance(rec.decision, str) else NO_VERDICT
        box = [float(v) * scale for v in (rec.x1, rec.y1, rec.x2, rec.y2)]
        draw.rectangle(box, outline=colour, width=width)
        label = f" {int(rec.face_index) + 1} "
        left, top = box[0], max(0.0, box[1] - font.size - 4)
        draw.rectangle(draw.textbbox((left, top), label, font=font), fill=colour)
        draw.text((left, top), label, fill="white", font=font)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=88)
    return data_url(buf.getvalue(), "image/jpeg")


def photos(predictor: Predictor, uploads: list[Upload], table: pd.DataFrame,
           scored: dict[tuple[str, int], FaceCrop], gradcam: bool) -> list[dict[str, Any]]:
    """Per upload, in order: the boxed photo and, per scored face, its crop and (when asked) its heat map."""
    keys = list(scored)
    cams = dict(zip(keys, heat_maps(predictor, [scored[k] for k in keys]), strict=True)) if gradcam else {}
    out = []
    for upload in uploads:
        rows = table[table["file"] == upload.name]
        faces = [{"face_index": k, "crop": png_url(scored[(name, k)].image),
                  "heatmap": png_url(cams[(name, k)]) if (name, k) in cams else None}
                 for name, k in keys if name == upload.name]
        out.append({"file": upload.name, "photo": boxed_photo(upload, rows, predictor.faces.max_pixels),
                    "faces": faces})
    return out
