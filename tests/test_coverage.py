"""Every face the detector finds gets a verdict: tight photos, small faces, the operating point in predict and
evaluate, and an ensemble scored by predict exactly as evaluate scores it. Real photos, real MTCNN, real models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from realfake.core.params import load_section
from realfake.crops.views import view_record, write_view_record
from realfake.detector.model import ModelConfig
from realfake.detector.run import TrainRun
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig
from realfake.faces.crop import FacesConfig
from realfake.faces.detect import FaceDetector, detect_faces
from tests.test_predict import PARAMS, TINY, photos  # noqa: F401 -- `photos` is a fixture
from tests.test_train import write_packed

REPO = Path(__file__).resolve().parents[1]


def context_model(folder: Path, fit: str = "shrink") -> Path:
    """A tiny real checkpoint trained on synthetic packed data of the context view (fit policy `fit`)."""
    record = view_record("context", PARAMS)
    record["context"]["fit"] = fit
    write_packed(folder / "packed", "train", 40, 40, record["size"], seed=0)
    write_packed(folder / "packed", "val", 30, 30, record["size"], seed=1)
    write_view_record(folder / "packed", record)
    cfg = TrainConfig(epochs=1, batch_size=32, min_epochs=1, threads=1)
    train(TrainRun(TINY, cfg, record["size"], PARAMS["faces"], PARAMS["resize"], "sample"), folder / "packed",
          folder / "detector.pt", folder / "live")
    return folder / "detector.pt"


def tight_crop(photo: Path, out: Path, factor: float) -> Path:
    """The photo cut to `factor` x its MTCNN face box: a stock-style tight crop whose context view must pad."""
    faces = load_section(FacesConfig, PARAMS, "faces")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    found = detect_faces(FaceDetector(faces.detect_size, faces.min_face_px, faces.detect_pad), [rgb], faces)[0]
    x1, y1, x2, y2 = max(found.faces, key=lambda f: f.prob).box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, factor * max(x2 - x1, y2 - y1) / 2
    box = [int(max(0, cx - half)), int(max(0, cy - half)), int(min(rgb.shape[1], cx + half)),
           int(min(rgb.shape[0], cy + half))]
    Image.fromarray(rgb[box[1]:box[3], box[0]:box[2]]).save(out, quality=95)
    return out


@pytest.mark.slow
def test_a_face_that_needs_padding_or_upscaling_gets_a_verdict_in_predict(photos, tmp_path):  # noqa: F811
    from realfake.predict import predict

    tight = tight_crop(photos["ffhq"], tmp_path / "tight.jpg", 0.9)
    small = Image.open(photos["lfw"])  # LFW: a small face in a 250 px frame; at 0.8 its context crop spans < 96 px
    small.resize((small.width * 4 // 5, small.height * 4 // 5), Image.Resampling.LANCZOS).save(tmp_path / "small.jpg")
    files = [str(tight), str(tmp_path / "small.jpg")]

    table = predict(files, context_model(tmp_path / "shrink"))
    assert table["reason_code"].isna().all(), table[["file", "reason_code"]]
    assert table["p_fake"].notna().all() and set(table["file"]) == set(files)
    assert set(table["decision"]) <= {"real", "uncertain", "fake"}

    # a model trained before the fit policy (it rejected padding) keeps refusing such faces, with the reason
    old = context_model(tmp_path / "reject", fit="reject")
    refused = predict([str(tight)], old)
    assert refused["p_fake"].isna().all() and (refused["reason_code"] == "pad").all(), refused


@pytest.mark.slow
def test_the_sample_run_gives_every_placed_face_a_verdict_and_reports_the_operating_point(sample_pipeline):
    root = sample_pipeline.root
    report = json.loads((root / "reports" / "evaluate.json").read_text())
    splits = pd.read_parquet(root / "data" / "splits.parquet")
    placed = splits[splits["split"].isin(["test", "holdout"])]
    assert report["coverage"] and sum(v["placed"] for v in report["coverage"].values()) == len(placed)
    assert all(v["coverage"] == 1.0 for v in report["coverage"].values()), report["coverage"]
    sample = json.loads((root / "reports" / "sample.json").read_text())
    assert all(s["rejected"] == 0 for s in sample["view"]["per_split"].values()), sample["view"]
    op = report["operating_point"]
    assert 0 <= op["t_real"] <= op["t_fake"] <= 1 and op["target_fpr"] == 0.05
    t = op["test"]
    assert t["real_called_real"] + t["real_called_uncertain"] + t["real_called_fake"] == pytest.approx(1.0)
    assert set(op["held_out_per_source"]) >= {"ciplab-real"}
    scores = pd.read_parquet(root / "reports" / "scores.parquet")
    test = scores[scores["split"] == "test"]
    fake = test["p_fake"].to_numpy() >= op["t_fake"]
    assert fake[test["y"].to_numpy() == 1].mean() == pytest.approx(t["recall"])
    assert "## Operating point" in (root / "reports" / "evaluate.md").read_text()


@pytest.mark.slow
def test_an_ensemble_is_scored_by_predict_exactly_as_evaluate_scores_its_packed_faces(sample_pipeline, tmp_path,
                                                                                     monkeypatch):
    from realfake.detector.ensemble import train_detector
    from realfake.detector.scorer import Scorer
    from realfake.predict import predict

    root = sample_pipeline.root
    monkeypatch.chdir(root)
    params = yaml.safe_load(Path("params.yaml").read_text())
    model_cfg = load_section(ModelConfig, {"model": {**params["model"], "widths": [8, 16, 32, 32], "members": 2,
                                                     "attention": False}}, "model")
    cfg = TrainConfig(epochs=1, batch_size=32, min_epochs=1, threads=1)
    train_detector(TrainRun(model_cfg, cfg, None, params["faces"], params["resize"], "sample"), Path("data/packed"),
                   tmp_path / "ensemble.pt", tmp_path / "live")
    test = pd.read_parquet("data/packed/test.parquet").head(12)
    meta = pd.read_parquet("data/metadata.parquet").set_index("face_id").loc[test["face_id"]]
    expected = Scorer(tmp_path / "ensemble.pt")(np.load("data/packed/test.npy", mmap_mode="r")[: len(test)])
    table = predict(list(meta["raw_path"]), tmp_path / "ensemble.pt")
    got = [table.loc[(table["file"] == p) & table["p_fake"].notna(), "p_fake"].to_numpy() for p in meta["raw_path"]]
    # the packed face is one of the faces predict found in its photo (same detection, same cut, same model)
    assert all(np.abs(g - e).min() < 0.02 for g, e in zip(got, expected, strict=True))
