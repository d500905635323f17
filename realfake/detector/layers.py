"""Small network blocks, each doing one thing (in the spirit of timm's `layers`).

All blocks keep the input shape (N, C, H, W), so an attention block can be dropped in or left out
without touching the rest of the network.
"""

from __future__ import annotations

import torch
from torch import nn


def _reduced(channels: int, rd_ratio: float, min_channels: int = 8) -> int:
    """Hidden width of a squeeze MLP: `channels * rd_ratio`, never below `min_channels`."""
    return max(min_channels, int(round(channels * rd_ratio)))


class ConvBnAct(nn.Module):
    """3x3 (or k x k) convolution, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2018): rescale channels by a gate computed from their global mean."""

    def __init__(self, channels: int, rd_ratio: float = 0.25):
        super().__init__()
        hidden = _reduced(channels, rd_ratio)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class ChannelAttention(nn.Module):
    """CBAM channel gate: a shared MLP over global average- and max-pooled descriptors."""

    def __init__(self, channels: int, rd_ratio: float = 0.25):
        super().__init__()
        hidden = _reduced(channels, rd_ratio)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * gate.sigmoid()


class SpatialAttention(nn.Module):
    """CBAM spatial gate: a k x k conv over the channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * self.bn(self.conv(pooled)).sigmoid()


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel gate, then spatial gate."""

    def __init__(self, channels: int, rd_ratio: float = 0.25, spatial_kernel: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, rd_ratio)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class SelfAttention2d(nn.Module):
    """Light multi-head self-attention over the positions of a (small) feature map, as a residual branch.

    A depthwise 3x3 conv adds position information (a "conditional positional encoding") so no
    size-specific embedding table is needed; `gamma` (LayerScale) starts small so the block begins
    close to the identity and does not disturb the convolutional features early in training.
    """

    def __init__(self, channels: int, num_heads: int = 4, layer_scale: float = 0.1):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.pos = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.mha = nn.MultiheadAttention(channels, num_heads, batch_first=True)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (N, H*W, C)
        normed = self.norm(tokens)
        attended, _ = self.mha(normed, normed, normed, need_weights=False)
        tokens = tokens + self.gamma * attended
        return tokens.transpose(1, 2).reshape(n, c, h, w)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 conv-BN, plus the input (1x1 conv-BN when the shape changes)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck block (He et al. 2016, torchvision's v1.5: stride on the 3x3): 1x1, 3x3, 1x1 (x4 wide)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        return self.act(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The identity, or a 1x1 conv-BN projection where the block changes channels or resolution."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


def init_classifier(net: nn.Module, fc: nn.Linear) -> None:
    """He init for convolutions (ReLU nets, as torchvision's ResNet), zero bias for the classifier so it starts at p=0.5."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    nn.init.normal_(fc.weight, std=0.01)
    nn.init.zeros_(fc.bias)
