"""Image I/O: robust decoding (EXIF orientation, every mode to 8-bit RGB, bomb guard, JPEG quality), the one resampling
filter, lossless PNG, the one JPEG encoder and the one Gaussian blur."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from realfake.core.errors import without_addresses

# One resampling filter for every scale change in the pipeline (antialiased when shrinking).
RESAMPLE = Image.Resampling.LANCZOS
JPEG_SUBSAMPLING = 2  # Pillow's code for 4:2:0, set explicitly so a Pillow default change cannot alter it
# Larger images are refused before decoding (decompression-bomb guard); 50 Mpx is far above any face photo.
DEFAULT_MAX_PIXELS = 50_000_000
# Smaller images cannot hold a detectable face (MTCNN's smallest window is 12 px).
MIN_SIDE = 12
# A pixel counts as grey when its channels differ by at most this much (JPEG chroma noise on grey photos).
GRAY_TOLERANCE = 6
# Share of pixels allowed above the tolerance before the image counts as colour (stray colour specks).
GRAY_OUTLIER_SHARE = 0.005

# IJG standard luminance quantisation table (JPEG spec Annex K), in natural (row-major) order.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)


class DecodeError(Exception):
    """An image that cannot be used; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = ""):
        detail = without_addresses(detail)  # stored in data/faces/<source>.parquet: must not vary between runs
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class DecodedImage:
    """An image as 8-bit RGB plus what it was before conversion."""

    rgb: np.ndarray  # H x W x 3 uint8, EXIF orientation applied
    orig_width: int  # as stored in the file, before EXIF rotation
    orig_height: int
    orig_mode: str  # PIL mode of the file (e.g. RGB, L, P, RGBA, CMYK, I;16)
    orig_format: str  # PIL format (JPEG, PNG, ...)
    jpeg_quality: int | None  # estimated from the luma quantisation table; None if not JPEG
    is_grayscale: bool  # by channel equality, not by mode
    exif_rotated: bool  # an EXIF orientation other than 1 was applied


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode image bytes to RGB, or raise DecodeError with a reason; never anything else."""
    if not data:
        raise DecodeError("empty_file")
    try:
        return _decode(data, max_pixels)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError("too_many_pixels", str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        # not str(exc): Pillow names the BytesIO object by its memory address, which would make the faces
        # table (and dvc.lock) differ from run to run
        raise DecodeError("not_an_image", "no image decoder recognises the file") from exc
    except (OSError, SyntaxError) as exc:
        # Pillow signals truncation with OSError("image file is truncated ...") or a short read
        reason = "truncated" if "truncat" in str(exc).lower() or "broken data" in str(exc).lower() else "decode_error"
        raise DecodeError(reason, str(exc)) from exc
    except Exception as exc:  # any other decoder failure is still a bad file, not a crash
        raise DecodeError("decode_error", f"{type(exc).__name__}: {exc}") from exc


def _decode(data: bytes, max_pixels: int) -> DecodedImage:
    """Open, guard, load, orient and convert; exceptions are classified by the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
    width, height = img.size
    if width * height > max_pixels:
        raise DecodeError("too_many_pixels", f"{width}x{height} > {max_pixels} px")
    if min(width, height) < MIN_SIDE:
        raise DecodeError("too_small", f"{width}x{height}")
    mode, fmt = img.mode, img.format or "unknown"
    quality = estimate_jpeg_quality(img) if fmt == "JPEG" else None
    img.load()  # forces the full decode here, so truncation surfaces as an error
    orientation = img.getexif().get(0x0112, 1)
    rotated = orientation not in (1, None)
    if rotated:
        img = ImageOps.exif_transpose(img)
    rgb = to_rgb8(img)
    return DecodedImage(rgb, width, height, mode, fmt, quality, is_grayscale(rgb), bool(rotated))


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to H x W x 3 uint8 RGB in one defined way.

    - alpha (RGBA, LA, P with transparency): composited over mid grey (128), so transparent areas carry
      no colour cue and no black/white frame;
    - 16/32-bit integer (I;16, I): scaled by the actual bit depth to 0-255, not clipped;
    - float (F): clipped to 0-255;
    - CMYK: Pillow's conversion (Adobe-inverted CMYK is handled by the JPEG plugin); ICC profiles ignored;
    - grey (L, 1): replicated to three channels.
    """
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        img = Image.alpha_composite(base, rgba).convert("RGB")
    if img.mode.startswith("I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), "L")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def is_grayscale(rgb: np.ndarray) -> bool:
    """True when R, G and B are (nearly) equal everywhere: a grey photo stored as colour counts too."""
    step = max(1, max(rgb.shape[:2]) // 256)  # a subsample is enough and keeps this cheap on big images
    sample = rgb[::step, ::step].astype(np.int16)
    spread = sample.max(axis=2) - sample.min(axis=2)
    return float((spread > GRAY_TOLERANCE).mean()) <= GRAY_OUTLIER_SHARE


def estimate_jpeg_quality(img: Image.Image) -> int | None:
    """Estimate the IJG quality (1-100) whose scaled standard luma table best matches the file's table."""
    tables = getattr(img, "quantization", None)
    if not tables or 0 not in tables:
        return None
    luma = np.asarray(tables[0], dtype=np.float64)
    if luma.size != 64:
        return None
    # Pillow returns tables in natural order since 8.3 (zigzag before); both orders give the same best q
    # for IJG tables closely enough, and the mean-based error below is order-insensitive.
    qualities = np.arange(1, 101)
    scale = np.where(qualities < 50, 5000.0 / qualities, 200.0 - 2.0 * qualities)
    candidates = np.clip(np.floor((_STD_LUMA[None, :] * scale[:, None] + 50.0) / 100.0), 1, 255)
    errors = np.abs(np.sort(candidates, axis=1) - np.sort(luma)[None, :]).mean(axis=1)
    return int(qualities[int(np.argmin(errors))])


def read_image(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read a file and decode it; unreadable files become DecodeError('unreadable')."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DecodeError("unreadable", str(exc)) from exc
    return decode_image(data, max_pixels)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG without metadata, fast zlib level: identical pixels give identical bytes."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)  # 5x faster than 6 for +14 % bytes
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """The pipeline's one JPEG encoder: baseline, 4:2:0, IJG standard tables scaled to `quality`, no optimisation.

    Training re-encoding (resize.reencode), JPEG augmentation and the robustness damage all use it, so a JPEG
    means the same thing everywhere (OpenCV's libjpeg-turbo gives the same bytes; checked in tests/test_imageio.py).
    """
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(quality), subsampling=JPEG_SUBSAMPLING,
                              optimize=False, progressive=False)
    return buf.getvalue()


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """H x W x 3 uint8 RGB through encode_jpeg at `quality` and back."""
    with Image.open(io.BytesIO(encode_jpeg(rgb, quality))) as img:
        return np.array(img.convert("RGB"))  # a writable array (torch.from_numpy warns on a read-only one)


def gaussian_blur(hwc: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of one H x W x C image (uint8 or float), reflected borders; sigma <= 0 returns it unchanged.

    OpenCV picks the kernel from sigma: 2·round(3σ)+1 taps for 8-bit images (the same as 2·ceil(3σ)+1 for the
    robustness specs), 2·round(4σ)+1 for float ones. Augmentation and the robustness damage both blur here.
    """
    if sigma <= 0:
        return hwc
    return cv2.GaussianBlur(hwc, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
