"""Issue 23's training switches (docs/generalize.md): SAFE's augmentations, the high-frequency input, label
smoothing, the truncated ResNet, patch-level logits and self-blended pseudo-fakes; and one short run with all on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_predict import PARAMS, photos  # noqa: F401  (a module fixture: real photos from the embedded sample)
from test_train import OFF, write_packed

from realfake.core.errors import UserError
from realfake.detector.augment import AugmentConfig, augment_batch
from realfake.detector.checkpoint import load_detector
from realfake.detector.highpass import dwt_hh_input, haar_hh
from realfake.detector.losses import BinaryLoss, smooth_targets
from realfake.detector.model import ModelConfig, build_model, count_parameters, model_record
from realfake.detector.model_card import render_model_card
from realfake.detector.patch_head import patch_logits
from realfake.detector.patch_mask import patch_count, random_mask
from realfake.detector.patches import PatchConfig, patch_positions
from realfake.detector.resnet_trunc import ResNetConfig
from realfake.detector.rotation import rotate
from realfake.detector.run import TrainRun
from realfake.detector.sbi import SbiConfig, add_pseudo_fakes, self_blend
from realfake.detector.scorer import Scorer
from realfake.detector.train import train
from realfake.detector.train_config import TrainConfig


def images(n: int = 6, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Float images in (0.15, 0.85): no pixel is 0 before a step zeroes it."""
    return 0.15 + 0.7 * torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- SAFE's augmentations


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 0.75])
def test_random_mask_zeroes_the_asked_share_in_whole_grid_patches(share):
    x = images(4, 64)
    out = random_mask(x, [share, share], 16, torch.Generator().manual_seed(0))
    zero = (out == 0).all(1)  # (N, H, W): zeroed over every channel
    assert torch.equal(zero, (out == 0).any(1))  # no partial zeroing
    cells = zero.view(4, 4, 16, 4, 16).permute(0, 1, 3, 2, 4).reshape(4, 16, 256)
    assert torch.all(cells.all(-1) | ~cells.any(-1))  # each 16 px grid cell is all zero or untouched
    assert torch.all(zero.float().mean((1, 2)) == patch_count(64, 64, 16, share) * 256 / 64**2)
    assert patch_count(64, 64, 16, share) == int(16 * share)
    assert torch.equal(out[~zero.unsqueeze(1).expand_as(out)], x[~zero.unsqueeze(1).expand_as(x)])


def test_random_mask_draws_the_share_per_image_and_runs_in_augment():
    x = images(32, 64)
    cfg = AugmentConfig(**OFF, mask_p=1.0, mask_ratio=[0.0, 0.75])
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    shares = (out == 0).all(1).float().mean((1, 2))
    assert shares.max() <= 0.75 and len(set(shares.tolist())) > 3  # drawn from U[0, 0.75], per image
    with pytest.raises(UserError):
        AugmentConfig(mask_ratio=[0.5, 1.5])


def test_rotation_by_180_turns_the_image_around_and_45_blackens_the_corners():
    x = images(2, 32)
    assert torch.allclose(rotate(x, torch.zeros(2)), x, atol=1e-5)
    assert torch.allclose(rotate(x, torch.full((2,), 180.0)), x.flip(-1).flip(-2), atol=1e-4)
    turned = rotate(x, torch.full((2,), 45.0))
    assert torch.all(turned[..., 0, 0] == 0) and torch.all(turned[..., 16, 16] > 0)
    out = augment_batch(x, AugmentConfig(**OFF, rotate_p=1.0), torch.Generator().manual_seed(0))
    assert not torch.allclose(out, x) and out.shape == x.shape


def test_new_steps_off_draw_nothing_so_default_augmentation_is_unchanged():
    """rotate_p = mask_p = 0 take no random draw: the default's draws (and so models/detector.pt) stay as before."""
    x = (images(8, 32) * 255).round().to(torch.uint8)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    out = augment_batch(x, AugmentConfig(), g1)
    assert torch.equal(out, augment_batch(x, AugmentConfig(rotate_p=0.0, mask_p=0.0, rotate_degrees=90.0), g2))
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


def test_center_positions_are_safes_centre_crop():
    cfg = PatchConfig(size=80, count=1, positions="center")
    assert patch_positions(96, cfg) == [(8, 8)]
    with pytest.raises(UserError, match="count to 1"):
        PatchConfig(size=80, count=4, positions="center")


# ---------------------------------------------------------------- high-frequency input


def test_high_pass_of_a_constant_image_is_zero_and_keeps_the_shape():
    flat = torch.full((2, 3, 64, 64), 0.3)
    assert torch.equal(dwt_hh_input(flat), torch.zeros_like(flat))
    cells = F.interpolate(torch.rand(1, 3, 16, 16), scale_factor=2, mode="nearest")  # constant on 2x2 cells
    assert torch.allclose(haar_hh(cells), torch.zeros(1, 3, 16, 16))


def test_haar_hh_is_the_diagonal_detail_of_each_2x2_cell():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]])
    assert haar_hh(x).item() == pytest.approx((1 - 2 - 3 + 5) / 2)
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(8, 8).view(1, 1, 16, 16)
    assert torch.allclose(haar_hh(checker), torch.full((1, 1, 8, 8), 2.0))  # the diagonal band's own pattern
    stripes = torch.tensor([1.0, -1.0]).repeat(16, 8).view(1, 1, 16, 16)  # vertical stripes: horizontal detail only
    assert torch.allclose(haar_hh(stripes), torch.zeros(1, 1, 8, 8))


def test_dwt_hh_input_makes_the_model_blind_to_flat_colour():
    model = build_model(ModelConfig(arch="resnet", input="dwt_hh", resnet=ResNetConfig("basic", [8], [1], 8))).eval()
    a, b = torch.full((2, 3, 32, 32), -0.5), torch.full((2, 3, 32, 32), 0.7)
    with torch.no_grad():
        assert torch.allclose(model(a), model(b))  # both are zero after the high-pass


# ---------------------------------------------------------------- loss, arch, head


def test_label_smoothing_moves_the_targets_and_zero_leaves_them():
    t = torch.tensor([0.0, 1.0])
    assert torch.equal(smooth_targets(t, 0.0), t)
    assert torch.allclose(smooth_targets(t, 0.1), torch.tensor([0.05, 0.95]))
    logits = torch.tensor([0.3, -1.2])
    smoothed = BinaryLoss("bce", smoothing=0.1)(logits, t)
    assert smoothed == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, torch.tensor([0.05, 0.95]))))
    assert BinaryLoss("bce")(logits, t) == pytest.approx(float(F.binary_cross_entropy_with_logits(logits, t)))
    with pytest.raises(UserError):
        TrainConfig(label_smoothing=1.0)


def test_truncated_resnet_is_safes_size():
    model = build_model(ModelConfig(arch="resnet", attention=False))
    assert count_parameters(model) == 1_437_761  # SAFE: 1.44 M
    assert model(torch.rand(2, 3, 64, 64)).shape == (2,)


def test_patch_head_trains_on_every_position_and_scores_their_mean():
    model = build_model(ModelConfig(arch="resnet", head="patch", resnet=ResNetConfig("basic", [8, 16], [1, 1], 8)))
    x = torch.rand(3, 3, 64, 64)
    maps = model.train()(x)
    assert maps.shape == (3, 64)  # 64 px: stem /2, max-pool /2, stage 2 /2: 8 x 8 positions
    loss = BinaryLoss("bce")(maps, torch.tensor([0.0, 1.0, 1.0]))
    per_patch = F.binary_cross_entropy_with_logits(maps, torch.tensor([0.0, 1.0, 1.0]).view(3, 1).expand(3, 64))
    assert loss.item() == pytest.approx(per_patch.item())
    model.eval()
    with torch.no_grad():
        features = model.stages(model.stem(model.residual(model.front(x))))
        mean_patch = patch_logits(features, model.dropout, model.fc).mean(1)
        assert torch.allclose(model(x), mean_patch, atol=1e-5)  # the image logit is the mean patch logit


def test_checkpoint_leaves_new_keys_out_at_their_old_values_and_records_them_when_set():
    record = model_record(ModelConfig())
    assert not {"input", "head", "resnet"} & set(record)  # every switch off: the same bytes as before
    record = model_record(ModelConfig(arch="resnet", input="dwt_hh", head="patch"))
    assert record["input"] == "dwt_hh" and record["head"] == "patch" and record["resnet"]["widths"] == [64, 128]


# ---------------------------------------------------------------- self-blended pseudo-fakes


def test_self_blended_face_differs_from_its_source_only_inside_the_mask():
    x = images(8, 64)
    blended, mask = self_blend(x, SbiConfig(p=1.0), torch.Generator().manual_seed(0))
    outside = (mask == 0).expand_as(x)
    assert outside.any() and (~outside).any()
    assert torch.equal(blended[outside], x[outside])  # bit for bit outside the mask
    assert (blended - x).abs().amax((1, 2, 3)).min() > 0.01  # every image changed inside it
    assert torch.all(mask[:, :, 32, 32] > 0)  # centred on the face


def test_pseudo_fakes_come_from_reals_only_and_are_labelled_fake():
    x = (images(40, 32) * 255).round().to(torch.uint8)
    y = torch.tensor([0.0, 1.0] * 20)
    out, targets, made = add_pseudo_fakes(x, y, SbiConfig(p=0.5), torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(1)
    assert 0 < made < 20 and int((targets != y).sum()) == made
    assert torch.all(y[targets != y] == 0) and torch.all(targets[targets != y] == 1)
    assert not changed[y == 1].any()  # fakes untouched
    gen = torch.Generator().manual_seed(0)
    same = add_pseudo_fakes(x, y, SbiConfig(), gen)
    assert same[0] is x and same[2] == 0 and torch.equal(torch.rand(2, generator=gen),
                                                         torch.rand(2, generator=torch.Generator().manual_seed(0)))


# ---------------------------------------------------------------- everything on: train, then predict and score


ALL_ON_AUGMENT = AugmentConfig(crop_p=0.0, jitter_p=1.0, brightness=0.5, contrast=0.5, saturation=0.5, rotate_p=1.0,
                               mask_p=0.5)


@pytest.mark.slow  # trains two epochs of a small truncated ResNet (~15 s here)
def test_training_with_every_switch_on_runs_and_predict_scores_its_checkpoint(tmp_path, photos):  # noqa: F811
    from realfake.crops.views import view_record, write_view_record
    from realfake.predict import predict

    record = view_record("context", PARAMS)
    size = record["size"]
    write_packed(tmp_path / "packed", "train", 40, 40, size, seed=0)
    write_packed(tmp_path / "packed", "val", 20, 20, size, seed=1)
    write_view_record(tmp_path / "packed", record)
    crop = size - 16
    model_cfg = ModelConfig(arch="resnet", input="dwt_hh", head="patch", attention=False,
                            resnet=ResNetConfig("bottleneck", [8, 16], [1, 1], 8))
    cfg = TrainConfig(epochs=2, batch_size=16, min_epochs=2, threads=1, weight_decay=0.01, warmup_epochs=1.0,
                      label_smoothing=0.1, augment=ALL_ON_AUGMENT, sbi=SbiConfig(p=0.5),
                      patch=PatchConfig(size=crop, count=1, positions="center"))
    summary = train(TrainRun(model_cfg, cfg, size, PARAMS["faces"], PARAMS["resize"], "sample"), tmp_path / "packed",
                    tmp_path / "detector.pt", tmp_path / "live")
    pseudo = summary["data"]["train"]["pseudo_fakes"]["sbi"]
    assert 0 < pseudo < 2 * 40 and summary["data"]["val"]["fake"] == 20  # val keeps its own faces only
    assert all(math.isfinite(row["train_loss"]) for row in summary["history"])
    model, checkpoint = load_detector(tmp_path / "detector.pt")
    assert checkpoint["model_config"]["input"] == "dwt_hh" and checkpoint["model_config"]["arch"] == "resnet"
    assert checkpoint["preprocessing"]["patch"] == {"size": crop, "count": 1, "seed": 0, "positions": "center"}
    packed = np.load(tmp_path / "packed" / "val.npy")
    p = Scorer(tmp_path / "detector.pt")(packed[:8])  # what the evaluate stage calls
    assert p.shape == (8,) and np.all((p > 0) & (p < 1))
    table = predict([str(photos[n]) for n in ("gan", "ffhq", "lfw")], tmp_path / "detector.pt")
    assert table["p_fake"].notna().sum() >= 3, table
    card = render_model_card(summary, model_cfg, cfg)
    for words in ("- Truncated ResNet (SAFE", "Haar DWT diagonal (HH) band", "- Crop, never resize (SAFE)",
                  "- Patch logits", "- Label smoothing 0.1", "- Random rotation", "- Patch masking",
                  f"{pseudo:,} drawn over the run"):
        assert words in card, words
    plain = render_model_card(summary, ModelConfig(), TrainConfig())
    assert not any(w in plain for w in ("Truncated", "Haar", "Crop, never", "Patch logits", "Label smoothing",
                                        "Random rotation", "Patch masking", "pseudo-fakes"))
