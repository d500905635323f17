"""The evaluate stage's pictures: the error gallery, Grad-CAM overlays and the reliability diagram.

Faces are shown at TILE px (packed crops are small; nearest-neighbour keeps their pixels honest) and every
caption is cut to its tile's width, so neighbouring captions never overlap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from realfake.core.atomic import atomic_path
from realfake.detector.gradcam import cam_overlay

TILE = 112  # displayed face size (px)
FONT_PX = 11
LINE = 14  # caption line height (px)
PAD = 3


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at FONT_PX (a bitmap fallback where FreeType is missing)."""
    return ImageFont.load_default(size=FONT_PX)


def fit_text(font, text: str, width: int) -> str:
    """`text`, shortened with an ellipsis until it is at most `width` px wide in `font`."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…" if text else ""


def _tile(chw: np.ndarray) -> Image.Image:
    """One packed face (3×S×S uint8) as a TILE×TILE picture."""
    return Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0))).resize((TILE, TILE), Image.Resampling.NEAREST)


def _caption(draw: ImageDraw.ImageDraw, font, lines: list[str], left: int, top: int) -> None:
    """Caption lines under a tile, each cut to the tile's width."""
    for k, text in enumerate(lines):
        draw.text((left + PAD, top + k * LINE), fit_text(font, text, TILE - 2 * PAD), fill="black", font=font)


def _save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")


def gallery(images: np.ndarray, frame: pd.DataFrame, threshold: float, n: int, path: Path) -> None:
    """A PNG grid of the most confidently wrong test faces: real called fake (top), fake called real (bottom)."""
    wrong_fp = frame[(frame["y"] == 0) & (frame["p_fake"] >= threshold)].nlargest(n, "p_fake")
    wrong_fn = frame[(frame["y"] == 1) & (frame["p_fake"] < threshold)].nsmallest(n, "p_fake")
    font = _font()
    row_h = LINE + TILE + 2 * LINE + PAD
    sheet = Image.new("RGB", (max(n, 2) * TILE, 2 * row_h), "white")
    draw = ImageDraw.Draw(sheet)
    for row_i, (title, rows) in enumerate((("real called fake", wrong_fp), ("fake called real", wrong_fn))):
        top = row_i * row_h
        draw.text((PAD, top + 1), f"{title}: {len(rows)} shown (threshold {threshold:.3f})", fill="black", font=font)
        for col, (idx, rec) in enumerate(rows.iterrows()):
            sheet.paste(_tile(images[idx]), (col * TILE, top + LINE))
            _caption(draw, font, [str(rec["source"]), f"p_fake {rec['p_fake']:.3f}"], col * TILE, top + LINE + TILE)
    _save_png(sheet, path)


def cam_sheet(images: np.ndarray, cams: np.ndarray, frame: pd.DataFrame, correct: pd.Series, path: Path) -> None:
    """Each picked face above its Grad-CAM overlay (red = evidence for fake), captioned right/wrong and p_fake."""
    font = _font()
    sheet = Image.new("RGB", (max(len(frame), 2) * TILE, 2 * TILE + 2 * LINE + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    for col, ((i, rec), cam) in enumerate(zip(frame.iterrows(), cams, strict=True)):
        sheet.paste(_tile(images[i]), (col * TILE, 0))
        sheet.paste(_tile(cam_overlay(images[i], cam)), (col * TILE, TILE))
        verdict = "right" if correct[i] else "WRONG"
        _caption(draw, font, [f"{verdict}: {'fake' if rec['y'] else 'real'}", f"p_fake {rec['p_fake']:.3f}"],
                 col * TILE, 2 * TILE)
    _save_png(sheet, path)


def reliability_png(curve: list[dict], n_bins: int, ece: float, path: Path) -> None:
    """Reliability diagram: each non-empty bin as a dot sized by its count, on the perfect-calibration diagonal.

    Dots, not a line: when every prediction falls in one bin (an untrained model), a line has nothing to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    if curve:
        x = [c["mean_predicted"] for c in curve]
        y = [c["fraction_fake"] for c in curve]
        sizes = np.array([c["count"] for c in curve], dtype=float)
        ax.plot(x, y, color="#d8573b", linewidth=1)
        ax.scatter(x, y, s=20 + 200 * sizes / sizes.max(), color="#d8573b", zorder=3,
                   label=f"test faces ({int(sizes.sum())}, {len(curve)} of {n_bins} bins)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted p_fake", ylabel="fraction fake",
           title=f"Reliability (ECE {ece:.3f})" if np.isfinite(ece) else "Reliability")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
