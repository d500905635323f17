"""The NPR detector: the neighbouring-pixel residual (npr.py) into a small ResNet stem, pooled to one logit.

Tan et al. (CVPR 2024) use ResNet-50's conv1 (3x3, stride 2), max-pool, layer1 (3 bottlenecks) and layer2
(4 bottlenecks), ~1.44 M parameters, at 224 px on a GPU: `model.npr: {block: bottleneck, widths: [64, 128],
blocks: [3, 4]}` builds that network. The default is sized for 64-128 px inputs on 2 CPU cores: a 32-channel
stem, basic blocks, widths [32, 64], two blocks each: 169,825 parameters (172,585 with CBAM), a training step
~1.4x the CNN's at 64 px (benchmarks/bench_arch.py); at 64 px the stages run at 16x16 and 8x8. Widths
[64, 128] with a 64-channel stem: 0.68 M, ~2.5x. The stem keeps the paper's stride 2 and max-pool: the
residual lives in 2x2 cells, and a stride-2 conv sees every cell at the same phase.

Attention (`model.attention`, the CBAM / SE / MHSA blocks of layers.py) follows the blocks of the stages in
`model.attention_stages` (default: every stage for cbam/se, the last for mhsa), named `stages.<i>.attn` as in
the CNN, so `attention: false` is the same network minus those parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import nn

from realfake.core.errors import UserError
from realfake.detector.layers import BasicBlock, Bottleneck, init_classifier
from realfake.detector.npr import NeighbourResidual
from realfake.detector.patch_head import head_output

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclass
class NprConfig:
    """The ResNet stem behind the NPR input (params.yaml `model.npr`, used with `model.arch: npr`)."""

    block: Literal["basic", "bottleneck"] = "basic"
    widths: list[int] = field(default_factory=lambda: [32, 64])  # per stage (bottleneck output: 4x)
    blocks: list[int] = field(default_factory=lambda: [2, 2])  # residual blocks per stage
    stem_width: int = 32

    SECTION: ClassVar[str] = "model.npr"  # where the params live, for the messages

    def __post_init__(self) -> None:
        if not 1 <= len(self.widths) <= 4 or len(self.blocks) != len(self.widths):
            raise UserError(f"{self.SECTION}.widths and {self.SECTION}.blocks must list 1-4 stages each, got "
                            f"{self.widths!r} and {self.blocks!r}")
        if any(w < 1 for w in [*self.widths, self.stem_width]) or any(b < 1 for b in self.blocks):
            raise UserError(f"{self.SECTION} widths, blocks and stem_width must be positive")

    def out_channels(self, stage: int) -> int:
        """Channels leaving stage `stage`."""
        return self.widths[stage] * BLOCKS[self.block].expansion


class NPRDetector(nn.Module):
    """NPR residual, conv-BN-ReLU stem (stride 2) and max-pool, residual stages, global pool, one logit (> 0: fake)."""

    def __init__(self, cfg: NprConfig, dropout: float, attention: Callable[[int], nn.Module] | None = None,
                 attention_stages: list[int] | None = None):
        super().__init__()
        self.cfg = cfg
        self.residual = NeighbourResidual()
        self.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(3, cfg.stem_width, 3, 2, 1, bias=False), bn=nn.BatchNorm2d(cfg.stem_width),
            act=nn.ReLU(inplace=True), pool=nn.MaxPool2d(3, 2, 1)))
        block, in_channels, stages = BLOCKS[cfg.block], cfg.stem_width, []
        for index, (width, count) in enumerate(zip(cfg.widths, cfg.blocks, strict=True)):
            layers: dict[str, nn.Module] = {}
            for b in range(count):
                layers[f"block{b}"] = block(in_channels, width, stride=2 if index > 0 and b == 0 else 1)
                in_channels = width * block.expansion
            if attention is not None and index in (attention_stages or []):
                layers["attn"] = attention(in_channels)
            stages.append(nn.Sequential(OrderedDict(layers)))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, 1)
        self.front: nn.Module = nn.Identity()  # model.input (set by build_model; no parameters)
        self.patch_head = False  # model.head: patch (set by build_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init for convolutions (as torchvision's ResNet), zero bias for the classifier so it starts at p=0.5."""
        init_classifier(self, self.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature_map = self.stages(self.stem(self.residual(self.front(x))))
        return head_output(feature_map, self.pool, self.dropout, self.fc, self.patch_head, self.training)
