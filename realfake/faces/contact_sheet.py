"""Contact sheet of a source's faces: random kept crops, then some rejects with their reason written on."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from realfake.core.atomic import write_bytes
from realfake.core.imageio import DecodeError, read_image

TILE = 112
COLS = 8
BACKGROUND = (32, 32, 32)


def contact_sheet(
    records: list[dict[str, Any]], items: list[tuple[str, str]], crops_dir: Path, out_path: Path,
    n_kept: int = 48, n_rejects: int = 16, seed: int = 0, title: str = "",
) -> None:
    """Write a PNG grid: up to n_kept random kept crops, then up to n_rejects rejects labelled with the reason."""
    rng = random.Random(seed)
    kept = [r for r in records if r.get("status") == "kept"]
    rejected = [(i, r) for i, r in enumerate(records) if r.get("status") != "kept"]
    kept = rng.sample(kept, min(n_kept, len(kept)))
    rejected = rng.sample(rejected, min(n_rejects, len(rejected)))
    tiles = [_kept_tile(crops_dir / r["crop_path"]) for r in kept]
    tiles += [_reject_tile(items[i][0], r) for i, r in rejected]
    write_bytes(out_path, _png(_grid(tiles, title)))


def _kept_tile(path: Path) -> Image.Image:
    """A kept crop at tile size (blank if it cannot be read)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB").resize((TILE, TILE), Image.Resampling.LANCZOS)
    except OSError:
        return _label(Image.new("RGB", (TILE, TILE), BACKGROUND), "unreadable crop")


def _reject_tile(path: str, rec: dict[str, Any]) -> Image.Image:
    """The original image letterboxed into a tile, its primary box in red, the reason in yellow."""
    tile = Image.new("RGB", (TILE, TILE), BACKGROUND)
    try:
        img = Image.fromarray(read_image(path).rgb) if path else None
    except DecodeError:
        img = None
    if img is not None:
        k = TILE / max(img.size)
        small = ImageOps.contain(img, (TILE, TILE), Image.Resampling.LANCZOS)
        offset = ((TILE - small.width) // 2, (TILE - small.height) // 2)
        tile.paste(small, offset)
        if rec.get("box") is not None:
            x1, y1, x2, y2 = (v * k for v in rec["box"])
            ImageDraw.Draw(tile).rectangle(
                [x1 + offset[0], y1 + offset[1], x2 + offset[0], y2 + offset[1]], outline=(255, 0, 0))
    return _label(tile, str(rec.get("reason")))


def _label(tile: Image.Image, text: str) -> Image.Image:
    """Write text on a dark band at the bottom of a tile."""
    draw = ImageDraw.Draw(tile)
    draw.rectangle([0, TILE - 14, TILE, TILE], fill=(0, 0, 0))
    draw.text((2, TILE - 13), text[:20], fill=(255, 255, 0))
    return tile


def _grid(tiles: list[Image.Image], title: str) -> Image.Image:
    """Lay tiles out COLS wide under a title line."""
    rows = max(1, -(-len(tiles) // COLS))
    sheet = Image.new("RGB", (COLS * TILE, rows * TILE + 16), BACKGROUND)
    ImageDraw.Draw(sheet).text((4, 2), title or "", fill=(255, 255, 255))
    if not tiles:
        ImageDraw.Draw(sheet).text((4, 20), "no images", fill=(255, 255, 0))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % COLS) * TILE, 16 + (k // COLS) * TILE))
    return sheet


def _png(img: Image.Image) -> bytes:
    """Encode as PNG."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
