"""The detector network, its attention blocks, and the losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.detector.layers import CBAM, SelfAttention2d, SqueezeExcite
from realfake.detector.losses import BinaryLoss, class_weights, focal_loss
from realfake.detector.model import (
    ModelConfig,
    attention_parameters,
    build_model,
    count_parameters,
)

SETTINGS = [(False, "cbam"), (True, "cbam"), (True, "se"), (True, "mhsa")]


@pytest.mark.parametrize("attention,kind", SETTINGS)
@pytest.mark.parametrize("size", [64, 96])
def test_forward_backward_shapes(attention, kind, size):
    torch.manual_seed(0)
    model = build_model(ModelConfig(attention=attention, attention_type=kind))
    x = torch.randn(4, 3, size, size).contiguous(memory_format=torch.channels_last)
    model = model.to(memory_format=torch.channels_last)
    logits = model(x)
    assert logits.shape == (4,)
    F.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 1.0, 0.0, 1.0])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    assert count_parameters(model) < 1_000_000


@pytest.mark.parametrize("kind", ["cbam", "se", "mhsa"])
def test_attention_off_removes_exactly_the_attention_blocks(kind):
    on = build_model(ModelConfig(attention=True, attention_type=kind))
    off = build_model(ModelConfig(attention=False, attention_type=kind))
    on_shapes = {n: p.shape for n, p in on.named_parameters()}
    off_shapes = {n: p.shape for n, p in off.named_parameters()}
    extra = set(on_shapes) - set(off_shapes)
    assert set(off_shapes) <= set(on_shapes)  # nothing else added or renamed
    assert all(off_shapes[n] == on_shapes[n] for n in off_shapes)  # same shapes for shared layers
    assert extra and all(".attn." in n for n in extra)
    assert attention_parameters(off) == 0
    blocks = [m for n, m in on.named_modules() if n.endswith(".attn")]
    block_params = sum(p.numel() for b in blocks for p in b.parameters())
    assert count_parameters(on) - count_parameters(off) == block_params == attention_parameters(on) > 0


def test_attention_placement_defaults():
    cfg = ModelConfig(attention_type="cbam")
    assert cfg.stages_with_attention() == [2, 3, 4]
    assert ModelConfig(attention_type="mhsa").stages_with_attention() == [4]
    assert ModelConfig(attention=False).stages_with_attention() == []
    model = build_model(ModelConfig(attention_type="se", attention_stages=[1]))
    assert [n for n, _ in model.named_modules() if n.endswith(".attn")] == ["stages.1.attn"]


def test_bad_model_params_are_user_errors():
    def load(section):
        return load_section(ModelConfig, {"model": section}, "model")

    with pytest.raises(UserError, match="attention_type"):
        load({"attention_type": "transformer"})
    with pytest.raises(UserError, match="unknown key 'atention' .did you mean 'attention'"):
        load({"atention": False})
    with pytest.raises(UserError, match="model.attention must be true or false, got 'maybe'"):
        load({"attention": "maybe"})
    with pytest.raises(UserError, match="attention_stages"):
        ModelConfig(attention_stages=[7])
    with pytest.raises(UserError, match=r"mhsa_heads 5 must divide .* \{4: 128\}"):
        load({"attention_type": "mhsa", "mhsa_heads": 5})
    with pytest.raises(UserError, match=r"mhsa_heads 3 must divide .* \{1: 64\}"):
        load({"arch": "npr", "attention_type": "mhsa", "mhsa_heads": 3})
    assert load({"attention_type": "mhsa", "mhsa_heads": 5, "attention": False}).mhsa_heads == 5  # unused: fine


def test_blocks_keep_shape_and_gates_act():
    x = torch.randn(2, 32, 8, 8)
    for block in (SqueezeExcite(32), CBAM(32), SelfAttention2d(32, 4)):
        assert block(x).shape == x.shape
    # gates only rescale: a sigmoid gate keeps the sign and never grows the magnitude
    y = SqueezeExcite(32)(x)
    assert torch.all(y.abs() <= x.abs() + 1e-6) and torch.all(y * x >= 0)


def test_focal_reduces_to_bce_at_gamma_zero():
    torch.manual_seed(1)
    logits, y = torch.randn(100) * 3, (torch.rand(100) > 0.5).float()
    bce = F.binary_cross_entropy_with_logits(logits, y)
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), bce, atol=1e-6)
    assert torch.allclose(BinaryLoss("focal", gamma=0.0)(logits, y), bce, atol=1e-6)
    assert torch.allclose(BinaryLoss("bce")(logits, y), bce, atol=1e-6)


def test_focal_down_weights_easy_examples():
    logits, y = torch.tensor([4.0, 0.1]), torch.tensor([1.0, 1.0])  # one easy, one hard positive
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    focal = focal_loss(logits, y, gamma=2.0, reduction="none")
    assert torch.all(focal < bce)
    assert focal[0] / bce[0] < focal[1] / bce[1]  # the easy one loses much more
    alpha = focal_loss(logits, y, gamma=0.0, alpha=0.25, reduction="none")
    assert torch.allclose(alpha, 0.25 * bce)


def test_class_weights_follow_counts():
    w = class_weights([300, 100])
    assert w is not None and w[1] / w[0] == pytest.approx(3.0)  # inverse to the counts
    assert 300 * w[0] == pytest.approx(100 * w[1])  # each class carries the same total weight
    assert class_weights([100, 100]) is None  # balanced: no weighting
    assert class_weights([110, 100], imbalance_ratio=1.2) is None
    assert class_weights([110, 100], imbalance_ratio=1.0) is not None
    assert class_weights([0, 50]) is None  # one class only: nothing to balance


def test_weighted_loss_balances_classes():
    # 3 reals and 1 fake, all equally wrong: with class weights each class contributes half the loss
    logits, y = torch.zeros(4), torch.tensor([0.0, 0.0, 0.0, 1.0])
    per_sample = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    loss = BinaryLoss("bce", weights=class_weights([3, 1]))
    logits_fake_right = torch.tensor([0.0, 0.0, 0.0, 5.0])
    # making the single fake right lowers the weighted loss by more than the unweighted one
    drop_weighted = loss(logits, y) - loss(logits_fake_right, y)
    drop_plain = per_sample.mean() - F.binary_cross_entropy_with_logits(logits_fake_right, y)
    assert drop_weighted > drop_plain * 1.5
