"""Decoding: every bad-input case of the faces issue, with real files made here."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from realfake.core.imageio import (
    DecodeError,
    decode_image,
    encode_jpeg,
    estimate_jpeg_quality,
    gaussian_blur,
    is_grayscale,
    jpeg_roundtrip,
    read_image,
)


def photo(w: int = 64, h: int = 48, seed: int = 0) -> np.ndarray:
    """A colourful RGB test image (smooth gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60], axis=2)
    return np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    """Save to bytes."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A real PNG whose IHDR claims width x height (CRC fixed), as a bomb would."""
    data = bytearray(encode(Image.new("RGB", (8, 8)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def reason_of(data: bytes) -> str:
    """The DecodeError reason for these bytes (fails the test if they decode)."""
    with pytest.raises(DecodeError) as info:
        decode_image(data)
    return info.value.reason


def test_zero_byte_file_is_rejected():
    assert reason_of(b"") == "empty_file"


def test_truncated_jpeg_is_rejected_not_crashing():
    data = encode(Image.fromarray(photo(200, 150)), "JPEG", quality=90)
    assert reason_of(data[: len(data) // 2]) == "truncated"


def test_text_named_jpg_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(DecodeError) as info:
        read_image(path)
    assert info.value.reason == "not_an_image"


def test_not_an_image_detail_is_the_same_every_time():
    """The detail lands in the faces table: no memory address in it, or dvc.lock changes from run to run."""
    details = set()
    for _ in range(2):
        with pytest.raises(DecodeError) as info:
            decode_image(b"plain text, not pixels\n" * 20)
        details.add(info.value.detail)
    assert len(details) == 1 and "0x" not in details.pop()


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(DecodeError) as info:
        read_image(tmp_path / "nope.jpg")
    assert info.value.reason == "unreadable"


def test_one_pixel_image_is_too_small():
    assert reason_of(encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG")) == "too_small"


def test_huge_dimension_header_is_refused_before_decoding():
    assert reason_of(huge_png_header(100_000, 100_000)) == "too_many_pixels"
    # the guard is the param, not Pillow's own limit
    with pytest.raises(DecodeError) as info:
        decode_image(encode(Image.fromarray(photo(100, 100)), "PNG"), max_pixels=5_000)
    assert info.value.reason == "too_many_pixels"


def test_png_with_alpha_is_composited_over_grey():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 255)  # opaque red left half, fully transparent right half
    out = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out.orig_mode == "RGBA" and out.rgb.shape == (32, 32, 3) and out.rgb.dtype == np.uint8
    assert tuple(out.rgb[5, 5]) == (255, 0, 0)
    assert tuple(out.rgb[5, 25]) == (128, 128, 128)


def test_palette_with_transparency_becomes_rgb():
    img = Image.fromarray(photo()).convert("P")
    img.info["transparency"] = 0
    out = decode_image(encode(img, "PNG", transparency=0))
    assert out.orig_mode == "P" and out.rgb.shape[2] == 3


def test_grayscale_jpeg_is_rgb_and_flagged():
    grey = Image.fromarray(photo()).convert("L")
    out = decode_image(encode(grey, "JPEG", quality=85))
    assert out.orig_mode == "L" and out.rgb.shape[2] == 3 and out.is_grayscale
    assert out.orig_format == "JPEG" and out.jpeg_quality == 85


def test_grayscale_is_detected_by_channels_not_mode():
    grey_as_rgb = Image.fromarray(photo()).convert("L").convert("RGB")
    out = decode_image(encode(grey_as_rgb, "JPEG", quality=75))
    assert out.orig_mode == "RGB" and out.is_grayscale
    assert not decode_image(encode(Image.fromarray(photo()), "JPEG", quality=75)).is_grayscale
    assert not is_grayscale(photo())


def test_cmyk_jpeg_converts_to_matching_rgb():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:] = (200, 40, 40)
    out = decode_image(encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95))
    assert out.orig_mode == "CMYK" and out.rgb.shape == (32, 32, 3)
    assert np.abs(out.rgb[16, 16].astype(int) - (200, 40, 40)).max() < 20
    assert not out.is_grayscale


def test_16_bit_png_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    img = Image.fromarray(ramp)  # 16-bit greyscale
    out = decode_image(encode(img, "PNG"))
    assert out.orig_mode.startswith("I")
    assert out.rgb[0, 0, 0] == 0 and out.rgb[-1, -1, 0] == 255
    assert 100 < out.rgb[16, 32, 0] < 160  # mid-ramp stays mid-grey rather than saturating
    assert out.is_grayscale


def test_exif_rotation_is_applied_and_recorded():
    arr = photo(80, 40)
    arr[:10, :10] = (255, 0, 0)  # red marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = decode_image(encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif))
    assert out.exif_rotated
    assert (out.orig_width, out.orig_height) == (80, 40)
    assert out.rgb.shape[:2] == (80, 40)  # displayed as 40 wide x 80 high
    assert out.rgb[3, -4, 0] > 200 and out.rgb[3, -4, 1] < 80  # the marker is now top-right
    plain = decode_image(encode(Image.fromarray(arr), "JPEG", quality=95))
    assert not plain.exif_rotated and plain.rgb.shape[:2] == (40, 80)


@pytest.mark.parametrize("quality", [40, 75, 92])
def test_jpeg_quality_estimate(quality):
    out = decode_image(encode(Image.fromarray(photo()), "JPEG", quality=quality))
    assert out.jpeg_quality == quality


def test_png_has_no_jpeg_quality():
    out = decode_image(encode(Image.fromarray(photo()), "PNG"))
    assert out.orig_format == "PNG" and out.jpeg_quality is None


@pytest.mark.parametrize("quality", [30, 75, 100])
def test_the_one_jpeg_encoder_matches_libjpeg_through_opencv_and_pillows_defaults(quality):
    """Resize re-encoding, JPEG augmentation and the robustness damage share encode_jpeg: it must be plain libjpeg."""
    import cv2

    rgb = cv2.GaussianBlur(np.random.default_rng(quality).integers(0, 256, (48, 40, 3), dtype=np.uint8), (5, 5), 1.5)
    data = encode_jpeg(rgb, quality)
    ok, opencv = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    pillow_default = io.BytesIO()
    Image.fromarray(rgb).save(pillow_default, format="JPEG", quality=quality)
    assert ok and data == opencv.tobytes() == pillow_default.getvalue()
    decoded = jpeg_roundtrip(rgb, quality)
    assert decoded.shape == rgb.shape and np.array_equal(decoded, jpeg_roundtrip(rgb, quality))
    assert estimate_jpeg_quality(Image.open(io.BytesIO(data))) == quality


@pytest.mark.parametrize("sigma", [0.5, 1, 1.5, 2, 3])
def test_the_one_blur_keeps_the_robustness_kernel_rule_on_8_bit_images(sigma):
    """One Gaussian blur for augmentation and robustness: on uint8 it is the explicit 2·ceil(3σ)+1 kernel."""
    import cv2

    rgb = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    k = 2 * int(np.ceil(3 * sigma)) + 1
    explicit = cv2.GaussianBlur(rgb, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    assert np.array_equal(gaussian_blur(rgb, sigma), explicit)
    assert gaussian_blur(rgb, 0) is rgb
