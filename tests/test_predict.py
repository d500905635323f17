"""`realfake predict` and the detection it shares with the faces stage: tiny images, the training chain, bad model
files, missing inputs and models not fit to judge. Real photos from the embedded sample, real MTCNN, real
models trained tiny in temp dirs, real subprocess exit codes."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.training_image import ResizeConfig
from realfake.detector.checkpoint import load_detector
from realfake.detector.fitness import FitnessConfig, assess
from realfake.detector.model import ModelConfig
from realfake.detector.patches import PatchConfig
from realfake.detector.run import TrainRun
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig
from realfake.faces.crop import FacesConfig, process_images
from realfake.faces.detect import FaceDetector, detect_faces
from realfake.resize.images import training_image
from tests.test_train import write_packed

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
TINY = ModelConfig(attention=False, widths=[8, 16, 32, 32])
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """`realfake ARGS` in a fresh process, this checkout's code; stderr is a pipe, not a terminal."""
    return subprocess.run([sys.executable, "-m", "realfake.cli", *args], capture_output=True, text=True,
                          env={**ENV, **env}, cwd=cwd, timeout=300)


def one_line_refusal(proc: subprocess.CompletedProcess) -> str:
    """The ERROR line of a refused command; asserts exit 2 and no traceback."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos from the embedded sample, and the same faces shrunk to 36, 30x40 and 16 px."""
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for zip_name, member, name in [("tpdne", "tpdne/0041.jpg", "gan"), ("ffhq", "ffhq/images/00008.jpg", "ffhq"),
                                   ("lfw", "lfw-deepfunneled/Amram_Mitzna/Amram_Mitzna_0001.jpg", "lfw")]:
        with zipfile.ZipFile(REPO / "data" / "sample" / f"{zip_name}.zip") as zf:
            (folder / f"{name}.jpg").write_bytes(zf.read(member))
        out[name] = folder / f"{name}.jpg"
    face = Image.open(out["gan"]).convert("RGB")
    for name, size in [("tiny36", (36, 36)), ("tiny30x40", (30, 40)), ("tiny16", (16, 16))]:
        face.resize(size, Image.Resampling.LANCZOS).save(folder / f"{name}.png")
        out[name] = folder / f"{name}.png"
    return out


def tiny_model(folder: Path, profile: str | None, epochs: int = 1, size: int | None = None,
               fitness: FitnessConfig | None = None) -> Path:
    """A real checkpoint trained for `epochs` on synthetic packed data, with the default faces/resize params."""
    size = size or PARAMS["resize"]["size"]
    write_packed(folder / "packed", "train", 30 * (epochs + 1), 30 * (epochs + 1), size, seed=0)
    write_packed(folder / "packed", "val", 60, 60, size, seed=1)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, warmup_epochs=0.5, min_epochs=epochs, threads=1,
                      fitness=fitness or FitnessConfig())
    train(TrainRun(TINY, cfg, size, PARAMS["faces"], {**PARAMS["resize"], "size": size}, profile), folder / "packed",
          folder / "detector.pt", folder / "live")
    return folder / "detector.pt"


@pytest.fixture(scope="module")
def sample_model(tmp_path_factory) -> Path:
    """Trained as on the embedded sample (data.profile=sample): not fit to judge, by rule."""
    return tiny_model(tmp_path_factory.mktemp("sample_model"), "sample")


# ---------------------------------------------------------------- 1: tiny images


def test_detector_survives_images_shorter_than_its_smallest_face(photos):
    """MTCNN gave an empty pyramid (torch.cat of nothing) when the image was shorter than min_face_size."""
    rgb = np.asarray(Image.open(photos["tiny36"]).convert("RGB"))
    for min_face, pad in ((0, 0.0), (64, 0.0), (64, 0.2)):
        found = FaceDetector(192, min_face, pad).detect([rgb, rgb])
        assert len(found) == 2 and all(isinstance(f, list) for f in found)


def test_detect_faces_answers_tiny_images_and_isolates_a_failing_one(photos):
    cfg = load_section(FacesConfig, PARAMS, "faces")
    face = np.asarray(Image.open(photos["gan"]).convert("RGB"))
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])  # same size: shares the face's MTCNN batch
    images = [face, np.asarray(Image.open(photos["tiny36"]).convert("RGB")),
              np.asarray(Image.open(photos["tiny30x40"]).convert("RGB")), rgba]
    found = detect_faces(FaceDetector(cfg.detect_size, cfg.min_face_px, cfg.detect_pad), images, cfg)
    assert found[0].reason is None and max(f.prob for f in found[0].faces) > 0.99
    assert [d.reason for d in found[1:3]] == ["image_too_small", "image_too_small"]
    assert "36x36 px" in found[1].detail and "30x40 px" in found[2].detail
    assert found[3].reason == "detection_error" and found[3].detail


def test_faces_stage_keeps_the_batch_around_tiny_images(photos, tmp_path):
    cfg = load_section(FacesConfig, {"faces": {**PARAMS["faces"], "workers": 1}}, "faces")
    items = [(str(photos[n]), n) for n in ("gan", "tiny36", "tiny16", "ffhq", "tiny30x40")]
    records, _ = process_images(items, tmp_path, cfg, progress=False)
    assert [r["status"] for r in records] == ["kept", "rejected", "rejected", "kept", "rejected"]
    assert [r["reason"] for r in records if r["status"] == "rejected"] == ["image_too_small"] * 3
    assert all(r["reason_detail"] for r in records if r["status"] == "rejected")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ffhq.png", "gan.png"]


@pytest.mark.slow  # trains a model, real MTCNN (~7 s here)
def test_predict_scores_the_others_around_tiny_images(photos, sample_model, tmp_path):
    """Also (14) progress off a terminal: one log line per update, no carriage returns (they froze at 0%)."""
    out = tmp_path / "results.json"
    proc = cli("predict", str(photos["gan"]), str(photos["tiny36"]), str(photos["tiny16"]), str(photos["ffhq"]),
               "--model", str(sample_model), "--out", str(out), REALFAKE_PROGRESS_S="0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr
    progress = [line for line in proc.stderr.splitlines() if " INFO realfake.core.progress: predict: " in line]
    assert "predict: 0/1 (0%)" in progress[0] and "predict: 1/1 (100%)" in progress[-1], proc.stderr
    rows = {Path(r["file"]).name: r for r in json.loads(out.read_text())}
    assert rows["gan.jpg"]["reason"] is None and 0 <= rows["gan.jpg"]["p_fake"] <= 1
    assert rows["gan.jpg"]["p_fake"] == round(rows["gan.jpg"]["p_fake"], 4)  # 4 decimals, not 17 digits
    assert rows["ffhq.jpg"]["reason_code"] is None
    assert rows["tiny36.png"]["reason_code"] == "image_too_small"
    assert rows["tiny36.png"]["reason"] == "the image is too small to hold a face the model can judge (36x36 px)"
    assert rows["tiny16.png"]["reason_code"] == "image_too_small"
    assert "threshold" not in rows["gan.jpg"]


# ---------------------------------------------------------------- 1b: the training chain travels with the model


def test_a_face_is_detected_the_same_alone_or_in_any_batch(photos):
    """The faces stage batches photos of many sizes; predict sees one file at a time. The landmarks (so the crop)
    must not depend on the batch: a 384 px photo's smaller scale used to set a 256 px photo's MTCNN pyramid."""
    cfg = load_section(FacesConfig, PARAMS, "faces")
    detector = FaceDetector(cfg.detect_size, cfg.min_face_px, cfg.detect_pad)
    images = {n: np.asarray(Image.open(photos[n]).convert("RGB")) for n in ("ffhq", "gan", "lfw")}
    assert {img.shape[0] for img in images.values()} == {250, 256, 384}
    together = detector.detect(list(images.values()))
    for (name, img), batched in zip(images.items(), together, strict=True):
        alone = detector.detect([img])[0]
        assert len(alone) == len(batched) >= 1, name
        for a, b in zip(alone, batched, strict=True):
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3, err_msg=name)


def test_predict_shapes_faces_exactly_like_training_with_default_params(photos, sample_model, tmp_path):
    """The faces stage, then the resize stage (default params: JPEG q75 re-encoding), give the training image;
    predict must build the same pixels from the photo, and so the same score."""
    from realfake.detector.scorer import Scorer
    from realfake.predict import crop_faces, shaping

    assert PARAMS["resize"]["reencode"] == "jpeg"  # the default this test is about
    checkpoint = torch.load(sample_model, weights_only=True)
    assert checkpoint["preprocessing"]["resize"] == {"size": PARAMS["resize"]["size"], "reencode": "jpeg",
                                                     "jpeg_quality": PARAMS["resize"]["jpeg_quality"]}
    names = ("gan", "ffhq", "lfw")
    faces_cfg = load_section(FacesConfig, {"faces": {**PARAMS["faces"], "workers": 1}}, "faces")
    records, _ = process_images([(str(photos[n]), n) for n in names], tmp_path, faces_cfg, progress=False)
    assert all(r["status"] == "kept" for r in records)
    trained = [training_image(tmp_path / f"{n}.png", load_section(ResizeConfig, PARAMS, "resize")) for n in names]

    scorer = Scorer(sample_model)
    faces, resize = shaping(scorer.checkpoint["preprocessing"])
    errors: list = []
    crops = crop_faces([photos[n] for n in names], FaceDetector(faces.detect_size, faces.min_face_px, faces.detect_pad),
                       faces, resize, errors)
    assert not errors
    for name, expected, rec in zip(names, trained, records, strict=True):
        mine = [c for c in crops if Path(c.file).stem == name]
        got = min(mine, key=lambda c: np.abs(c.box - np.asarray(rec["box"])).sum())  # the stage's primary face
        assert np.abs(got.image.astype(int) - expected.transpose(2, 0, 1).astype(int)).mean() < 0.5, name
    stage_scores = scorer(np.stack([t.transpose(2, 0, 1) for t in trained]))
    primary = [min((c for c in crops if Path(c.file).stem == n), key=lambda c: np.abs(c.box - np.asarray(r["box"])).sum())
               for n, r in zip(names, records, strict=True)]
    assert np.abs(scorer(np.stack([c.image for c in primary])) - stage_scores).max() < 0.01


def pipeline_views(photos: dict[str, Path], names: tuple[str, ...], view: str, root: Path) -> tuple[list, np.ndarray]:
    """The photos through the faces stage, the crops stage and the sample stage's packing of `view`.

    Returns the faces stage's records and the packed array (N, 3, S, S) in `names` order.
    """
    from realfake.crops.stage import run_crops
    from realfake.crops.views import crops_config, view_record
    from realfake.sample.packing import pack_split
    from realfake.sample.views import view_rows

    faces_cfg = load_section(FacesConfig, {"faces": {**PARAMS["faces"], "workers": 1}}, "faces")
    raw = root / "raw" / "photos"
    raw.mkdir(parents=True)
    for n in names:
        (raw / photos[n].name).write_bytes(photos[n].read_bytes())
    records, _ = process_images([(str(raw / photos[n].name), n) for n in names], root / "aligned", faces_cfg,
                                progress=False)
    assert all(r["status"] == "kept" for r in records)
    (root / "faces").mkdir()
    pd.DataFrame({"face_id": list(names), "status": "kept", "path": [photos[n].name for n in names],
                  "landmarks": [r["landmarks"] for r in records]}).to_parquet(root / "faces" / "photos.parquet")
    crops = dataclasses.replace(crops_config(PARAMS), workers=1)
    run_crops("photos", crops, faces_cfg.margin, load_section(ResizeConfig, PARAMS, "resize"), faces_cfg.max_pixels,
              root / "raw", root / "faces", root / "crops", root / "metrics", progress=False)
    rows = pd.DataFrame({"face_id": list(names), "source": "photos", "label": "real", "group": list(names),
                         "stratum": "s", "resized_path": None})
    chosen = view_rows(rows, view, root / "crops")
    assert len(chosen.rows) == len(names), chosen.rejected_by_reason
    size = view_record(view, PARAMS)["size"]
    pack_split(chosen.rows, size, root / "packed" / "test.npy", root / "packed" / "test.parquet")
    return records, np.load(root / "packed" / "test.npy")


@pytest.mark.slow
@pytest.mark.parametrize("view", ["native", "context"])
def test_predict_cuts_each_view_byte_for_byte_as_the_pipeline_packed_it(photos, tmp_path, view):
    """faces -> crops -> sample (packed) against predict's own detection and cut of the same photos."""
    from realfake.crops.views import view_record
    from realfake.predict import crop_faces

    names = ("gan", "ffhq", "lfw")
    records, packed = pipeline_views(photos, names, view, tmp_path)
    record = view_record(view, PARAMS)
    faces = load_section(FacesConfig, PARAMS, "faces")
    resize = load_section(ResizeConfig, {"resize": {**PARAMS["resize"], "size": record["size"]}}, "resize")
    errors: list = []
    crops = crop_faces([photos[n] for n in names], FaceDetector(faces.detect_size, faces.min_face_px,
                                                                 faces.detect_pad), faces, resize, errors, record)
    for name, expected, rec in zip(names, packed, records, strict=True):
        got = min((c for c in crops if Path(c.file).stem == name),
                  key=lambda c: np.abs(c.box - np.asarray(rec["box"])).sum())  # the stage's primary face
        assert got.image.dtype == np.uint8 and np.array_equal(got.image, expected), (name, view)


@pytest.mark.slow
def test_the_checkpoint_records_the_packed_view_and_predict_scores_with_it(photos, tmp_path):
    """sample writes data/packed/view.json; train stores it; predict reads it back and cuts native windows."""
    from realfake.crops.views import view_record, write_view_record
    from realfake.predict import predict

    record = view_record("native", PARAMS)
    write_packed(tmp_path / "packed", "train", 40, 40, record["size"], seed=0)
    write_packed(tmp_path / "packed", "val", 20, 20, record["size"], seed=1)
    write_view_record(tmp_path / "packed", record)
    cfg = TrainConfig(epochs=1, batch_size=32, min_epochs=1, threads=1, patch=PatchConfig(size=64, count=4))
    train(TrainRun(TINY, cfg, record["size"], PARAMS["faces"], PARAMS["resize"], "sample"), tmp_path / "packed",
          tmp_path / "detector.pt", tmp_path / "live")
    pre = torch.load(tmp_path / "detector.pt", weights_only=True)["preprocessing"]
    assert pre["view"] == record and pre["size"] == 128 and pre["patch"]["size"] == 64
    table = predict([str(photos[n]) for n in ("gan", "ffhq", "lfw")], tmp_path / "detector.pt")
    assert table["p_fake"].notna().sum() >= 3, table


def test_checkpoint_without_a_resize_record_is_scored_without_reencoding_and_says_so(caplog):
    """Checkpoints written before the resize settings travelled: predict cannot know, so it says so."""
    from realfake.predict import shaping

    with caplog.at_level("WARNING"):
        faces, resize = shaping({"size": 32, "faces": PARAMS["faces"]})
    assert (resize.size, resize.reencode) == (32, "none") and faces.crop_size == PARAMS["faces"]["crop_size"]
    assert "does not record how training images were re-encoded" in caplog.text


# ---------------------------------------------------------------- 6: bad model files


class Payload:
    """Runs a shell command when unpickled unsafely."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_bad_model(kind: str, bad: Path, good: Path, marker: Path) -> None:
    """A model file that is broken, foreign or hostile in the way `kind` names."""
    bad.parent.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        bad.write_text("definitely not a model\n")
    elif kind == "png":
        Image.new("RGB", (8, 8)).save(bad, format="PNG")
    elif kind == "zip":
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("weights.txt", "0.1 0.2")
    elif kind == "list":
        torch.save([1, 2, 3], bad)
    elif kind == "wrong_weights":
        checkpoint = torch.load(good, weights_only=True)
        checkpoint["state_dict"] = {k: v.reshape(-1)[:1] for k, v in checkpoint["state_dict"].items()}
        torch.save(checkpoint, bad)
    elif kind == "malicious":  # a checkpoint-looking file with code inside
        torch.save({"format": "realfake-detector/1", "payload": Payload(marker)}, bad)
    elif kind == "raw_pickle":
        bad.write_bytes(pickle.dumps(Payload(marker)))
    elif kind == "directory":
        bad.mkdir()


BAD_MODELS = ["empty", "truncated", "text", "png", "zip", "list", "wrong_weights", "malicious", "raw_pickle",
              "directory"]


@pytest.mark.parametrize("kind", BAD_MODELS)
def test_bad_model_files_are_refused_in_one_line(kind, sample_model, tmp_path):
    bad, marker = tmp_path / "detector.pt", tmp_path / "pwned"
    write_bad_model(kind, bad, sample_model, marker)
    with pytest.raises(UserError) as refused:
        load_detector(bad)
    message = str(refused.value)
    assert str(bad) in message and "\n" not in message and "weights_only" not in message
    if kind in ("malicious", "raw_pickle"):
        assert not marker.exists()
    if kind == "malicious":
        assert "refused" in message and "posix.system" in message and "nothing was run" in message


@pytest.mark.slow  # predict and evaluate in subprocesses (~8 s each here)
@pytest.mark.parametrize("kind", ["empty", "truncated", "malicious"])
def test_bad_model_file_exits_2_in_predict_and_evaluate(kind, sample_model, photos, tmp_path):
    bad, marker = tmp_path / "models" / "detector.pt", tmp_path / "pwned"
    write_bad_model(kind, bad, sample_model, marker)
    line = one_line_refusal(cli("predict", str(photos["gan"]), "--model", str(bad)))
    assert str(bad) in line and "weights_only" not in line
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    evaluate = subprocess.run([sys.executable, str(REPO / "stages" / "evaluate.py")], cwd=tmp_path, env=ENV,
                              capture_output=True, text=True, timeout=300)
    assert "weights_only" not in one_line_refusal(evaluate)
    assert not marker.exists()


# ---------------------------------------------------------------- 8: missing inputs, --out


@pytest.mark.slow  # trains a model, then predict in a subprocess (~15 s here)
def test_missing_inputs_exit_2_after_the_others_are_scored_and_written(photos, sample_model, tmp_path):
    out = tmp_path / "results.csv"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    proc = cli("predict", str(photos["gan"]), "/no/such/file.jpg", str(tmp_path / "nothing*.jpg"), str(empty_dir),
               "--model", str(sample_model), "--out", str(out))
    line = one_line_refusal(proc)
    assert "3 of 4 inputs named no image file" in line and "/no/such/file.jpg" in line and str(out) in line
    table = pd.read_csv(out)
    assert table.loc[table["file"] == str(photos["gan"]), "p_fake"].notna().all()
    errors = dict(zip(table["file"], table["reason_code"], strict=True))
    assert errors["/no/such/file.jpg"] == "not_found"
    assert errors[str(tmp_path / "nothing*.jpg")] == "no_match"
    assert errors[str(empty_dir)] == "no_images"
    assert list(table.columns) == ["file", "face_index", "x1", "y1", "x2", "y2", "face_prob", "p_fake", "decision",
                                   "reason", "reason_code", "warning"]
    for only_missing in (["/no/such/file.jpg"], [str(tmp_path / "nothing*.jpg")]):
        line = one_line_refusal(cli("predict", *only_missing, "--model", str(sample_model)))
        assert "1 of 1 inputs named no image file" in line and "nothing to score" in line


@pytest.mark.slow  # predict in a subprocess (~4 s here)
def test_unsupported_out_is_refused_before_any_photo_is_scored(photos, sample_model, tmp_path):
    proc = cli("predict", str(photos["gan"]), "--model", str(sample_model), "--out", str(tmp_path / "results.txt"))
    assert "--out must end in .csv or .json" in one_line_refusal(proc)
    assert "predict:" not in proc.stderr  # no progress line: nothing was scored
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- 13: models not fit to judge


def test_fitness_rule():
    rule = FitnessConfig(min_val_auc=0.8, min_val_faces=100)
    assert assess(0.93, 500, "mirror", rule)["fit"]
    assert assess(0.93, 500, "sample", rule)["reasons"] == [
        "trained on the embedded sample (a demo of the pipeline, not a detector)"]
    assert assess(0.41, 28, "mirror", rule)["reasons"] == [
        "validation AUC 0.410 < 0.8", "28 validation faces < 100, too few to measure it"]
    assert not assess(None, 500, None, rule)["fit"]
    with pytest.raises(UserError):
        FitnessConfig(min_val_auc=2)


@pytest.mark.slow  # trains a model and runs predict (~10 s here)
def test_model_trained_on_the_sample_warns_and_marks_every_result(photos, sample_model, tmp_path):
    proc = cli("predict", str(photos["gan"]), str(photos["ffhq"]), "--model", str(sample_model),
               "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line and "not fit to judge" in line]
    assert len(warnings) == 1 and "embedded sample" in warnings[0]
    rows = json.loads((tmp_path / "r.json").read_text())
    assert all("not fit to judge" in r["warning"] for r in rows)
    printed = cli("predict", str(photos["gan"]), str(photos["tiny36"]), "--model", str(sample_model))
    assert printed.stdout.startswith("WARNING: model not fit to judge")
    assert "not fit to judge" not in printed.stderr  # once, above the table, not again on stderr
    lines = printed.stdout.splitlines()
    assert re.fullmatch(r"decision fake from p_fake \d\.\d{4} \(the operating point: 5% of validation reals called "
                        r"fake\), real below \d\.\d{4}, uncertain between", lines[1]), lines[1]
    assert lines[2].split() == ["file", "face", "box", "face_prob", "p_fake", "decision", "reason", "warning"]
    assert lines[3].startswith(str(photos["gan"]) + " ")  # left-aligned names
    assert lines[3].rstrip().endswith("model not fit to judge") and re.search(r" 0\.\d{4} ", lines[3])
    assert "too small to hold a face" in lines[-1] and "image_too_small" not in printed.stdout
    assert not re.search(r"\bNone\b|\bNaN\b|<NA>|nan", printed.stdout), printed.stdout


@pytest.mark.slow
def test_model_that_measures_well_predicts_without_a_warning_and_its_card_says_so(photos, tmp_path):
    from realfake.detector.model_card import render_model_card

    model = tiny_model(tmp_path, "mirror", epochs=5, size=32, fitness=FitnessConfig(min_val_auc=0.8, min_val_faces=100))
    fitness = torch.load(model, weights_only=True)["info"]["fitness"]
    assert fitness["fit"], fitness
    proc = cli("predict", str(photos["gan"]), "--model", str(model), "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 0 and "not fit" not in proc.stderr
    assert all(r["warning"] is None for r in json.loads((tmp_path / "r.json").read_text()))
    summary = {"data": {"size": 32, "train": {"kept": 1, "real": 1, "fake": 0, "rejected": {}},
                        "val": {"kept": 1, "real": 1, "fake": 0, "rejected": {}}},
               "params": 1, "attention_params": 0, "class_weights": None, "epochs_run": 1, "stopped_early": False,
               "seconds": 1.0, "threads": 1, "images_per_s": 1.0, "best_epoch": 0, "best_val_loss": 0.1,
               "best_val_auc": 0.9, "best_val_acc": 0.9}
    assert "**Fit to judge**" in render_model_card({**summary, "fitness": fitness}, TINY, TrainConfig())
    unfit = assess(0.41, 28, "sample", FitnessConfig())
    card = render_model_card({**summary, "fitness": unfit}, TINY, TrainConfig())
    assert "**Not fit to judge photos.**" in card and "validation AUC 0.410 < 0.8" in card


# ---------------------------------------------------------------- issue 25: output, and hostile inputs to predict


def test_reasons_are_plain_words_with_the_code_in_its_own_column():
    from realfake.predict import PLAIN_REASONS, plain_reason

    assert plain_reason("pad: pad_fraction 0.071 > 0.05") == (
        "pad", "the face is too close to the photo's edge: its crop would be too much filled-in border "
               "(7.1% border, at most 5%)")
    assert plain_reason("face_too_small: 41 px < faces.min_face_px=64") == (
        "face_too_small", "the face is too small: the model never saw faces this small (41 px, at least 64 px)")
    assert plain_reason("no_face") == ("no_face", "no face found")
    for code in PLAIN_REASONS:
        words = plain_reason(f"{code}: some detail")[1]
        assert "faces." not in words and "_" not in words, code  # no machine spelling, no params key


def test_summary_counts_files_and_faces_apart():
    """The summary said "4 files not scored" for 3 files and 1 face."""
    from realfake.predict import COLUMNS, summary

    rows = [{"file": "a.jpg", "face_index": 0, "p_fake": 0.9, "decision": "fake"},
            {"file": "a.jpg", "face_index": 1, "p_fake": 0.1, "decision": "real"},
            {"file": "a.jpg", "face_index": 2, "reason_code": "face_too_small"},
            {"file": "b.jpg", "reason_code": "no_face"},
            {"file": "c.jpg", "reason_code": "not_an_image"},
            {"file": "d/*.jpg", "reason_code": "no_match"}]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["face_index"] = table["face_index"].astype("Int64")
    table.attrs["operating_point"] = {"t_real": 0.53125, "t_fake": 0.53125}
    assert summary(table, 1.04) == ("3 files, 2 faces scored in 1.0s at threshold 0.5312: 1 fake, 0 uncertain, 1 real; "
                                    "coverage 2/3 detected faces; 1 face not scored; 2 files with no face scored; "
                                    "1 input named nothing")
    table.loc[1, "decision"] = "uncertain"
    table.attrs["operating_point"] = {"t_real": 0.2, "t_fake": 0.8, "target_fpr": 0.05}
    assert summary(table, 1.04).startswith(
        "3 files, 2 faces scored in 1.0s at the operating point (real < 0.2000 <= uncertain < 0.8000 <= fake): "
        "1 fake, 1 uncertain, 0 real; coverage 2/3 detected faces")


def test_a_fifo_on_the_command_line_is_not_read(tmp_path):
    """A FIFO named on the command line hung predict forever (folders and globs skipped it)."""
    from realfake.predict import expand_inputs

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    named = expand_inputs([str(fifo), "/dev/zero"])
    assert named.files == []
    assert named.missing[str(fifo)].startswith("not_a_file") and named.missing["/dev/zero"].startswith("not_a_file")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_out_that_cannot_be_created_is_refused_before_anything_is_read(tmp_path):
    """--out /proc/x.csv passed the permission check (root may write anywhere) and crashed after scoring."""
    from realfake.predict import check_out

    for out in ("/proc/x.csv", "/proc/new/dir/x.csv"):
        with pytest.raises(UserError, match="cannot write in /proc"):
            check_out(Path(out))
    check_out(tmp_path / "deeper" / "r.csv")  # a folder the write will create is fine
    assert list(tmp_path.iterdir()) == []  # and the probe leaves nothing behind


def flip_tensor_bytes(path: Path, n: int = 4000) -> None:
    """Flip n bytes in the middle of the largest tensor's data inside a torch zip (no checksum guards them)."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    header = info.header_offset
    start = header + 30 + int.from_bytes(data[header + 26:header + 28], "little") + \
        int.from_bytes(data[header + 28:header + 30], "little")
    middle = start + info.file_size // 2 - n // 2
    assert info.file_size > n
    data[middle:middle + n] = bytes(b ^ 0xFF for b in data[middle:middle + n])
    path.write_bytes(bytes(data))


def test_checkpoint_with_flipped_weight_bytes_is_refused(sample_model, tmp_path, caplog):
    """4,000 flipped bytes of tensor data loaded without a word and moved p_fake; the digest refuses them."""
    from realfake.detector.checkpoint import DIGEST_KEY, read_checkpoint, weights_digest

    checkpoint = torch.load(sample_model, weights_only=True)
    assert checkpoint[DIGEST_KEY] == weights_digest(checkpoint["state_dict"])
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(sample_model.read_bytes())
    flip_tensor_bytes(bad)
    torch.load(bad, weights_only=True)  # torch itself sees nothing wrong
    with pytest.raises(UserError, match="weights do not match the digest saved with them") as refused:
        load_detector(bad)
    assert str(bad) in str(refused.value) and "\n" not in str(refused.value)
    old = tmp_path / "old.pt"  # written before digests: accepted, with one warning
    torch.save({k: v for k, v in checkpoint.items() if k != DIGEST_KEY}, old)
    with caplog.at_level("WARNING"):
        read_checkpoint(old)
        load_detector(old)
    assert caplog.text.count("records no digest of its weights") == 1


@pytest.mark.parametrize("field, value, words", [
    ("threshold", "0.5", "threshold must be a number in 0..1, got '0.5'"),
    ("threshold", 1.5, "threshold must be a number in 0..1, got 1.5"),
    ("resize", 0, "preprocessing.resize must be a mapping, got 0"),
    ("size", 0, "resize.size must be an integer in 8..1024, got 0"),
    ("size", "64", "preprocessing.size must be an integer, got '64'"),
    ("std", [0.5, 0, 0.5], "preprocessing.std must be a list of 3 positive numbers, got [0.5, 0, 0.5]"),
])
def test_checkpoint_records_of_the_wrong_kind_are_one_line(sample_model, photos, tmp_path, field, value, words):
    """A string threshold or a resize record of 0 gave a ValueError/TypeError traceback."""
    from realfake.predict import predict

    checkpoint = torch.load(sample_model, weights_only=True)
    if field == "threshold":
        checkpoint["info"]["threshold"] = value
    else:
        checkpoint["preprocessing"][field] = value
    bad = tmp_path / "bad.pt"
    torch.save(checkpoint, bad)
    with pytest.raises(UserError) as refused:
        predict([str(photos["gan"])], bad)
    assert str(refused.value) == f"model {bad} is a damaged checkpoint: {words}"


@pytest.mark.parametrize("threads", [0, -1])
def test_threads_below_one_are_refused(threads, sample_model, photos):
    from realfake.predict import run_predict

    with pytest.raises(UserError, match=f"--threads must be an integer >= 1, got {threads}"):
        run_predict([str(photos["gan"])], str(sample_model), None, threads)


@pytest.mark.slow  # three predict runs in subprocesses (~15 s here)
def test_hostile_predict_inputs_exit_2_in_one_line(sample_model, photos, tmp_path):
    """The command-line side of the cases above: exit 2, one ERROR line, nothing else lost."""
    line = one_line_refusal(cli("predict", str(photos["gan"]), "--model", str(sample_model), "--out", "/proc/x.csv"))
    assert "cannot write in /proc" in line
    assert "--threads must be" in one_line_refusal(cli("predict", str(photos["gan"]), "--model", str(sample_model),
                                                       "--threads", "0"))
    fifo, out = tmp_path / "pipe.jpg", tmp_path / "r.csv"
    os.mkfifo(fifo)
    proc = cli("predict", str(photos["gan"]), str(fifo), "--model", str(sample_model), "--out", str(out))
    assert "1 of 2 inputs named no image file" in one_line_refusal(proc)
    table = pd.read_csv(out)
    assert table.loc[table["file"] == str(photos["gan"]), "p_fake"].notna().all()
    assert table.loc[table["file"] == str(fifo), "reason_code"].tolist() == ["not_a_file"]
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(sample_model.read_bytes())
    flip_tensor_bytes(flipped)
    assert "do not match the digest" in one_line_refusal(cli("predict", str(photos["gan"]), "--model", str(flipped)))
