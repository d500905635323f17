"""Calibration, the operating point (real / uncertain / fake) and the ensemble scored as one model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import TINY, write_packed

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.detector.checkpoint import load_detector
from realfake.detector.ensemble import train_detector
from realfake.detector.ensemble_net import Ensemble
from realfake.detector.model import ModelConfig
from realfake.detector.run import TrainRun
from realfake.detector.scorer import Scorer
from realfake.detector.train_config import TrainConfig
from realfake.detector.verdict import (
    OperatingPoint,
    VerdictConfig,
    calibrate,
    choose_operating_point,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    operating_point_of,
)


def overconfident(n: int, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z) with z ~ N(0, 2), reported as scale * z: a model `scale` times too sure."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return y, scale * z


def test_temperature_scaling_lowers_the_ece_of_a_miscalibrated_model():
    y, logits = overconfident(20000, 4.0)
    temperature = fit_temperature(y, logits)
    assert temperature == pytest.approx(4.0, rel=0.1)
    before = expected_calibration_error(y, calibrate(logits, 1.0))
    after = expected_calibration_error(y, calibrate(logits, temperature))
    assert before > 0.08 and after < 0.02 and after < before / 4
    # a calibrated model is left alone
    y2, z2 = overconfident(20000, 1.0, seed=1)
    assert fit_temperature(y2, z2) == pytest.approx(1.0, rel=0.1)


def test_platt_scaling_corrects_a_model_that_leans_to_one_class_where_a_temperature_cannot():
    # calibrated on the slope but shifted by +1.5: too many fakes, as a model trained on extra pseudo-fakes
    y, logits = overconfident(20000, 2.0, seed=3)
    logits = logits + 1.5
    temperature, bias = fit_platt(y, logits)
    assert temperature == pytest.approx(2.0, rel=0.1) and bias == pytest.approx(-0.75, abs=0.1)
    t_only = expected_calibration_error(y, calibrate(logits, fit_temperature(y, logits)))
    platt = expected_calibration_error(y, calibrate(logits, temperature, bias))
    assert t_only > 0.05 and platt < 0.02
    # on an unbiased model it finds no bias, and the ranking (every AUC, every decision) is unchanged
    y2, z2 = overconfident(20000, 3.0, seed=4)
    t2, b2 = fit_platt(y2, z2)
    assert t2 == pytest.approx(3.0, rel=0.1) and abs(b2) < 0.1
    point, report = choose_operating_point(y, logits, VerdictConfig(calibration="platt"))
    p = calibrate(logits, point.temperature, point.bias)
    assert point.bias == pytest.approx(bias) and report["val_ece_after"] < 0.02
    assert np.all(np.diff(p[np.argsort(logits)]) >= 0)  # monotone (float32 ties where the sigmoid saturates)
    # a checkpoint without a bias (before Platt scaling) loads with b = 0; the bias travels in the record
    record = point.record()
    assert operating_point_of({"info": {"operating_point": record}}).bias == pytest.approx(bias)
    del record["bias"]
    assert operating_point_of({"info": {"operating_point": record}}).bias == 0.0


def test_an_unknown_calibration_is_one_clear_error():
    with pytest.raises(UserError, match="calibration must be one of temperature, platt, none"):
        load_section(TrainConfig, {"train": {"verdict": {"calibration": "isotonic"}}}, "train")


def test_the_operating_point_holds_the_validation_false_alarm_rate():
    y, logits = overconfident(4000, 1.0, seed=2)
    point, report = choose_operating_point(y, logits, VerdictConfig(target_fpr=0.05, target_fnr=0.10))
    p = calibrate(logits, point.temperature, point.bias)
    assert np.mean(p[y == 0] >= point.t_fake) <= 0.05 and np.mean(p[y == 0] >= point.t_fake) > 0.04
    assert np.mean(p[y == 1] < point.t_real) <= 0.10 and np.mean(p[y == 1] < point.t_real) > 0.09
    assert report["fpr"] == pytest.approx(np.mean(p[y == 0] >= point.t_fake))
    assert report["val_ece_after"] <= report["val_ece_before"] + 1e-9
    assert point.t_real < point.t_fake  # a model this weak cannot meet both targets: a band between


def test_uncertain_lies_between_the_two_thresholds():
    point = OperatingPoint(temperature=1.0, t_real=0.3, t_fake=0.7, target_fpr=0.05, target_fnr=0.1)
    assert point.decide(np.array([0.0, 0.2999, 0.3, 0.5, 0.6999, 0.7, 1.0])).tolist() == [
        "real", "real", "uncertain", "uncertain", "uncertain", "fake", "fake"]
    no_band = OperatingPoint(1.0, 0.6, 0.6, 0.05, None)
    assert no_band.decide(np.array([0.59, 0.6])).tolist() == ["real", "fake"]


def test_a_separable_validation_set_gets_no_band():
    y = np.array([0] * 50 + [1] * 50)
    logits = np.concatenate([np.linspace(-6, -3, 50), np.linspace(3, 6, 50)])
    point, report = choose_operating_point(y, logits, VerdictConfig())
    assert point.t_real == point.t_fake and report["uncertain"] == 0.0 and report["recall"] == 1.0


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_a_target_fpr_outside_0_1_is_one_clear_error(bad):
    with pytest.raises(UserError, match="target_fpr must lie strictly between 0 and 1"):
        load_section(TrainConfig, {"train": {"verdict": {"target_fpr": bad}}}, "train")


def test_a_damaged_operating_point_is_one_clear_error():
    with pytest.raises(UserError, match="operating point is out of range"):
        operating_point_of({"info": {"operating_point": {"temperature": 1.0, "t_real": 0.8, "t_fake": 0.2,
                                                         "target_fpr": 0.05, "target_fnr": 0.1}}})
    with pytest.raises(UserError, match="operating point is damaged"):
        operating_point_of({"info": {"operating_point": {"temperature": "hot", "t_real": 0.1, "t_fake": 0.2,
                                                         "target_fpr": 0.05, "target_fnr": 0.1}}})
    assert operating_point_of({"info": {}}) is None


@pytest.mark.slow  # trains two tiny members (~6 s here)
def test_an_ensemble_is_one_checkpoint_scored_as_the_mean_of_its_members(tmp_path):
    packed = tmp_path / "packed"
    write_packed(packed, "train", 80, 80, 32, seed=0)
    images, _ = write_packed(packed, "val", 40, 40, 32, seed=1)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=3e-3, warmup_epochs=0.5, min_epochs=2, threads=1)
    model_cfg = ModelConfig(**{**TINY.__dict__, "members": 2})
    summary = train_detector(TrainRun(model_cfg, cfg, size=32), packed, tmp_path / "e.pt", tmp_path / "live")
    assert summary["members"] == 2 and len(summary["member_val_auc"]) == 2
    assert not list(tmp_path.glob(".members-*"))  # the members' temporary checkpoints are gone
    model, checkpoint = load_detector(tmp_path / "e.pt")
    assert isinstance(model, Ensemble) and len(model.members) == 2
    # the two members differ (seeds 0 and 1) and the ensemble's logit is their mean, calibrated by the scorer
    x = torch.from_numpy(images[:8]).float().div(255).sub(0.5).div(0.5)
    with torch.no_grad():
        a, b = (m(x).numpy() for m in model.members)
    assert not np.allclose(a, b)
    scorer = Scorer(tmp_path / "e.pt")
    expected = calibrate((a.astype(np.float64) + b) / 2, scorer.temperature, scorer.bias)
    assert np.allclose(scorer(images[:8]), expected, atol=1e-5)
    point = scorer.operating_point
    assert point is not None and checkpoint["info"]["operating_point"]["t_fake"] == point.t_fake
    assert math.isfinite(summary["best_val_auc"])


@pytest.mark.slow  # trains two tiny members twice (~10 s here)
@pytest.mark.parametrize("key, per_member", [(None, None), ("input", ["dwt_hh", "rgb"]), ("arch", ["cnn", "npr"])])
def test_joining_single_seed_runs_gives_the_ensemble_that_members_k_trains(tmp_path, key, per_member):
    from dataclasses import replace

    from realfake.detector.ensemble import join_members
    packed = tmp_path / "packed"
    write_packed(packed, "train", 80, 80, 32, seed=0)
    write_packed(packed, "val", 40, 40, 32, seed=1)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=3e-3, warmup_epochs=0.5, min_epochs=2, threads=1)
    extra = {f"member_{key}s": per_member} if key else {}
    run = TrainRun(ModelConfig(**{**TINY.__dict__, "members": 2, **extra}), cfg, size=32)
    train_detector(run, packed, tmp_path / "e.pt", tmp_path / "l")
    for seed in (0, 1):  # the single-seed runs an experiment makes with -S train.seed=0 and 1 (-S model.input=…)
        single = replace(TINY, **{key: per_member[seed]}) if key else TINY
        train_detector(TrainRun(single, replace(cfg, seed=seed), size=32), packed, tmp_path / f"s{seed}.pt",
                       tmp_path / f"l{seed}")
    info, _ = join_members([tmp_path / "s0.pt", tmp_path / "s1.pt"], run, packed, tmp_path / "j.pt")
    trained, joined = (load_detector(tmp_path / name)[1] for name in ("e.pt", "j.pt"))
    assert trained["state_dict"].keys() == joined["state_dict"].keys()
    assert all(torch.equal(trained["state_dict"][k], joined["state_dict"][k]) for k in trained["state_dict"])
    assert trained["info"]["operating_point"] == joined["info"]["operating_point"] == info["operating_point"]


def test_ensemble_members_see_their_own_inputs_through_a_checkpoint(tmp_path):
    from realfake.detector.checkpoint import preprocessing_for, save_checkpoint
    from realfake.detector.highpass import DwtHighPass, dwt_hh_input
    from realfake.detector.model import build_model

    cfg = ModelConfig(**{**TINY.__dict__, "members": 2, "member_inputs": ["dwt_hh", "rgb"]})
    save_checkpoint(tmp_path / "e.pt", build_model(cfg), cfg, preprocessing_for(32), {"threshold": 0.5})
    model, checkpoint = load_detector(tmp_path / "e.pt")
    assert checkpoint["model_config"]["member_inputs"] == ["dwt_hh", "rgb"]
    first, second = model.members
    assert isinstance(first.front, DwtHighPass) and isinstance(second.front, torch.nn.Identity)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # member 0's logit is that of its network on the high-pass of x, member 1's on x itself
        first.front = torch.nn.Identity()
        expected = (first(dwt_hh_input(x)) + second(x)) / 2
        first.front = DwtHighPass()
        assert torch.allclose(model(x), expected, atol=1e-6)


@pytest.mark.parametrize("raw", [{"members": 2, "member_inputs": ["rgb"]}, {"members": 2, "member_inputs": ["rgb", "hh"]},
                                 {"members": 2, "member_archs": ["cnn"]}, {"members": 2, "member_archs": ["cnn", "vit"]}])
def test_member_inputs_or_archs_that_do_not_fit_the_members_are_one_clear_error(raw):
    key = next(k for k in raw if k.startswith("member_"))
    with pytest.raises(UserError, match=f"model.{key} must be a list of|model.{key} must list one"):
        load_section(ModelConfig, {"model": {"widths": TINY.widths, **raw}}, "model")


def test_an_arch_that_is_not_the_first_member_is_one_clear_error():
    # the default ensemble is [cnn, npr]: `-S model.arch=npr` alone must not be silently overruled by the list
    with pytest.raises(UserError, match=r"model.arch npr is not the first of model.member_archs.*members=1"):
        load_section(ModelConfig, {"model": {"widths": TINY.widths, "arch": "npr", "members": 2,
                                             "member_archs": ["cnn", "npr"]}}, "model")


def test_one_member_is_one_network_of_arch_whatever_the_member_lists_say(caplog):
    cfg = load_section(ModelConfig, {"model": {"widths": TINY.widths, "arch": "npr", "members": 1,
                                               "member_archs": ["cnn", "npr"], "member_inputs": ["rgb", "dwt_hh"]}}, "model")
    assert (cfg.arch, cfg.member_archs, cfg.member_inputs) == ("npr", None, None)
    # said in one line, so `-S 'model.member_archs=[cnn, npr]'` without `model.members=2` is no silent surprise
    assert [r.message for r in caplog.records] == [
        "model.members is 1: one npr network on rgb; model.member_inputs/member_archs apply to ensembles only"]
    from realfake.detector.model import model_record
    assert "member_archs" not in model_record(cfg)  # so its checkpoint has the bytes of a plain one-network run


def test_ensemble_members_are_their_own_networks_through_a_checkpoint(tmp_path):
    from realfake.detector.checkpoint import preprocessing_for, save_checkpoint
    from realfake.detector.model import Detector, build_model
    from realfake.detector.model_card import architecture_line
    from realfake.detector.npr_net import NPRDetector

    cfg = ModelConfig(**{**TINY.__dict__, "arch": "npr", "members": 2, "member_archs": ["npr", "cnn"]})
    save_checkpoint(tmp_path / "e.pt", build_model(cfg), cfg, preprocessing_for(32), {"threshold": 0.5})
    model, checkpoint = load_detector(tmp_path / "e.pt")
    assert checkpoint["model_config"]["member_archs"] == ["npr", "cnn"]
    first, second = model.members
    assert isinstance(first, NPRDetector) and isinstance(second, Detector)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # the ensemble's logit is the mean of its two different networks' logits
        assert torch.allclose(model(x), (first(x) + second(x)) / 2, atol=1e-6)
    assert "member k is network k of npr, cnn" in architecture_line(cfg)
    # a checkpoint of one network keeps its bytes: the key is left out when it means "as before"
    from realfake.detector.model import model_record
    assert "member_archs" not in model_record(TINY)


def test_an_ensemble_checkpoint_with_a_missing_member_is_one_clear_error(tmp_path):
    from realfake.detector.checkpoint import preprocessing_for, read_checkpoint, save_checkpoint
    from realfake.detector.model import build_model

    cfg = ModelConfig(**{**TINY.__dict__, "members": 2})
    save_checkpoint(tmp_path / "e.pt", build_model(cfg), cfg, preprocessing_for(32), {"threshold": 0.5})
    checkpoint = read_checkpoint(tmp_path / "e.pt")
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("members.1.")}
    checkpoint.pop("weights_sha256", None)  # as a checkpoint written without the digest (else the digest refuses it)
    torch.save(checkpoint, tmp_path / "cut.pt")
    with pytest.raises(UserError, match="damaged .*checkpoint: ensemble member.s. 1 of 2 have no weights"):
        load_detector(tmp_path / "cut.pt")


def test_the_false_alarm_disparity_is_measured_at_the_operating_points_fake_threshold():
    from realfake.evaluation.breakdowns import BreakdownConfig
    from realfake.evaluation.verdicts import operating_point_disparity, verdict_lines
    # 20 real women, 4 with p 0.8 (uncertain, not a false alarm) and 2 with p 0.95 (called fake); 20 real men, 1
    # called fake; 20 fakes each. At t_fake 0.9 the false alarms are 0.10 against 0.05: ratio 2.
    women = [0.1] * 14 + [0.8] * 4 + [0.95] * 2
    men = [0.1] * 19 + [0.95]
    frame = pd.DataFrame({"gender": ["female"] * 40 + ["male"] * 40, "y": [0] * 20 + [1] * 20 + [0] * 20 + [1] * 20,
                          "p_fake": women + [0.99] * 20 + men + [0.99] * 20})
    point = OperatingPoint(temperature=1.0, t_real=0.5, t_fake=0.9, target_fpr=0.05, target_fnr=0.1)
    out = operating_point_disparity(point, frame, BreakdownConfig())
    assert out["gender"]["fpr"]["ratio"] == pytest.approx(2.0)
    assert out["gender"]["fpr"]["max_group"] == "female" and out["gender"]["fpr"]["max"] == pytest.approx(0.10)
    assert operating_point_disparity(None, frame, BreakdownConfig()) == {}
    report = {"t_fake": 0.9, "t_real": 0.5, "temperature": 1.0, "target_fpr": 0.05, "test_ece_before": 0.1,
              "test_ece_after": 0.05, "test": {"fpr": 0.075, "real_called_uncertain": 0.1, "recall": 1.0,
                                                "fake_called_uncertain": 0.0},
              "test_per_source": {}, "disparity": out}
    assert any("gender 2.00 (female 0.100, male 0.050)" in line for line in verdict_lines(report, {}))


def test_the_report_says_the_operating_point_in_words():
    from realfake.evaluation.verdicts import in_words
    op = {"test": {"fpr": 0.05, "real_called_uncertain": 0.1, "recall": 0.85, "fake_called_uncertain": 0.05},
          "held_out_per_source": {
              "ciplab-real": {"label": "real", "n": 100, "called_fake": 0.2, "called_uncertain": 0.1, "called_real": 0.7},
              "unsplash": {"label": "real", "n": 300, "called_fake": 0.0, "called_uncertain": 0.3, "called_real": 0.7},
              "pollinations": {"label": "fake", "n": 50, "called_fake": 0.4, "called_uncertain": 0.2,
                               "called_real": 0.4}}}
    assert in_words(op) == (
        "At the operating point, of 400 real photos from sources it never trained on (ciplab-real, unsplash), 5.0% are "
        "called fake and 25.0% uncertain; of real test photos from the training sources, 5.0% are called fake and "
        "10.0% uncertain; 85.0% of fakes from the training generators are caught (5.0% uncertain); 40.0% of fakes "
        "from `pollinations`, a generator it never trained on (20.0% uncertain).")
