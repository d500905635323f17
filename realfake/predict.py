"""`realfake predict`: detect, align and crop every face in the user's photos exactly as in training, and score it."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from realfake.core.device import resolve_device
from realfake.core.errors import UserError
from realfake.core.imageio import DecodeError
from realfake.core.params import load_section
from realfake.core.progress import tqdm
from realfake.core.training_image import ResizeConfig, shape_crop
from realfake.crops.context import context_view
from realfake.crops.native import native_view
from realfake.crops.views import ContextConfig, recorded_view
from realfake.detector.checkpoint import read_checkpoint
from realfake.detector.fitness import fitness_of, warning_line
from realfake.detector.scorer import Scorer
from realfake.detector.verdict import OperatingPoint
from realfake.faces.alignment import align, warp_crop
from realfake.faces.crop import FacesConfig
from realfake.faces.detect import FaceDetector, detect_faces
from realfake.predict_inputs import Inputs, Upload, expand_inputs, load_image  # noqa: F401 -- re-exported
from realfake.predict_output import (  # noqa: F401 -- re-exported: `from realfake.predict import summary` etc.
    COLUMNS,
    DECIMALS,
    MISSING_REASONS,
    OUT_SUFFIXES,
    PLAIN_REASONS,
    check_out,
    csv_text,
    missing_line,
    plain_reason,
    plural,
    printed_table,
    records,
    rule_words,
    short_warning,
    summary,
    write_results,
)

log = logging.getLogger(__name__)

def decision(p_fake: float, point: OperatingPoint) -> str:
    """The verdict on one face: the one place it is decided (realfake.detector.verdict: real / uncertain / fake)."""
    return "fake" if p_fake >= point.t_fake else "real" if p_fake < point.t_real else "uncertain"


def operating_point(scorer: Scorer, threshold: float, override: bool) -> OperatingPoint:
    """The checkpoint's operating point; a --threshold, or a checkpoint from before it, decides at one threshold."""
    point = scorer.operating_point
    if point is None or override:
        return OperatingPoint(scorer.temperature, threshold, threshold, float("nan"), None, scorer.bias)
    return point


@dataclass
class FaceCrop:
    """One detected face, ready for the model."""

    file: str
    index: int
    box: np.ndarray
    prob: float
    image: np.ndarray  # 3×S×S uint8


def shaping(pre: dict[str, Any]) -> tuple[FacesConfig, ResizeConfig]:
    """How a checkpoint wants a photo cut (faces) and shaped (resize): exactly the training chain."""
    faces = load_section(FacesConfig, pre, "faces")
    recorded = pre.get("resize")
    if recorded is None:  # checkpoints written before the resize settings travelled with them
        log.warning("the checkpoint does not record how training images were re-encoded (older than this "
                    "version): scoring without re-encoding; retrain for exact preprocessing")
        recorded = {"reencode": "none"}  # what training images were before re-encoding was recorded
    if not isinstance(recorded, dict):
        raise UserError(f"preprocessing.resize must be a mapping, got {recorded!r}")
    size = pre.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise UserError(f"preprocessing.size must be an integer, got {size!r}")
    resize = load_section(ResizeConfig, {"resize": {**recorded, "size": size}}, "resize")
    return faces, resize


def model_settings(checkpoint: dict[str, Any], model_path: Path,
                   threshold: float | None = None) -> tuple[FacesConfig, ResizeConfig, dict[str, Any], float]:
    """How the checkpoint cuts, shapes and judges a face: (faces, resize, view, threshold).

    A record of the wrong type or out of range is one line naming the model, never a traceback.
    """
    try:
        pre = checkpoint["preprocessing"]
        if not isinstance(pre, dict):
            raise UserError(f"preprocessing must be a mapping, got {type(pre).__name__}")
        faces, resize = shaping(pre)
        view = recorded_view(pre)
        for key in ("mean", "std"):  # used on every batch: a bad one would fail after the photos were read
            value = pre.get(key)
            if not (isinstance(value, list) and len(value) == 3 and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
                    and (key == "mean" or all(v > 0 for v in value))):
                raise UserError(f"preprocessing.{key} must be a list of 3 {'positive ' if key == 'std' else ''}"
                                f"numbers, got {value!r}")
        info = checkpoint.get("info") or {}
        value = info.get("threshold", 0.5) if threshold is None else threshold
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1 or math.isnan(value):
            raise UserError(f"threshold must be a number in 0..1, got {value!r}")
    except (UserError, KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        if isinstance(exc, KeyError):
            reason = f"no {exc} record"
        raise UserError(f"model {model_path} is a damaged checkpoint: {reason}") from None
    return faces, resize, view, float(value)


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
        override = threshold is not None
        self.faces, self.resize, self.view, self.threshold = model_settings(self.scorer.checkpoint, model_path,
                                                                            threshold)
        self.point = operating_point(self.scorer, self.threshold, override)
        self.warning = warning_line(fitness_of(self.scorer.checkpoint))
        self.detector = FaceDetector(self.faces.detect_size, self.faces.min_face_px, self.faces.detect_pad)

    def score(self, paths: list[Path | Upload], missing: dict[str, str] | None = None,
              batch: int = 16) -> tuple[pd.DataFrame, dict[tuple[str, int], FaceCrop]]:
        """predict's table for `paths` (and the inputs that named nothing), and each scored face's model input."""
        missing, point = missing or {}, self.point
        rows, errors, scored = [], [], {}
        for start in tqdm(range(0, len(paths), batch), desc="predict", unit="batch"):
            crops = crop_faces(paths[start:start + batch], self.detector, self.faces, self.resize, errors, self.view)
            if crops:
                scores = self.scorer(np.stack([c.image for c in crops]))
                rows += [{"file": c.file, "face_index": c.index, "x1": c.box[0], "y1": c.box[1], "x2": c.box[2],
                          "y2": c.box[3], "face_prob": c.prob, "p_fake": float(p),
                          "decision": decision(float(p), point)}
                         for c, p in zip(crops, scores, strict=True)]
                scored.update({(c.file, c.index): c for c in crops})
        errors += [{"file": item, "error": why} for item, why in missing.items()]
        unscored = []
        for e in errors:
            code, words = plain_reason(e.pop("error"))
            unscored.append({**e, "reason": words, "reason_code": code})
        table = pd.DataFrame(rows + unscored, columns=COLUMNS)
        table["face_index"] = table["face_index"].astype("Int64")
        for col, decimals in (("x1", 1), ("y1", 1), ("x2", 1), ("y2", 1), ("face_prob", DECIMALS),
                              ("p_fake", DECIMALS)):
            table[col] = table[col].astype(float).round(decimals)
        table["warning"] = self.warning
        order = {name: i for i, name in enumerate([str(p) for p in paths] + list(missing))}
        table = table.sort_values(["file", "face_index"], key=lambda s: s.map(order) if s.name == "file" else s,
                                  kind="stable").reset_index(drop=True)
        table.attrs["threshold"] = point.t_fake
        table.attrs["operating_point"] = point.record()
        return table, scored


def predict(inputs: list[str], model_path: Path, batch: int = 16, threshold: float | None = None,
            device: str = "cpu") -> pd.DataFrame:
    """One row per face, one per file that could not be scored and one per input that named nothing, in input order.

    When the model is not fit to judge (realfake.detector.fitness), every row carries the reason in `warning`.
    """
    predictor = Predictor(model_path, threshold, device)
    named = expand_inputs(inputs)
    return predictor.score(named.files, named.missing, batch)[0]


def run_predict(inputs: list[str], model: str, out: str | None, threads: int = 2, device: str = "auto") -> pd.DataFrame:
    """The CLI command: score, write, summarise; inputs that named nothing make it exit 2 after the others are written."""
    if out:
        check_out(Path(out))
    named = expand_inputs(inputs)
    if not named.files:
        raise UserError(missing_line(list(named.missing), len(inputs), "nothing to score"))
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise UserError(f"--threads must be an integer >= 1, got {threads!r}")
    read_checkpoint(model)  # a bad model is one clear line before any photo is read
    torch.set_num_threads(threads)
    start = time.perf_counter()
    table = predict(inputs, Path(model), device=device)
    warning = table["warning"].iloc[0] if len(table) else None
    if out:
        write_results(table, Path(out))
        if warning:
            log.warning("%s (every row of %s carries it in `warning`)", warning, out)
    else:  # the warning once, above the table (stdout), so a pipe or a file keeps it with the results
        if warning:
            print(f"WARNING: {warning}")
        if table.attrs.get("operating_point"):
            print(f"decision {rule_words(table.attrs['operating_point'])}")
        print(printed_table(table))
    log.info("%s", summary(table, time.perf_counter() - start))
    missing = table.loc[table["reason_code"].fillna("").str.match(MISSING_REASONS), "file"].tolist()
    if missing:
        raise UserError(missing_line(missing, len(inputs), f"the others' results are in {out}" if out else
                                     "the others were scored"))
    return table
