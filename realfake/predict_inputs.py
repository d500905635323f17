"""What `realfake predict` reads: the paths, folders and globs a user names (FIFOs and devices never opened), and
photos given as bytes (`realfake serve`), both through the same decoder."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from realfake.core.imageio import IMAGE_EXTENSIONS, DecodedImage, decode_image, read_image


@dataclass
class Upload:
    """A photo given as bytes (`realfake serve`): named like a path in the results, decoded from memory, never stored."""

    name: str
    data: bytes

    def __str__(self) -> str:
        return self.name


def load_image(item: Path | Upload, max_pixels: int) -> DecodedImage:
    """A file or an upload through the same decoder (format checks, bomb guard)."""
    return decode_image(item.data, max_pixels) if isinstance(item, Upload) else read_image(item, max_pixels)


@dataclass
class Inputs:
    """What the command line named: the files to score, and each argument that named nothing, with why."""

    files: list[Path]
    missing: dict[str, str]  # argument -> not_found | no_match | no_images


def expand_inputs(inputs: list[str]) -> Inputs:
    """Files, directories (recursively, image files only) and globs, in a stable order without repeats."""
    found: list[Path] = []
    missing: dict[str, str] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            found += inside
            if not inside:
                missing[item] = "no_images: the directory holds no image files"
        elif path.is_file():
            found.append(path)
        elif path.exists():  # a FIFO would block the read forever; a device never ends
            missing[item] = "not_a_file: a FIFO, device or socket, not a regular file"
        elif glob.has_magic(item):
            matched = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            found += matched
            if not matched:
                missing[item] = "no_match: the pattern matches no files"
        else:
            missing[item] = "not_found: no such file or directory"
    return Inputs(list(dict.fromkeys(found)), missing)
