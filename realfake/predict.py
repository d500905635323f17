"""`realfake predict`: detect, align and crop every face in the user's photos exactly as in training, and score it."""

from __future__ import annotations

import glob
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from realfake.core.atomic import write_json, write_text
from realfake.core.errors import UserError
from realfake.core.imageio import IMAGE_EXTENSIONS, DecodeError, read_image
from realfake.detector.scorer import Scorer
from realfake.faces.alignment import RESAMPLE, align, warp_crop
from realfake.faces.crop import FacesConfig
from realfake.faces.detect import Detector

log = logging.getLogger(__name__)

COLUMNS = ["file", "face_index", "x1", "y1", "x2", "y2", "face_prob", "p_fake", "decision", "threshold", "error"]


@dataclass
class FaceCrop:
    """One detected face, ready for the model."""

    file: str
    index: int
    box: np.ndarray
    prob: float
    image: np.ndarray  # 3×S×S uint8


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, directories (recursively, image files only) and globs, in a stable order without repeats."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.exists():
            found.append(path)
        elif glob.has_magic(item):
            found += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            found.append(path)  # reported as an unreadable file, not a crash
    unique = list(dict.fromkeys(found))
    if not unique:
        raise UserError(f"no input files found in {inputs}")
    return unique


def model_input(rgb: np.ndarray, landmarks: np.ndarray, faces: FacesConfig, size: int) -> np.ndarray:
    """The aligned crop at crop_size, then resized to the model size with the pipeline's one filter."""
    crop = warp_crop(rgb, align(landmarks, faces.margin, faces.crop_size), faces.crop_size)
    small = Image.fromarray(crop)
    if size != faces.crop_size:
        small = small.resize((size, size), RESAMPLE)
    return np.asarray(small.convert("RGB")).transpose(2, 0, 1)


def crop_faces(paths: list[Path], detector: Detector, faces: FacesConfig, size: int,
               errors: list[dict[str, Any]]) -> list[FaceCrop]:
    """Every face above faces.min_prob in each readable file; unreadable or faceless files go to `errors`."""
    crops: list[FaceCrop] = []
    for path in paths:
        try:
            img = read_image(path, faces.max_pixels)
        except DecodeError as exc:
            errors.append({"file": str(path), "error": f"{exc.reason}: {exc.detail}".rstrip(": ")})
            continue
        except OSError as exc:
            errors.append({"file": str(path), "error": f"unreadable: {exc}"})
            continue
        found = [f for f in detector.detect([img.rgb])[0] if f.prob >= faces.min_prob]
        if not found:
            errors.append({"file": str(path), "error": "no_face"})
        for k, face in enumerate(sorted(found, key=lambda f: (f.box[0], f.box[1]))):
            side = align(face.landmarks, faces.margin, faces.crop_size).side
            if side < faces.min_face_px:  # training never saw upscaled faces: don't score them either
                errors.append({"file": str(path), "face_index": k, "x1": face.box[0], "y1": face.box[1],
                               "x2": face.box[2], "y2": face.box[3], "face_prob": face.prob,
                               "error": f"face_too_small: {side:.0f} px < faces.min_face_px={faces.min_face_px}"})
                continue
            crops.append(FaceCrop(str(path), k, face.box, face.prob, model_input(img.rgb, face.landmarks, faces, size)))
    return crops


def predict(inputs: list[str], model_path: Path, batch: int = 16, threshold: float | None = None) -> pd.DataFrame:
    """One row per face (and one per file that could not be scored), in input order."""
    scorer = Scorer(model_path)
    pre = scorer.checkpoint["preprocessing"]
    faces = FacesConfig.from_params(pre.get("faces"))
    size = int(pre["size"])
    threshold = float(scorer.checkpoint.get("info", {}).get("threshold", 0.5) if threshold is None else threshold)
    detector = Detector(faces.detect_size, faces.min_face_px, faces.detect_pad)  # as in the faces stage
    paths = expand_inputs(inputs)
    rows, errors = [], []
    for start in tqdm(range(0, len(paths), batch), desc="predict", unit="batch"):
        crops = crop_faces(paths[start:start + batch], detector, faces, size, errors)
        if crops:
            scores = scorer(np.stack([c.image for c in crops]))
            rows += [{"file": c.file, "face_index": c.index, "x1": c.box[0], "y1": c.box[1], "x2": c.box[2],
                      "y2": c.box[3], "face_prob": c.prob, "p_fake": float(p),
                      "decision": "fake" if p >= threshold else "real", "threshold": threshold, "error": None}
                     for c, p in zip(crops, scores, strict=True)]
    table = pd.DataFrame(rows + [{**e, "threshold": threshold} for e in errors], columns=COLUMNS)
    table["face_index"] = table["face_index"].astype("Int64")
    order = {str(p): i for i, p in enumerate(paths)}
    return table.sort_values(["file", "face_index"], key=lambda s: s.map(order) if s.name == "file" else s,
                             kind="stable").reset_index(drop=True)


def write_results(table: pd.DataFrame, out: Path) -> None:
    """CSV or JSON by the file's extension."""
    if out.suffix.lower() == ".json":
        write_json(out, table.replace({np.nan: None}).to_dict(orient="records"))
    elif out.suffix.lower() == ".csv":
        write_text(out, table.to_csv(index=False))
    else:
        raise UserError(f"--out must end in .csv or .json, got {out}")


def summary(table: pd.DataFrame, seconds: float) -> str:
    """One line for the terminal."""
    scored = table[table["error"].isna()]
    return (f"{table['file'].nunique()} files, {len(scored)} faces scored in {seconds:.1f}s: "
            f"{int((scored['decision'] == 'fake').sum())} fake, {int((scored['decision'] == 'real').sum())} real; "
            f"{int(table['error'].notna().sum())} files not scored")


def run_predict(inputs: list[str], model: str, out: str | None, threads: int = 2) -> pd.DataFrame:
    """The CLI command: score, write, summarise."""
    if not Path(model).exists():
        raise UserError(f"model {model} not found: train one with `dvc repro` or pass --model")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    table = predict(inputs, Path(model))
    if out:
        write_results(table, Path(out))
    else:
        print(table.to_string(index=False))
    log.info("%s", summary(table, time.perf_counter() - start))
    return table
