"""The SAFE-sized truncated ResNet (`model.arch: resnet`): ResNet-50 cut after layer2, from scratch.

SAFE (Li et al., KDD 2025; repo Ouxiang-Li/SAFE, models/resnet.py) keeps ResNet-50's stem with a 3x3 stride-2
first convolution (instead of 7x7), the max-pool, layer1 (3 bottlenecks, width 64 -> 256 channels) and layer2
(4 bottlenecks, width 128 -> 512 channels), then global pooling and one linear layer: 1.44 M parameters, no
pretrained weights. Cutting the network after layer2 keeps receptive fields small (local artefacts, as Chai et
al. 2020 argue) and the model cheap. `model.resnet` defaults to exactly that network (1,437,761 parameters with
one logit and `model.attention: false`; the default CBAM blocks add 164 k); smaller widths or basic blocks make it cheaper on 2 CPU cores.

It is the NPR network (npr_net.py) without the NPR residual: the same stem, stages, attention slots, pooling and
classifier, so the two share code and `model.attention` works the same way. Its input is the RGB image or the
high-frequency band (`model.input: dwt_hh`, highpass.py), as SAFE uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from torch import nn

from realfake.detector.npr_net import NprConfig, NPRDetector


@dataclass
class ResNetConfig(NprConfig):
    """The truncated ResNet (params.yaml `model.resnet`, used with `model.arch: resnet`): NprConfig's shape, SAFE's size."""

    SECTION: ClassVar[str] = "model.resnet"
    block: Literal["basic", "bottleneck"] = "bottleneck"
    widths: list[int] = field(default_factory=lambda: [64, 128])  # per stage (bottleneck output: 4x)
    blocks: list[int] = field(default_factory=lambda: [3, 4])  # residual blocks per stage
    stem_width: int = 64


class TruncatedResNet(NPRDetector):
    """Conv-BN-ReLU stem (3x3, stride 2), max-pool, residual stages, global pool, one logit (> 0: fake)."""

    def __init__(self, cfg: ResNetConfig, dropout: float, attention: Callable[[int], nn.Module] | None = None,
                 attention_stages: list[int] | None = None):
        super().__init__(cfg, dropout, attention, attention_stages)  # type: ignore[arg-type]  # same fields
        self.residual = nn.Identity()  # no NPR residual: the input goes straight into the stem
