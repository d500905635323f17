"""The NPR architecture (`model.arch: npr`): residual input, shapes, attention switch, checkpoints, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_train import write_packed

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.detector.checkpoint import load_detector, preprocessing_for, save_checkpoint, to_model_input
from realfake.detector.model import ModelConfig, attention_parameters, build_model, count_parameters
from realfake.detector.model_card import render_model_card
from realfake.detector.npr import RESIDUAL_SCALE, NeighbourResidual, neighbour_residual
from realfake.detector.npr_net import NprConfig
from realfake.detector.run import TrainRun
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig

NPR = ModelConfig(arch="npr")
TINY_NPR = ModelConfig(arch="npr", npr=NprConfig(widths=[8, 16], blocks=[1, 1], stem_width=8))


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


@pytest.mark.parametrize("size", [64, 96, 128])
@pytest.mark.parametrize("attention_type", ["cbam", "se", "mhsa"])
def test_one_logit_per_image_at_each_input_size(size, attention_type):
    model = build_model(ModelConfig(arch="npr", attention_type=attention_type)).eval()
    x = to_model_input(images(3, size), preprocessing_for(size), channels_last=True)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()


def test_residual_of_a_nearest_upsampled_image_is_exactly_zero():
    small = torch.rand(2, 3, 32, 32)
    up = F.interpolate(small, scale_factor=2.0, mode="nearest")
    assert torch.equal(neighbour_residual(up), torch.zeros_like(up))
    assert torch.equal(NeighbourResidual()(up.contiguous(memory_format=torch.channels_last)), torch.zeros_like(up))


def test_residual_is_each_pixel_minus_its_cells_top_left_pixel():
    x = torch.rand(1, 3, 8, 8)
    residual = neighbour_residual(x)
    # the paper's formulation: x - interpolate(interpolate(x, 0.5, nearest), 2, nearest)
    paper = x - F.interpolate(F.interpolate(x, scale_factor=0.5, mode="nearest"), scale_factor=2.0, mode="nearest")
    assert torch.equal(residual, paper)
    assert torch.equal(residual[..., ::2, ::2], torch.zeros(1, 3, 4, 4))
    assert torch.allclose(residual[..., 0, 1], x[..., 0, 1] - x[..., 0, 0])
    assert torch.allclose(NeighbourResidual()(x), RESIDUAL_SCALE * residual)
    with pytest.raises(ValueError, match="even"):
        neighbour_residual(torch.rand(1, 3, 7, 8))


def test_the_network_sees_only_the_residual():
    # two images that differ by a constant per 2x2 cell have the same residual, hence the same logit
    model = build_model(NPR).eval()
    x = torch.rand(2, 3, 64, 64)
    shift = F.interpolate(torch.rand(2, 3, 32, 32), scale_factor=2.0, mode="nearest")
    with torch.no_grad():
        assert torch.allclose(model(x), model(x + shift), atol=1e-5)


def test_attention_switch_adds_only_attention_parameters():
    on, off = build_model(NPR), build_model(ModelConfig(arch="npr", attention=False))
    assert attention_parameters(on) > 0 and attention_parameters(off) == 0
    assert count_parameters(on) == count_parameters(off) + attention_parameters(on)
    assert set(off.state_dict()) == {k for k in on.state_dict() if ".attn." not in k}
    assert sorted({k.split(".attn.")[0] for k in on.state_dict() if ".attn." in k}) == ["stages.0", "stages.1"]


def test_parameter_counts():
    assert count_parameters(build_model(ModelConfig(arch="npr", attention=False))) == 169_825  # 172,585 with CBAM
    paper = ModelConfig(arch="npr", attention=False, npr=NprConfig("bottleneck", [64, 128], [3, 4], 64))
    assert count_parameters(build_model(paper)) == 1_437_761  # Tan et al.: 1.44 M


def test_grad_cam_of_the_evaluate_stage_reads_the_npr_stages():
    from realfake.detector.gradcam import grad_cam

    cams = grad_cam(build_model(NPR).eval(), to_model_input(images(2, 64), preprocessing_for(64), False))
    assert cams.shape == (2, 64, 64) and np.isfinite(cams).all() and cams.max() <= 1.0


def test_bad_npr_params_are_user_errors():
    with pytest.raises(UserError, match="model.npr"):
        load_section(ModelConfig, {"model": {"arch": "npr", "npr": {"widths": [8, 16], "blocks": [1]}}}, "model")
    with pytest.raises(UserError, match="attention_stages"):
        ModelConfig(arch="npr", attention_stages=[2])
    with pytest.raises(UserError):
        load_section(ModelConfig, {"model": {"arch": "vit"}}, "model")


def test_checkpoint_roundtrip_scores_identically(tmp_path):
    cfg = ModelConfig(arch="npr", attention_type="se", npr=NprConfig("bottleneck", [8, 16], [1, 2], 8))
    model = build_model(cfg).eval()
    torch.nn.init.normal_(model.fc.weight)  # make the output depend on the weights
    save_checkpoint(tmp_path / "m.pt", model, cfg, preprocessing_for(64), {})
    loaded, checkpoint = load_detector(tmp_path / "m.pt")
    assert checkpoint["model_config"]["arch"] == "npr" and checkpoint["model_config"]["npr"]["block"] == "bottleneck"
    x = to_model_input(images(4, 64), checkpoint["preprocessing"], False)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_a_checkpoint_without_arch_loads_as_the_cnn(tmp_path):
    cfg = ModelConfig(widths=[8, 16])
    save_checkpoint(tmp_path / "m.pt", build_model(cfg), cfg, preprocessing_for(32), {})
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    del raw["model_config"]["arch"], raw["model_config"]["npr"]  # as written before model.arch existed
    torch.save(raw, tmp_path / "old.pt")
    model, _ = load_detector(tmp_path / "old.pt")
    assert type(model).__name__ == "Detector"


def test_npr_trains_with_chain_matching_on_synthetic_data(tmp_path):
    write_packed(tmp_path / "packed", "train", 24, 24, 32, seed=0)
    write_packed(tmp_path / "packed", "val", 8, 8, 32, seed=1)
    cfg = load_section(TrainConfig, {"train": {"epochs": 1, "batch_size": 16, "threads": 1,
                                               "augment": {"chain": True, "jpeg_p": 0.5}}}, "train")
    summary = train(TrainRun(TINY_NPR, cfg, size=32), tmp_path / "packed", tmp_path / "m.pt", tmp_path / "live")
    assert summary["epochs_run"] == 1 and np.isfinite(summary["best_val_loss"])
    model, checkpoint = load_detector(tmp_path / "m.pt")
    assert checkpoint["model_config"]["arch"] == "npr" and summary["params"] == count_parameters(model)
    card = render_model_card(summary, TINY_NPR, cfg)
    assert "- NPR (Tan et al. CVPR 2024)" in card and "basic residual blocks [1, 1], widths [8, 16]" in card
    assert "- Chain matching (`train.augment.chain`)" in card and "quality [30, 100]" in card
    assert "Chain matching" not in render_model_card(summary, TINY_NPR, TrainConfig())
    context = {"name": "context", "size": 32, "context": {"margin": 2.2, "size": 32, "max_pad_fraction": 0.05}}
    card = render_model_card({**summary, "data": {**summary["data"], "view": context}}, TINY_NPR, cfg)
    assert "- View `context`: the aligned face at a wider margin (2.2 x eye-to-mouth" in card
    assert "more than 0.05 padding are left out" in card  # the record of a crop that allowed upscaling
    upscale_free = {**context, "context": {**context["context"], "max_upscale": 1.0}}
    card = render_model_card({**summary, "data": {**summary["data"], "view": upscale_free}}, TINY_NPR, cfg)
    assert "more than 0.05 padding or upscaling are left out" in card
    shrink = {**context, "context": {**context["context"], "max_upscale": None, "fit": "shrink", "min_margin": 1.6}}
    card = render_model_card({**summary, "data": {**summary["data"], "view": shrink}}, TINY_NPR, cfg)
    assert "cut at the widest margin down to 1.6" in card and "so every face gets a verdict" in card
    assert "## Decision (`realfake predict`: real / uncertain / fake)" in card and "calibrated on validation" in card


def test_npr_refuses_an_odd_input_side(tmp_path):
    write_packed(tmp_path / "packed", "train", 8, 8, 33, seed=0)
    write_packed(tmp_path / "packed", "val", 4, 4, 33, seed=1)
    with pytest.raises(UserError, match="even input side"):
        train(TrainRun(TINY_NPR, TrainConfig(epochs=1, batch_size=8, threads=1), size=33), tmp_path / "packed",
              tmp_path / "m.pt", tmp_path / "live")


@pytest.mark.slow  # the sample pipeline (session fixture, shared) and two epochs of the NPR net on its packed faces
def test_npr_trains_on_the_embedded_samples_packed_faces(sample_pipeline, tmp_path):
    packed = sample_pipeline.root / "data" / "packed"
    cfg = load_section(TrainConfig, {"train": {"epochs": 2, "batch_size": 32, "threads": 1, "min_epochs": 1,
                                               "augment": {"chain": True}}}, "train")
    summary = train(TrainRun(NPR, cfg), packed, tmp_path / "m.pt", tmp_path / "live")
    view = json.loads((packed / "view.json").read_text())  # the default view's size
    assert summary["data"]["size"] == view["size"] and summary["data"]["view"] == view and summary["epochs_run"] == 2
    assert summary["data"]["train"]["kept"] > 100 and np.isfinite(summary["best_val_loss"])
    assert summary["attention_params"] > 0
    model, _ = load_detector(tmp_path / "m.pt")
    assert type(model).__name__ == "NPRDetector"
