"""Build the embedded sample: a few dozen images per mirror archive, in the mirror's own layout.

The selection is seeded and the ZIPs are written with fixed timestamps in sorted order, so the same mirror
and seed always give byte-identical archives (and the checksums in params.yaml stay valid).
"""

from __future__ import annotations

import csv
import io
import logging
import random
import stat
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from realfake.core.atomic import atomic_path, write_text
from realfake.ingest.checksum import sha256_file

log = logging.getLogger(__name__)

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
Picker = Callable[[zipfile.ZipFile, int, random.Random], list[str]]


def _images(zf: zipfile.ZipFile) -> list[str]:
    return sorted(n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))


def pick_random(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """n images uniformly at random."""
    images = _images(zf)
    return sorted(rng.sample(images, min(n, len(images))))


def pick_ffhq(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """FFHQ images with their features JSON; half from ids < 600 so ffhq-1024 overlaps, one `[]` feature file."""
    images = _images(zf)
    low = [p for p in images if int(PurePosixPath(p).stem) < 600]
    empty = [p for p in images if zf.read(_ffhq_json(p)).strip() == b"[]"]
    chosen = set(rng.sample(low, n // 2)) | set(empty[:1])
    chosen |= set(rng.sample([p for p in images if p not in chosen], n - len(chosen)))
    return sorted(chosen) + sorted(_ffhq_json(p) for p in chosen)


def _ffhq_json(image: str) -> str:
    return image.replace("/images/", "/features/").rsplit(".", 1)[0] + ".json"


def pick_ffhq_1024(ffhq_ids: set[int]) -> Picker:
    """ffhq-1024 copies of photos that the ffhq sample also holds (the known cross-source overlap)."""
    def pick(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
        overlap = [p for p in _images(zf) if int(PurePosixPath(p).stem) in ffhq_ids]
        return sorted(rng.sample(overlap, min(n, len(overlap))))
    return pick


def pick_lfw(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """Whole LFW people (so groups matter) up to about n images, plus the gender lists and README."""
    people: dict[str, list[str]] = defaultdict(list)
    for p in _images(zf):
        people[PurePosixPath(p).parent.name].append(p)
    chosen: list[str] = []
    for name in rng.sample(sorted(people), len(people)):
        if len(people[name]) <= 6 and len(chosen) + len(people[name]) <= n:
            chosen += people[name]
        if len(chosen) >= n:
            break
    return sorted(chosen) + ["male_names.txt", "female_names.txt", "README.txt"]


def pick_utkface(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """Random UTKFace crops plus every file whose name misses a field (the parser's malformed cases)."""
    images = _images(zf)
    malformed = [p for p in images if PurePosixPath(p).name.count("_") < 3]
    rest = [p for p in images if p not in malformed]
    return sorted(malformed + rng.sample(rest, n - len(malformed)))


def pick_dfdc(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """DFDC fakes together with the real videos they were made from, plus metadata.csv."""
    rows = list(csv.DictReader(io.StringIO(zf.read("metadata.csv").decode())))
    present = {PurePosixPath(p).stem for p in _images(zf)}
    pairs = [(r["videoname"], r["original"]) for r in rows
             if r["label"] == "FAKE" and _stem(r["videoname"]) in present and _stem(r["original"]) in present]
    chosen = rng.sample(sorted(pairs), n // 2)
    return sorted(f"faces_224/{_stem(v)}.jpg" for pair in chosen for v in pair) + ["metadata.csv"]


def _stem(video: str) -> str:
    return PurePosixPath(video).stem


def pick_ciplab(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """Half Photoshop composites (all levels), half real portraits."""
    images = _images(zf)
    fake = [p for p in images if "/training_fake/" in p]
    real = [p for p in images if "/training_real/" in p]
    return sorted(rng.sample(fake, n // 2) + rng.sample(real, n - n // 2))


def pick_halves(first: str, second: str) -> Picker:
    """n/2 images from each of two folders (pixabay man/woman, unsplash female/male, 140k-faces real/fake)."""
    def pick(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
        images = _images(zf)
        halves = [[p for p in images if f"/{folder}/" in p] for folder in (first, second)]
        return sorted(rng.sample(halves[0], n // 2) + rng.sample(halves[1], n - n // 2))
    return pick


def pick_pollinations(zf: zipfile.ZipFile, n: int, rng: random.Random) -> list[str]:
    """Half carrying the bottom-right watermark, half without, plus the file whose name holds no prompt."""
    import numpy as np
    from PIL import Image

    from realfake.core.watermark import Watermark, stroke_share

    mark = Watermark(POLLINATIONS_WATERMARK)
    marked, clean, odd = [], [], []
    for p in _images(zf):
        if not PurePosixPath(p).stem.split("_", 2)[-1].lower().startswith("a_"):
            odd.append(p)
            continue
        with Image.open(io.BytesIO(zf.read(p))) as im:
            rgb = np.asarray(im.convert("RGB"))
        share = stroke_share(rgb, mark.pixels(rgb.shape[1], rgb.shape[0]))
        (marked if share > WATERMARK_SHARE else clean).append(p)
    half = (n - len(odd)) // 2
    return sorted(odd + rng.sample(marked, half) + rng.sample(clean, n - len(odd) - half))


def filter_sidecars(zf: zipfile.ZipFile, name: str, members: list[str]) -> bytes:
    """Shrink the LFW name lists and the DFDC metadata to the members in the sample."""
    data = zf.read(name)
    if name.endswith("_names.txt"):
        keep = {PurePosixPath(m).name for m in members}
        return "".join(f"{line}\n" for line in data.decode().splitlines() if line.strip() in keep).encode()
    if name == "metadata.csv":
        keep = {PurePosixPath(m).stem for m in members}
        lines = data.decode().splitlines()
        return "\n".join([lines[0], *[ln for ln in lines[1:] if _stem(ln.split(",")[0]) in keep]]).encode() + b"\n"
    return data


def write_zip(path: Path, zf: zipfile.ZipFile, members: list[str]) -> None:
    """A deterministic, uncompressed ZIP with `members` copied from `zf` (sidecars filtered)."""
    with atomic_path(path, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as out:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            out.writestr(info, filter_sidecars(zf, name, members))


PICKERS: dict[str, Picker] = {
    "ffhq": pick_ffhq, "lfw": pick_lfw, "utkface": pick_utkface, "dfdc-faceswap": pick_dfdc,
    "ciplab-photoshop": pick_ciplab, "stylegan-140k": pick_random, "tpdne": pick_random,
    "boredhumans": pick_random, "generated-faces": pick_random,
    "pixabay": pick_halves("man", "woman"), "pollinations": pick_pollinations,
    "140k-faces": pick_halves("real", "fake"), "unsplash": pick_halves("female", "male"),
}
# The archives added later take a share of per_source, so the sample stays a few MB (README.md here)
SHARE = {"pixabay": 0.3, "pollinations": 0.4, "140k-faces": 0.6, "unsplash": 0.3}
# Where pollinations' "pollinations.ai" mark sits (params.yaml sources.pollinations.watermark) and the stroke
# share above which an image carries it (measured on the mirror: tests/test_watermark.py)
POLLINATIONS_WATERMARK = (0.68, 0.93, 1.0, 1.0)
WATERMARK_SHARE = 0.1


def make_sample(mirror: Path, out: Path, per_source: int = 40, seed: int = 0) -> dict[str, str]:
    """Write one small ZIP per mirror archive into `out`; return their SHA-256 sums."""
    out.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    ffhq_ids: set[int] = set()
    for archive in [*PICKERS, "ffhq-1024"]:
        rng = random.Random(f"{seed}:{archive}")
        picker = pick_ffhq_1024(ffhq_ids) if archive == "ffhq-1024" else PICKERS[archive]
        with zipfile.ZipFile(mirror / f"{archive}.zip") as zf:
            members = picker(zf, round(per_source * SHARE.get(archive, 1.0)), rng)
            if archive == "ffhq":
                ffhq_ids = {int(PurePosixPath(m).stem) for m in members if m.endswith(".jpg")}
            write_zip(out / f"{archive}.zip", zf, members)
        sums[f"{archive}.zip"] = sha256_file(out / f"{archive}.zip")
        log.info("%s: %d members", archive, len(members))
    write_text(out / "SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return sums
