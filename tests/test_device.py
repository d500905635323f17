"""`auto | cpu | cuda` devices and mixed precision: the CPU path is unchanged; a GPU smoke test where CUDA exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train import TINY, write_train_val

from realfake.core.device import resolve_device, resolve_precision
from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.detector.augment import AugmentConfig
from realfake.detector.checkpoint import load_detector, preprocessing_for, save_checkpoint
from realfake.detector.patches import PatchConfig
from realfake.detector.run import TrainRun
from realfake.detector.scorer import Scorer
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig
from realfake.detector.verdict import VerdictConfig

REPO = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()

# Computed with the code of main at 549aa95 (before devices, AMP and shards) on this project's CPU machines:
# per epoch (train loss, val loss, val AUC), the sums of the checkpoint's tensors and the chosen threshold.
BEFORE = {
    "default": {
        "history": [[0.693886324763298, 0.693146288394928, 0.68359375], [0.6913120895624161, 0.693143367767334, 0.59375]],
        "weight_sum": 401.1143056747078, "weight_abs_sum": 3411.9635412654843, "threshold": 0.5006701648235321},
    "balanced_patch": {
        "history": [[0.6936738193035126, 0.6931471824645996, 0.54296875], [0.694032832980156, 0.6931474208831787, 0.501953125]],
        "weight_sum": 377.73091476149693, "weight_abs_sum": 3370.8564395316525, "threshold": 0.4998408257961273},
}
# the recipe of that time, pinned where a later default changed it (the crop's scale range, the calibration):
# this test guards the device code path, not the recipe
THEN = {"augment": AugmentConfig(crop_scale=[0.8, 1.0]), "verdict": VerdictConfig(calibration="none")}
CONFIGS = {"default": THEN, "balanced_patch": {**THEN, "sampler": "source_balanced", "patch": PatchConfig(size=16, count=4)}}


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    return write_train_val(tmp_path_factory.mktemp("device") / "packed", (40, 24), (16, 16))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cpu_training_is_what_it_was(packed, tmp_path, name):
    # the default device is auto: on a machine without CUDA that is the CPU, and nothing may have moved
    cfg = TrainConfig(epochs=2, batch_size=16, threads=1, device="cpu" if HAS_CUDA else "auto", **CONFIGS[name])
    summary = train(TrainRun(TINY, cfg, size=32), packed, tmp_path / "m.pt", tmp_path / "live")
    state = torch.load(tmp_path / "m.pt", weights_only=True)["state_dict"]
    got = {"history": [[h["train_loss"], h["val_loss"], h["val_auc"]] for h in summary["history"]],
           "weight_sum": float(sum(v.double().sum() for v in state.values())),
           "weight_abs_sum": float(sum(v.double().abs().sum() for v in state.values())),
           "threshold": summary["threshold"]}
    assert summary["device"] == "cpu" and summary["precision"] == "fp32" and summary["batch_size"] == 16
    # float sums of kernels that differ between CPU generations (AVX2 / AVX-512) agree to ~1e-8 relative, not bit
    # for bit; a change of the training path moves them by far more
    want = BEFORE[name]
    assert np.allclose(got["history"], want["history"], rtol=1e-6, atol=0)
    assert {k: got[k] for k in want if k != "history"} == pytest.approx({k: want[k] for k in want if k != "history"},
                                                                         rel=1e-6)


def test_explicit_cpu_equals_auto_on_a_cpu_machine(packed, tmp_path):
    runs = [train(TrainRun(TINY, TrainConfig(epochs=1, batch_size=16, threads=1, device=d), size=32), packed,
                  tmp_path / f"{d}.pt", tmp_path / d) for d in ("cpu", "auto")]
    if not HAS_CUDA:
        assert runs[0]["history"] == runs[1]["history"]


def test_one_device_rule_for_a_gpu_found_elsewhere():
    """The faces stage on Ray asks the cluster, not the driver's torch: the same rule, the same error shape."""
    assert resolve_device("auto", "faces.device", has_cuda=True, where="the Ray cluster") == torch.device("cuda")
    assert resolve_device("auto", "faces.device", has_cuda=False, where="the Ray cluster") == torch.device("cpu")
    with pytest.raises(UserError, match="faces.device=cuda but the Ray cluster offers no GPU: use faces.device=auto"):
        resolve_device("cuda", "faces.device", has_cuda=False, where="the Ray cluster")
    with pytest.raises(UserError, match="faces.device must be one of"):
        resolve_device("gpu", "faces.device", has_cuda=True)


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("AUTO").type == ("cuda" if HAS_CUDA else "cpu")
    for bad in ("gpu", "cuda:x", "cpu:0", ""):
        with pytest.raises(UserError, match="train.device must be one of"):
            resolve_device(bad, "train.device")
    if not HAS_CUDA:
        with pytest.raises(UserError, match="no CUDA device") as err:
            resolve_device("cuda", "evaluate.device")
        assert "evaluate.device=auto" in str(err.value)
    with pytest.raises(UserError, match="train.amp must be one of bf16, fp16, off"):
        load_section(TrainConfig, {"train": {"amp": "fp8"}}, "train")
    with pytest.raises(UserError, match="train.input must be one of packed, shards"):
        load_section(TrainConfig, {"train": {"input": "tfrecord"}}, "train")


def test_the_cpu_never_autocasts():
    cpu = torch.device("cpu")
    for mode in ("bf16", "fp16", "off"):
        precision = resolve_precision(mode, cpu)
        assert precision.dtype is None and not precision.needs_scaler and precision.name == "fp32"
    x = torch.ones(2, 2)
    with resolve_precision("bf16", cpu).autocast(cpu):
        assert (x @ x).dtype == torch.float32


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    from realfake.detector.model import build_model

    path = tmp_path / "detector.pt"
    save_checkpoint(path, build_model(TINY).eval(), TINY, preprocessing_for(32), {"threshold": 0.5})
    return path


@pytest.mark.slow
def test_scorer_and_predict_take_a_device(checkpoint, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    p = Scorer(checkpoint, "cpu")(images)
    assert p.shape == (4,) and np.all((p > 0) & (p < 1))
    if not HAS_CUDA:
        with pytest.raises(UserError, match="no CUDA device"):
            Scorer(checkpoint, resolve_device("cuda", "evaluate.device"))
    photo = tmp_path / "blank.jpg"
    Image.new("RGB", (96, 96), "grey").save(photo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "realfake.cli", "predict", str(photo), "--model", str(checkpoint)]
    ok = subprocess.run([*args, "--device", "cpu"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "no face found" in ok.stdout  # plain words in the printed table (the code is in the CSV)
    if not HAS_CUDA:
        bad = subprocess.run([*args, "--device", "cuda"], env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "--device=cuda" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_gpu_smoke_train_evaluate_predict(packed, tmp_path, amp):
    patch = PatchConfig(size=16, count=4) if amp == "fp16" else PatchConfig()  # the patch-level model's scoring too
    cfg = TrainConfig(epochs=1, batch_size=16, threads=1, device="cuda", amp=amp, cuda_batch_size=32, patch=patch)
    summary = train(TrainRun(TINY, cfg, size=32), packed, tmp_path / "m.pt", tmp_path / "live")
    assert summary["device"] == "cuda" and summary["precision"] in ("bf16", "fp16")
    assert summary["batch_size"] == 16  # 64 train images: the CUDA batch would leave < 20 steps per epoch
    assert np.isfinite(summary["best_val_loss"])
    model, _ = load_detector(tmp_path / "m.pt")
    assert all(t.device.type == "cpu" for t in model.state_dict().values())  # checkpoints load anywhere
    images = np.load(packed / "val.npy")
    on_gpu, on_cpu = Scorer(tmp_path / "m.pt", "cuda")(images), Scorer(tmp_path / "m.pt", "cpu")(images)
    assert np.allclose(on_gpu, on_cpu, atol=1e-3)  # evaluation stays float32 on the GPU
    from realfake.predict import predict

    photo = tmp_path / "blank.jpg"
    Image.new("RGB", (96, 96), "grey").save(photo)
    table = predict([str(photo)], tmp_path / "m.pt", device="cuda")
    assert table["reason_code"].tolist() == ["no_face"]
