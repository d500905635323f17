"""The attribute CNN on real UTKFace images from the embedded sample: training, shapes, probabilities, stage run."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from realfake.attributes.checkpoint import checkpoint, load_model
from realfake.attributes.config import AttributesConfig
from realfake.attributes.data import split_train_val
from realfake.attributes.model import run_attributes
from realfake.attributes.train import encode_targets, predict_probs, train_model
from realfake.ingest.labels import parse_labels

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
SMALL = {"image_size": 32, "epochs": 3, "batch_size": 16, "widths": [8, 16, 32], "threads": 1}


@pytest.fixture(scope="module")
def utk() -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The sample's UTKFace images (plain resize to 224 px stands in for the aligned crop) and their labels."""
    with zipfile.ZipFile(SAMPLE / "utkface.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))
        images = [np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB").resize((224, 224))) for n in names]
    labels = parse_labels("utkface-filename", names, {})
    frame = labels.assign(path=names, source="utkface", face_id=[f"utk{i:03d}" for i in range(len(names))],
                          group=[f"utkface:{n}" for n in names])
    return frame, images


def small_images(images: list[np.ndarray], size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size))) for im in images])


@pytest.mark.slow  # trains the attribute model (~4 s here)
def test_model_trains_and_predicts_probabilities(utk):
    frame, images = utk
    cfg = AttributesConfig(**SMALL)
    x = small_images(images, cfg.image_size)
    targets = encode_targets(frame, cfg)
    assert (targets["gender"] >= 0).sum() == len(frame) - 2  # the two malformed names carry no label
    model, history = train_model(x, targets, cfg, progress=False)
    assert len(history) == cfg.epochs and all(np.isfinite(h["loss"]) for h in history)
    probs = predict_probs(model, x)
    assert probs["gender"].shape == (len(x), 2)
    assert probs["age_group"].shape == (len(x), len(cfg.age_bins) - 1)
    assert probs["race_group"].shape == (len(x), 5)
    for p in probs.values():
        assert ((p >= 0) & (p <= 1)).all()
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


@pytest.mark.slow  # trains the attribute model on the sample (~3-5 s here)
def test_training_lowers_the_loss_on_the_sample(utk):
    frame, images = utk
    cfg = AttributesConfig(**{**SMALL, "epochs": 8, "lr": 5e-3})
    _, history = train_model(small_images(images, cfg.image_size), encode_targets(frame, cfg), cfg, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]


def test_checkpoint_loads_with_weights_only_and_predicts_the_same(utk, tmp_path):
    frame, images = utk
    cfg = AttributesConfig(**{**SMALL, "epochs": 1})
    x = small_images(images[:8], cfg.image_size)
    model, history = train_model(x, {h: t[:8] for h, t in encode_targets(frame, cfg).items()}, cfg, progress=False)
    torch.save(checkpoint(model, cfg, history), tmp_path / "attributes.pt")
    again, cfg2 = load_model(tmp_path / "attributes.pt")
    assert cfg2 == cfg
    for head, p in predict_probs(again, x).items():
        np.testing.assert_allclose(p, predict_probs(model, x)[head], atol=1e-6)


def test_split_keeps_groups_together_and_is_seeded():
    groups = pd.Series([f"g{i // 3}" for i in range(60)])
    val = split_train_val(groups, 0.25, seed=1)
    assert val.any() and not val.all()
    by_group = pd.Series(val).groupby(groups).agg(["min", "max"])
    assert (by_group["min"] == by_group["max"]).all()
    assert (split_train_val(groups, 0.25, seed=1) == val).all()
    assert not (split_train_val(groups, 0.25, seed=2) == val).all()


def write_faces(tmp_path: Path, frame: pd.DataFrame, images: list[np.ndarray]) -> pd.DataFrame:
    """Write the images as crops under tmp_path/faces/<source>/ and return the faces rows."""
    rows = frame.assign(crop_path=[f"{f}.png" for f in frame["face_id"]], status="kept")
    for (source, crop), img in zip(zip(rows["source"], rows["crop_path"], strict=True), images, strict=True):
        (tmp_path / "faces" / source).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(tmp_path / "faces" / source / crop)
    return rows


@pytest.mark.slow  # trains and predicts over a stage's inputs (~3 s here)
@pytest.mark.filterwarnings("ignore:The behavior of DataFrame concatenation:FutureWarning")
def test_run_attributes_end_to_end(utk, tmp_path):
    frame, images = utk
    others = frame.head(6).assign(source="lfw", face_id=[f"lfw{i}" for i in range(6)], age_source=pd.NA,
                                  race_source=None, label_note=None)
    faces = write_faces(tmp_path, pd.concat([frame, others], ignore_index=True), images + images[:6])
    (tmp_path / "faces" / "lfw" / "lfw5.png").write_bytes(b"not a png")  # a broken crop must not stop it
    cfg = AttributesConfig(**{**SMALL, "epochs": 2, "val_fraction": 0.25})
    table, metrics, ckpt = run_attributes(cfg, faces, tmp_path / "faces", progress=False)
    assert len(table) == len(faces) and table["face_id"].tolist() == faces["face_id"].tolist()
    split = table.set_index("face_id")["attr_split"]
    labelled = frame["gender_source"].notna().to_numpy()
    assert split[frame["face_id"][labelled]].isin(["train", "val"]).all()
    assert (split[frame["face_id"][~labelled]] == "predict").all()  # malformed names: no labels to learn from
    assert (split[others["face_id"]] == "predict").all()
    assert (split == "val").sum() == round(0.25 * labelled.sum())
    assert metrics["training"]["n_train"] + metrics["training"]["n_val"] == len(frame) - 2
    assert table.loc[table["face_id"] == "lfw5", "gender_pred"].isna().all()
    ok = table["face_id"] != "lfw5"
    probs = table.loc[ok, ["p_gender_male", "p_gender_female"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert table.loc[ok, "gender_conf"].between(0.5, 1.0).all()
    assert set(table.loc[ok, "race_group_pred"]) <= {"white", "black", "asian", "indian", "others"}
    assert set(metrics["held_out"]) == {"gender", "age_group", "race_group"}
    assert metrics["held_out"]["gender"]["n"] == metrics["training"]["n_val"]
    assert metrics["agreement"]["lfw"]["gender"]["n"] == 5
    assert "state_dict" in ckpt


def test_run_attributes_without_training_data_writes_null_predictions(utk, tmp_path):
    frame, images = utk
    faces = write_faces(tmp_path, frame.head(4).assign(source="tpdne", gender_source=None, age_source=pd.NA,
                                                       race_source=None), images[:4])
    table, metrics, _ = run_attributes(AttributesConfig(**SMALL), faces, tmp_path / "faces", progress=False)
    assert len(table) == 4 and table["gender_pred"].isna().all()
    assert metrics["training"]["trained"] is False
    assert metrics["held_out"]["gender"]["accuracy"] is None


@pytest.mark.mirror_full
def test_default_model_learns_on_the_mirror_utkface(mirror):
    """Full-data check (minutes): the default config beats the majority class clearly on held-out UTKFace."""
    cfg = AttributesConfig()
    with zipfile.ZipFile(mirror / "utkface.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))
        x = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB").resize(
            (cfg.image_size, cfg.image_size), Image.Resampling.LANCZOS)) for n in names])
    targets = encode_targets(parse_labels("utkface-filename", names, {}), cfg)
    val = split_train_val(pd.Series(names), cfg.val_fraction, cfg.seed)
    train = ~val & (targets["gender"] >= 0)
    model, _ = train_model(x[train], {h: t[train] for h, t in targets.items()}, cfg, progress=False)
    probs = predict_probs(model, x[val])
    for head, margin in (("gender", 0.15), ("age_group", 0.1), ("race_group", 0.1)):
        t = targets[head][val]
        ok = t >= 0
        baseline = np.bincount(t[ok]).max() / ok.sum()
        assert (probs[head].argmax(1)[ok] == t[ok]).mean() > baseline + margin, head
