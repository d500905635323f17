"""`realfake predict`: detect, align and crop every face in the user's photos exactly as in training, and score it."""

from __future__ import annotations

import glob
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from realfake.core.atomic import write_json, write_text
from realfake.core.device import resolve_device
from realfake.core.errors import UserError
from realfake.core.imageio import IMAGE_EXTENSIONS, DecodedImage, DecodeError, decode_image, read_image
from realfake.core.params import load_section
from realfake.core.progress import tqdm
from realfake.core.training_image import ResizeConfig, shape_crop
from realfake.crops.context import context_view
from realfake.crops.native import native_view
from realfake.crops.views import ContextConfig, recorded_view
from realfake.detector.checkpoint import read_checkpoint
from realfake.detector.fitness import fitness_of, warning_line
from realfake.detector.scorer import Scorer
from realfake.faces.alignment import align, warp_crop
from realfake.faces.crop import FacesConfig
from realfake.faces.detect import FaceDetector, detect_faces

log = logging.getLogger(__name__)

MISSING_REASONS = r"(not_found|no_match|no_images):"

COLUMNS = ["file", "face_index", "x1", "y1", "x2", "y2", "face_prob", "p_fake", "decision", "threshold", "error",
           "warning"]
OUT_SUFFIXES = (".csv", ".json")


@dataclass
class FaceCrop:
    """One detected face, ready for the model."""

    file: str
    index: int
    box: np.ndarray
    prob: float
    image: np.ndarray  # 3×S×S uint8


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
        elif path.exists():
            found.append(path)
        elif glob.has_magic(item):
            matched = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            found += matched
            if not matched:
                missing[item] = "no_match: the pattern matches no files"
        else:
            missing[item] = "not_found: no such file or directory"
    return Inputs(list(dict.fromkeys(found)), missing)


def shaping(pre: dict[str, Any]) -> tuple[FacesConfig, ResizeConfig]:
    """How a checkpoint wants a photo cut (faces) and shaped (resize): exactly the training chain."""
    faces = load_section(FacesConfig, pre, "faces")
    recorded = pre.get("resize")
    if recorded is None:  # checkpoints written before the resize settings travelled with them
        log.warning("the checkpoint does not record how training images were re-encoded (older than this "
                    "version): scoring without re-encoding; retrain for exact preprocessing")
        recorded = {"reencode": "none"}  # what training images were before re-encoding was recorded
    resize = load_section(ResizeConfig, {"resize": {**recorded, "size": int(pre["size"])}}, "resize")
    return faces, resize


def model_input(rgb: np.ndarray, landmarks: np.ndarray, faces: FacesConfig, resize: ResizeConfig) -> np.ndarray:
    """The aligned crop at crop_size, shaped as every training image was (realfake.core.training_image.shape_crop)."""
    crop = warp_crop(rgb, align(landmarks, faces.margin, faces.crop_size), faces.crop_size)
    return shape_crop(crop, resize).transpose(2, 0, 1)


def view_input(rgb: np.ndarray, landmarks: np.ndarray, faces: FacesConfig, resize: ResizeConfig,
               view: dict[str, Any]) -> tuple[np.ndarray | None, str | None]:
    """The model input of the checkpoint's view (3xSxS uint8), or why this face has none.

    context and native go through the crops stage's own functions (realfake.crops), so a photo gives the pixels the
    pipeline packed for it; the watermark rule is the stage's only difference (a photo has no declared box).
    """
    if view["name"] == "aligned":
        return model_input(rgb, landmarks, faces, resize), None
    if view["name"] == "native":
        cut = native_view(rgb, landmarks, faces.margin, int(view["native"]["side"]))
    else:
        cut = context_view(rgb, landmarks, load_section(ContextConfig, view, "context"), resize)
    if cut.pixels is None:
        return None, f"{cut.reason}: {cut.detail}"
    return cut.pixels.transpose(2, 0, 1), None


def crop_faces(paths: list[Path | Upload], detector: FaceDetector, faces: FacesConfig, resize: ResizeConfig,
               errors: list[dict[str, Any]], view: dict[str, Any] | None = None) -> list[FaceCrop]:
    """Every face above faces.min_prob in each readable file; a file that cannot be scored goes to `errors`.

    Detection is the faces stage's own (realfake.faces.detect.detect_faces): too-small images are answered, not
    crashed on, and a failure on one image never costs the others theirs. `view` is the checkpoint's (view_of).
    """
    view = view or {"name": "aligned"}
    decoded = []
    for path in paths:
        try:
            decoded.append((path, load_image(path, faces.max_pixels)))
        except DecodeError as exc:
            errors.append({"file": str(path), "error": f"{exc.reason}: {exc.detail}".rstrip(": ")})
        except OSError as exc:
            errors.append({"file": str(path), "error": f"unreadable: {exc}"})
    crops: list[FaceCrop] = []
    detections = detect_faces(detector, [img.rgb for _, img in decoded], faces)
    for (path, img), found in zip(decoded, detections, strict=True):
        if found.reason:
            errors.append({"file": str(path), "error": f"{found.reason}: {found.detail}"})
            continue
        kept = [f for f in found.faces if f.prob >= faces.min_prob]
        if not kept:
            errors.append({"file": str(path), "error": "no_face"})
        for k, face in enumerate(sorted(kept, key=lambda f: (f.box[0], f.box[1]))):
            where = {"file": str(path), "face_index": k, "x1": face.box[0], "y1": face.box[1], "x2": face.box[2],
                     "y2": face.box[3], "face_prob": face.prob}
            side = align(face.landmarks, faces.margin, faces.crop_size).side
            if side < faces.min_face_px:  # training never saw upscaled faces: don't score them either
                errors.append({**where, "error": f"face_too_small: {side:.0f} px < faces.min_face_px={faces.min_face_px}"})
                continue
            try:
                image, why = view_input(img.rgb, face.landmarks, faces, resize, view)
                if image is None:  # the crops stage rejects such faces from training: don't score them either
                    errors.append({**where, "error": why})
                    continue
                crops.append(FaceCrop(str(path), k, face.box, face.prob, image))
            except Exception as exc:  # noqa: BLE001 -- one odd face must not cost the batch its results
                errors.append({**where, "error": f"crop_error: {type(exc).__name__}: {exc}"[:200]})
    return crops


class Predictor:
    """A model loaded once with everything `predict` needs to cut and score photos as in training (also `serve`)."""

    def __init__(self, model_path: Path, threshold: float | None = None, device: str = "cpu"):
        self.scorer = Scorer(model_path, resolve_device(device, "--device"))
        self.faces, self.resize = shaping(self.scorer.checkpoint["preprocessing"])
        self.view = recorded_view(self.scorer.checkpoint["preprocessing"])
        info = self.scorer.checkpoint.get("info", {})
        self.threshold = float(info.get("threshold", 0.5) if threshold is None else threshold)
        self.warning = warning_line(fitness_of(self.scorer.checkpoint))
        self.detector = FaceDetector(self.faces.detect_size, self.faces.min_face_px, self.faces.detect_pad)

    def score(self, paths: list[Path | Upload], missing: dict[str, str] | None = None,
              batch: int = 16) -> tuple[pd.DataFrame, dict[tuple[str, int], FaceCrop]]:
        """predict's table for `paths` (and the inputs that named nothing), and each scored face's model input."""
        missing, threshold = missing or {}, self.threshold
        rows, errors, scored = [], [], {}
        for start in tqdm(range(0, len(paths), batch), desc="predict", unit="batch"):
            crops = crop_faces(paths[start:start + batch], self.detector, self.faces, self.resize, errors, self.view)
            if crops:
                scores = self.scorer(np.stack([c.image for c in crops]))
                rows += [{"file": c.file, "face_index": c.index, "x1": c.box[0], "y1": c.box[1], "x2": c.box[2],
                          "y2": c.box[3], "face_prob": c.prob, "p_fake": float(p),
                          "decision": "fake" if p >= threshold else "real", "threshold": threshold, "error": None}
                         for c, p in zip(crops, scores, strict=True)]
                scored.update({(c.file, c.index): c for c in crops})
        errors += [{"file": item, "error": why} for item, why in missing.items()]
        table = pd.DataFrame(rows + [{**e, "threshold": threshold} for e in errors], columns=COLUMNS)
        table["face_index"] = table["face_index"].astype("Int64")
        table["warning"] = self.warning
        order = {name: i for i, name in enumerate([str(p) for p in paths] + list(missing))}
        table = table.sort_values(["file", "face_index"], key=lambda s: s.map(order) if s.name == "file" else s,
                                  kind="stable").reset_index(drop=True)
        return table, scored


def predict(inputs: list[str], model_path: Path, batch: int = 16, threshold: float | None = None,
            device: str = "cpu") -> pd.DataFrame:
    """One row per face, one per file that could not be scored and one per input that named nothing, in input order.

    When the model is not fit to judge (realfake.detector.fitness), every row carries the reason in `warning`.
    """
    predictor = Predictor(model_path, threshold, device)
    named = expand_inputs(inputs)
    return predictor.score(named.files, named.missing, batch)[0]


def csv_text(table: pd.DataFrame) -> str:
    """The CSV `--out results.csv` writes; `serve`'s download is this text too."""
    return table.to_csv(index=False)


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts (missing values as None): `--out results.json` and `serve`'s /api/predict."""
    return table.replace({np.nan: None}).to_dict(orient="records")


def check_out(out: Path) -> None:
    """Refuse an output path before any work is done: a known extension and a writable folder."""
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UserError(f"--out must end in .csv or .json, got {out}")
    if out.is_dir():
        raise UserError(f"--out {out} is a directory: name a .csv or .json file")
    folder = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"--out {out}: cannot write in {folder}")


def write_results(table: pd.DataFrame, out: Path) -> None:
    """CSV or JSON by the file's extension."""
    if out.suffix.lower() == ".json":
        write_json(out, records(table))
    elif out.suffix.lower() == ".csv":
        write_text(out, csv_text(table))
    else:
        raise UserError(f"--out must end in .csv or .json, got {out}")


def summary(table: pd.DataFrame, seconds: float) -> str:
    """One line for the terminal."""
    scored = table[table["error"].isna()]
    missing = table["error"].fillna("").str.match(MISSING_REASONS)
    return (f"{table.loc[~missing, 'file'].nunique()} files, {len(scored)} faces scored in {seconds:.1f}s: "
            f"{int((scored['decision'] == 'fake').sum())} fake, {int((scored['decision'] == 'real').sum())} real; "
            f"{table.loc[table['error'].notna() & ~missing, 'file'].nunique()} files not scored"
            + (f"; {int(missing.sum())} inputs named nothing" if missing.any() else ""))


def run_predict(inputs: list[str], model: str, out: str | None, threads: int = 2, device: str = "auto") -> pd.DataFrame:
    """The CLI command: score, write, summarise; inputs that named nothing make it exit 2 after the others are written."""
    if out:
        check_out(Path(out))
    named = expand_inputs(inputs)
    if not named.files:
        raise UserError(missing_line(list(named.missing), len(inputs), "nothing to score"))
    read_checkpoint(model)  # a bad model is one clear line before any photo is read
    torch.set_num_threads(threads)
    start = time.perf_counter()
    table = predict(inputs, Path(model), device=device)
    warning = table["warning"].iloc[0] if len(table) else None
    if out:
        write_results(table, Path(out))
    else:
        if warning:
            print(f"WARNING: {warning}")
        print(table.drop(columns="warning").to_string(index=False))
    if warning:
        log.warning("%s%s", warning, f" (every row of {out} carries it in `warning`)" if out else "")
    log.info("%s", summary(table, time.perf_counter() - start))
    missing = table.loc[table["error"].fillna("").str.match(MISSING_REASONS), "file"].tolist()
    if missing:
        raise UserError(missing_line(missing, len(inputs), f"the others' results are in {out}" if out else
                                     "the others were scored"))
    return table


def missing_line(missing: list[str], n_inputs: int, outcome: str) -> str:
    """The one line that makes `realfake predict` exit 2 when an input names no file."""
    shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    return f"{len(missing)} of {n_inputs} inputs named no image file: {shown}; {outcome}"
