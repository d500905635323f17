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


def verdict_caption(is_fake: bool, called_fake: bool) -> str:
    """What a face is and what the detector called it, e.g. "fake, called real" (no bare right/wrong)."""
    return f"{'fake' if is_fake else 'real'}, called {'fake' if called_fake else 'real'}"


def cam_colour(cam: np.ndarray) -> np.ndarray:
    """The overlay colour of Grad-CAM values in [0, 1]: blue (0, no evidence for fake) to red (1, the strongest)."""
    return np.stack([cam, np.zeros_like(cam), 1 - cam], -1) * 255


def colour_bar(width: int, font) -> Image.Image:
    """The Grad-CAM legend: the overlay's colour ramp, labelled at both ends."""
    bar_h = 10
    strip = Image.new("RGB", (width, bar_h + LINE + 2 * PAD), "white")
    ramp = cam_colour(np.linspace(0, 1, max(width - 2 * PAD, 2))[None, :].repeat(bar_h, 0))
    strip.paste(Image.fromarray(ramp.astype(np.uint8)), (PAD, PAD))
    draw = ImageDraw.Draw(strip)
    left, right = "blue: no evidence for fake", "red: strongest evidence for fake"
    draw.text((PAD, bar_h + PAD + 1), fit_text(font, left, width // 2 - PAD), fill="black", font=font)
    right = fit_text(font, right, width // 2 - PAD)
    draw.text((width - PAD - font.getlength(right), bar_h + PAD + 1), right, fill="black", font=font)
    return strip


def cam_sheet(images: np.ndarray, cams: np.ndarray, frame: pd.DataFrame, correct: pd.Series, path: Path) -> None:
    """Each picked face above its Grad-CAM overlay, captioned "<truth>, called <verdict>" and p_fake; a colour bar
    under the grid says what the overlay's colours mean (Grad-CAM of the fake logit, scaled to each face's maximum)."""
    font = _font()
    width = max(len(frame), 2) * TILE
    bar = colour_bar(width, font)
    grid_h = 2 * TILE + 2 * LINE + PAD
    sheet = Image.new("RGB", (width, grid_h + bar.height), "white")
    draw = ImageDraw.Draw(sheet)
    for col, ((i, rec), cam) in enumerate(zip(frame.iterrows(), cams, strict=True)):
        sheet.paste(_tile(images[i]), (col * TILE, 0))
        sheet.paste(_tile(cam_overlay(images[i], cam)), (col * TILE, TILE))
        is_fake = bool(rec["y"])
        called_fake = is_fake if correct[i] else not is_fake
        _caption(draw, font, [verdict_caption(is_fake, called_fake), f"p_fake {rec['p_fake']:.3f}"],
                 col * TILE, 2 * TILE)
    sheet.paste(bar, (0, grid_h))
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
