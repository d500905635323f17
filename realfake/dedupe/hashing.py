"""Per-face hashes: an exact hash of the decoded pixels and 64-bit pHash / dHash.

The perceptual hashes are a vectorised numpy re-implementation of imagehash's `phash` and `dhash`
(same PIL grayscale conversion, same Lanczos resize, same DCT-II and median rule, same bit order), so
`int(str(imagehash.phash(img)), 16) == phash` bit for bit (checked in tests). We do not call imagehash
directly because it returns one Python object per image (a bool array behind a hex string), while the
candidate search needs a packed `uint64` per face; computing the 8x8 low-frequency DCT as one batched
matrix product also avoids scipy's per-image FFT calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PHASH_SIDE = 32  # imagehash: hash_size 8 x highfreq_factor 4
HASH_BITS = 64
THUMB_SIDE = 16  # side of the grayscale thumbnail that verifies a frame match (pipeline._frame_pairs)


@dataclass(frozen=True)
class FaceHashes:
    """The hashes of one face crop (and of its mirror image, for flip matching)."""

    exact: str
    phash: int
    dhash: int
    phash_flip: int
    dhash_flip: int
    thumb: bytes = b""  # THUMB_SIDE x THUMB_SIDE grayscale (Lanczos), row-major uint8


def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II matrix, identical to scipy.fftpack.dct(type=2, norm=None)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT8 = _dct_matrix(PHASH_SIDE)[:8]  # only the 8 lowest frequencies enter the hash


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack (N, 64) booleans into N uint64, first bit most significant (imagehash's hex order)."""
    packed = np.packbits(bits.reshape(len(bits), HASH_BITS).astype(np.uint8), axis=1, bitorder="big")
    return packed.view(">u8").ravel().astype(np.uint64)


def phash_batch(gray32: np.ndarray) -> np.ndarray:
    """pHash of a (N, 32, 32) stack of grayscale images: low 8x8 DCT coefficients above their median."""
    low = _DCT8 @ gray32.astype(np.float64) @ _DCT8.T
    flat = low.reshape(len(low), 64)
    return pack_bits(flat > np.median(flat, axis=1, keepdims=True))


def dhash_batch(gray9x8: np.ndarray) -> np.ndarray:
    """dHash of a (N, 8, 9) stack of grayscale images: is each pixel brighter than its left neighbour."""
    g = gray9x8.astype(np.int16)
    return pack_bits(g[:, :, 1:] > g[:, :, :-1])


def exact_pixel_hash(img: Image.Image) -> str:
    """SHA-256 of the decoded RGB pixels and the size: equal for byte-different files with equal pixels."""
    rgb = img.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def small_grays(img: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The two downsized grayscale inputs of pHash (32x32) and dHash (9 wide, 8 high)."""
    gray = img.convert("L")
    g32 = np.asarray(gray.resize((PHASH_SIDE, PHASH_SIDE), Image.Resampling.LANCZOS))
    g98 = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS))
    return g32, g98


def hash_image(img: Image.Image) -> FaceHashes:
    """All hashes of one image (the flip hashes are those of its left-right mirror)."""
    flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    (a32, a98), (b32, b98) = small_grays(img), small_grays(flipped)
    ph = phash_batch(np.stack([a32, b32]))
    dh = dhash_batch(np.stack([a98, b98]))
    thumb = img.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS).tobytes()
    return FaceHashes(exact_pixel_hash(img), int(ph[0]), int(dh[0]), int(ph[1]), int(dh[1]), thumb)


def hash_file(path: str | Path) -> FaceHashes:
    """Decode an image file and hash it (raises OSError/ValueError on unreadable files)."""
    with Image.open(path) as img:
        img.load()
        return hash_image(img)


def hash_files(paths: list[str]) -> list[FaceHashes | str]:
    """hash_file over a batch, with the error text in place of an unreadable file's hashes (the per-batch function)."""
    out: list[FaceHashes | str] = []
    for path in paths:
        try:
            out.append(hash_file(path))
        except (OSError, ValueError, SyntaxError) as exc:  # bad input must not stop the stage
            out.append(f"{type(exc).__name__}: {exc}")
    return out
