"""One TrainRun per training run: built once from params, stored whole in the checkpoint, passed alike by every caller."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_cv import pool_table, write_split
from test_train import write_train_val

from realfake.core.params import apply_overrides
from realfake.cv import CVConfig, cv_run, run_cv
from realfake.detector.run import TrainRun, run_from_record, run_record, train_run
from realfake.detector.stage import run_train_stage

REPO = Path(__file__).resolve().parents[1]
SMALL = ["resize.size=32", "model.widths=[8, 16, 32, 32]", "train.epochs=1", "train.threads=1"]


def params() -> dict:
    """params.yaml (sample profile) shrunk to a one-epoch run on 32 px arrays."""
    return apply_overrides(yaml.safe_load((REPO / "params.yaml").read_text()), SMALL)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    return write_train_val(tmp_path_factory.mktemp("run") / "packed", (24, 24), (8, 8))


def test_train_run_reads_every_section_the_checkpoint_records(packed):
    p = params()
    run = train_run(p, packed)
    assert run.model.widths == [8, 16, 32, 32] and run.train.epochs == 1 and run.size == 32
    assert run.faces == p["faces"] and run.resize == p["resize"] and run.profile == "sample"
    # the sample profile's overrides are applied (over the mirror's train section) and named
    assert run.profile_overrides == p["train"]["profile_overrides"]["sample"]
    assert all(getattr(run.train, k) == v for k, v in run.profile_overrides.items())


def test_the_checkpoint_stores_the_run_the_stage_built(packed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = train_run(params(), packed)
    run_train_stage(run, str(packed), "models/detector.pt", "models/MODEL_CARD.md", "metrics/train.json", "live")
    stored = torch.load("models/detector.pt", weights_only=True)["run"]  # plain types: the safe load reads it
    assert stored == run_record(run)
    assert run_from_record(stored) == run  # whole: nothing lost on the way back


def test_an_ensemble_checkpoint_stores_its_run_with_its_members(packed, tmp_path):
    from realfake.detector.ensemble import train_detector

    base = train_run(params(), packed)
    run = replace(base, model=replace(base.model, members=2))
    train_detector(run, packed, tmp_path / "e.pt", tmp_path / "live")
    assert run_from_record(torch.load(tmp_path / "e.pt", weights_only=True)["run"]) == run


def test_cv_trains_every_fold_with_the_run_the_stage_builds(packed, tmp_path, monkeypatch):
    # before, cv passed the model and train configs, the size and `faces` only: no `resize` (its checkpoints
    # recorded "not re-encoded"), no data.profile (a fitness record without its profile), and its fold folders had
    # no view record (every fold's checkpoint said "aligned", whatever sample.view packed)
    import realfake.detector.ensemble as ensemble

    seen: list[TrainRun] = []
    views: list[dict] = []

    def stop(run, folder, *_):
        seen.append(run)
        views.append(json.loads((folder / "view.json").read_text()))  # before, folds held no view record
        raise KeyboardInterrupt  # the run is what this test wants; the folds need not train

    pool, rng, table = tmp_path / "pool", np.random.default_rng(0), pool_table(90, seed=1)
    write_split(pool, "train", table.iloc[:60], rng)  # the cv tests' pool: groups, strata, 32 px
    write_split(pool, "val", table.iloc[60:], rng)
    view = {"name": "context", "size": 32, "context": {"margin": 2.2}}  # the pool's view record (sample.view)
    (pool / "view.json").write_text(json.dumps(view))
    monkeypatch.setattr(ensemble, "train_detector", stop)
    with pytest.raises(KeyboardInterrupt):
        run_cv(params(), CVConfig(folds=3), pool, tmp_path / "cv.json")
    assert seen == [train_run(params(), pool)] == [cv_run(params(), CVConfig(folds=3), pool)]
    assert views == [view]
    short = cv_run(params(), CVConfig(folds=3, epochs=2), pool)  # cv.epochs: the one thing cv changes
    assert short == replace(seen[0], train=replace(seen[0].train, epochs=2, min_epochs=2))  # the profile's 15, capped


def test_a_checkpoint_without_a_run_still_loads(tmp_path):
    from realfake.detector.checkpoint import load_detector, preprocessing_for, save_checkpoint
    from realfake.detector.model import ModelConfig, build_model

    cfg = ModelConfig(widths=[8, 16])
    save_checkpoint(tmp_path / "old.pt", build_model(cfg), cfg, preprocessing_for(32), {"threshold": 0.5})
    _, checkpoint = load_detector(tmp_path / "old.pt")
    assert "run" not in checkpoint


def test_cv_set_goes_through_the_params_loaders_override_rule(tmp_path, monkeypatch):
    import realfake.cv
    from realfake.cli import main
    from realfake.core.params import load_params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params()))
    seen = []
    monkeypatch.setattr(realfake.cv, "run_cv", lambda p, cfg, *a, **k: seen.append((p, cfg)) or {})
    monkeypatch.setattr(realfake.cv, "summary_row", lambda *a: {"run": "x"})
    sets = ["model.attention=false", "train.lr=0.01"]
    main(["cv", "--params", str(tmp_path / "params.yaml"), "--folds", "4", *(f"--set={s}" for s in sets)])
    (got, cfg), = seen
    assert got == load_params(tmp_path / "params.yaml", sets) and cfg.folds == 4  # the stage scripts' loader
