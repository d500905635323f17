"""The detector: `model.arch: cnn` (a compact 5-stage CNN, below), `npr` (npr_net.py) or `resnet` (resnet_trunc.py,
SAFE's truncated ResNet), optional attention, an optional high-frequency input (`model.input`, highpass.py) and
patch-level logits (`model.head`, patch_head.py); its config.

Layout (S = input size, e.g. 128; widths default 16-32-64-96-128: 470 k parameters without attention,
485 k with CBAM or SE, 537 k with MHSA):

    stage 0..4:  conv3x3-BN-ReLU, conv3x3-BN-ReLU, [attention], maxpool 2x2 (no pool after stage 4)
                 (stage 0's first conv has stride `stem_stride`, default 2: S/2 .. S/32 overall)
    head:        global average pool, dropout, linear -> one logit (> 0 means "fake")

Where the attention sits, and why:

- `cbam` / `se` (channel [+ spatial] gates) follow the convolutions of the last three stages by default
  (S/8 .. S/32 with the default stride-2 stem). There the channels encode texture and artefact
  detectors that are worth re-weighting per image, while the first two stages are high-resolution
  edge filters where a gate costs the most time and has little to choose between.
- `mhsa` sits only after the last stage: attention cost grows with the square of the number of
  positions, and the last map is small (4x4 = 16 tokens at S=128 with the stride-2 stem, 8x8
  without). There it can relate distant face regions (both eyes, the hairline, the background),
  which 3x3 convolutions see only late.

The blocks are multiplicative gates or a residual branch with a small LayerScale, placed *between*
existing layers, so `attention: false` builds exactly the same network without them: same layer
names, same parameters, minus the `*.attn.*` ones.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from torch import nn

from realfake.core.errors import UserError
from realfake.detector.ensemble_net import Ensemble
from realfake.detector.highpass import INPUT_FILTERS, InputFilter, input_layer
from realfake.detector.layers import CBAM, ConvBnAct, SelfAttention2d, SqueezeExcite, init_classifier
from realfake.detector.npr_net import NprConfig, NPRDetector
from realfake.detector.patch_head import Head, head_output
from realfake.detector.resnet_trunc import ResNetConfig, TruncatedResNet

log = logging.getLogger(__name__)

# Keys added to the model config after checkpoints existed, with the value that means "as before": a checkpoint
# leaves them out when they hold it, so a run with every new switch off writes the same bytes as before.
LATER_KEYS = {"input": "rgb", "head": "pool", "members": 1, "member_inputs": None, "member_archs": None}
Arch = Literal["cnn", "npr", "resnet"]  # the type of params.yaml `model.arch`
ARCHS = ("cnn", "npr", "resnet")


@dataclass
class ModelConfig:
    """Architecture settings (params.yaml section `model`)."""

    # cnn: this module's network (widths, stem_stride) | npr: npr_net.py (npr) | resnet: resnet_trunc.py (resnet)
    arch: Arch = "cnn"
    attention: bool = True
    attention_type: Literal["cbam", "se", "mhsa"] = "cbam"
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 96, 128])
    attention_stages: list[int] | None = None  # None: last three stages for cbam/se, last stage for mhsa
    stem_stride: int = 2  # stride of the very first conv: 2 makes stage 0 four times cheaper (it dominates on CPU)
    rd_ratio: float = 0.25  # hidden width of the channel-gate MLPs, as a fraction of the channels
    mhsa_heads: int = 4
    dropout: float = 0.2
    npr: NprConfig = field(default_factory=NprConfig)
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    input: InputFilter = "rgb"  # rgb | dwt_hh: the Haar DWT's diagonal band, resized back (highpass.py)
    head: Head = "pool"  # pool: one logit from pooled features | patch: a logit per position in training (patch_head.py)
    members: int = 1  # K > 1: an ensemble of K networks from seeds train.seed..+K-1, logits averaged (ensemble.py)
    # with members 1 both lists are dropped (one network of `arch` and `input`)
    member_inputs: list[InputFilter] | None = None  # one `input` per member (e.g. [dwt_hh, rgb]); None: all `input`
    member_archs: list[Arch] | None = None  # one `arch` per member, the first `arch` (e.g. [cnn, npr]); None: all `arch`

    def __post_init__(self) -> None:
        if not 1 <= self.members <= 16:
            raise UserError(f"model.members must be an integer in 1..16, got {self.members!r}")
        if self.members == 1 and (self.member_inputs, self.member_archs) != (None, None):
            # one network: `arch` and `input`; said, so a forgotten `model.members` is not a silent surprise
            log.warning("model.members is 1: one %s network on %s; model.member_inputs/member_archs apply to "
                        "ensembles only", self.arch, self.input)
            self.member_inputs = self.member_archs = None
        if self.member_inputs is not None and (
                len(self.member_inputs) != self.members or any(i not in INPUT_FILTERS for i in self.member_inputs)):
            raise UserError(f"model.member_inputs must list one of {', '.join(INPUT_FILTERS)} per member "
                            f"(model.members {self.members}), got {self.member_inputs!r}")
        if self.member_archs is not None:
            if len(self.member_archs) != self.members or any(a not in ARCHS for a in self.member_archs):
                raise UserError(f"model.member_archs must list one of {', '.join(ARCHS)} per member "
                                f"(model.members {self.members}), got {self.member_archs!r}")
            if self.member_archs[0] != self.arch:  # else `-S model.arch=npr` would be silently overruled
                raise UserError(f"model.arch {self.arch} is not the first of model.member_archs {self.member_archs}: "
                                f"-S model.members=1 for one {self.arch} network, or set model.member_archs")
            for k in range(self.members):  # each member's own arch must accept the shared settings (attention_stages)
                self.member(k)
        if not 1 <= len(self.widths) <= 8 or any(w < 1 for w in self.widths):
            raise UserError(f"model.widths must list 1-8 positive channel counts, got {self.widths!r}")
        if self.stem_stride not in (1, 2):
            raise UserError(f"model.stem_stride must be 1 or 2, got {self.stem_stride!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout!r}")
        bad = [s for s in self.stages_with_attention() if not 0 <= s < self.num_stages()]
        if bad:
            raise UserError(f"model.attention_stages {bad} out of range 0..{self.num_stages() - 1} for arch {self.arch}")
        if self.attention and self.attention_type == "mhsa":
            widths = {s: self.stage_width(s) for s in self.stages_with_attention()}
            uneven = {s: w for s, w in widths.items() if self.mhsa_heads < 1 or w % self.mhsa_heads}
            if uneven:
                raise UserError(f"model.mhsa_heads {self.mhsa_heads} must divide the width of every stage with "
                                f"attention (stage: width {uneven})")

    def member(self, k: int) -> ModelConfig:
        """The config of ensemble member k: one network with its own `input` and `arch` (model.member_inputs,
        model.member_archs)."""
        own = self.member_inputs[k] if self.member_inputs is not None else self.input
        arch = self.member_archs[k] if self.member_archs is not None else self.arch
        return replace(self, members=1, member_inputs=None, member_archs=None, input=own, arch=arch)

    def stage_width(self, stage: int) -> int:
        """Channels leaving `stage` of the chosen architecture (what its attention block sees)."""
        if self.arch == "cnn":
            return self.widths[stage]
        return (self.npr if self.arch == "npr" else self.resnet).out_channels(stage)

    def num_stages(self) -> int:
        """Stages of the chosen architecture (where attention blocks can go)."""
        if self.arch == "cnn":
            return len(self.widths)
        return len((self.npr if self.arch == "npr" else self.resnet).widths)

    def stages_with_attention(self) -> list[int]:
        """Indices of the stages that get an attention block (empty when attention is off)."""
        if not self.attention:
            return []
        if self.attention_stages is not None:
            return sorted({int(s) for s in self.attention_stages})
        last = self.num_stages() - 1
        return [last] if self.attention_type == "mhsa" else list(range(max(0, last - 2), last + 1))


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain types (lists, not tuples), for checkpoints and JSON."""
    return dataclasses.asdict(config)


def model_record(cfg: ModelConfig) -> dict[str, Any]:
    """The model config as a checkpoint stores it: plain types, without the later keys (LATER_KEYS) at their
    "as before" value and without `resnet` unless a network is one (loading fills the defaults back in)."""
    record = config_to_dict(cfg)
    for key, value in LATER_KEYS.items():
        if record[key] == value:
            del record[key]
    if "resnet" not in (cfg.member_archs or [cfg.arch]):
        del record["resnet"]
    return record


def attention_block(cfg: ModelConfig, channels: int) -> nn.Module:
    """The attention block selected by `cfg.attention_type`, for a feature map with `channels` channels."""
    if cfg.attention_type == "cbam":
        return CBAM(channels, cfg.rd_ratio)
    if cfg.attention_type == "se":
        return SqueezeExcite(channels, cfg.rd_ratio)
    return SelfAttention2d(channels, cfg.mhsa_heads)


def build_stage(cfg: ModelConfig, index: int, in_channels: int) -> nn.Sequential:
    """One stage: two convolutions, the optional attention block, and a 2x2 max-pool (not after the last)."""
    out_channels = cfg.widths[index]
    layers: dict[str, nn.Module] = {
        "conv1": ConvBnAct(in_channels, out_channels, stride=cfg.stem_stride if index == 0 else 1),
        "conv2": ConvBnAct(out_channels, out_channels),
    }
    if index in cfg.stages_with_attention():
        layers["attn"] = attention_block(cfg, out_channels)
    if index < len(cfg.widths) - 1:
        layers["pool"] = nn.MaxPool2d(2)
    return nn.Sequential(OrderedDict(layers))  # named layers: same state_dict keys with or without attention


class Detector(nn.Module):
    """Real-vs-fake face classifier; `forward` returns one logit per image (> 0: fake)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        stages, in_channels = [], 3
        for index, width in enumerate(cfg.widths):
            stages.append(build_stage(cfg, index, in_channels))
            in_channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(in_channels, 1)
        self.front: nn.Module = nn.Identity()  # model.input (set by build_model; no parameters)
        self.patch_head = False  # model.head: patch (set by build_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init for convolutions (ReLU nets), zero bias for the classifier so it starts at p=0.5."""
        init_classifier(self, self.fc)

    def forward(self, x):
        return head_output(self.stages(self.front(x)), self.pool, self.dropout, self.fc, self.patch_head,
                           self.training)


def build_model(cfg: ModelConfig) -> nn.Module:
    """The detector for `cfg` (randomly initialised): the CNN, the NPR network or the truncated ResNet (`model.arch`),
    behind the `model.input` layer, with the `model.head` training output; K members (`model.members`): Ensemble."""
    if cfg.members > 1:
        return Ensemble([build_model(cfg.member(k)) for k in range(cfg.members)])
    attention = lambda channels: attention_block(cfg, channels)  # noqa: E731
    if cfg.arch == "npr":
        model: nn.Module = NPRDetector(cfg.npr, cfg.dropout, attention, cfg.stages_with_attention())
    elif cfg.arch == "resnet":
        model = TruncatedResNet(cfg.resnet, cfg.dropout, attention, cfg.stages_with_attention())
    else:
        model = Detector(cfg)
    model.front = input_layer(cfg.input)
    model.patch_head = cfg.head == "patch"
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def attention_parameters(model: nn.Module) -> int:
    """Number of parameters inside attention blocks (the `*.attn.*` modules)."""
    return sum(p.numel() for name, p in model.named_parameters() if ".attn." in f".{name}")
