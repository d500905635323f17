"""The attribute network: a plain conv trunk with one linear head per attribute, and its input scaling."""

from __future__ import annotations

import numpy as np

from realfake.attributes.config import AttributesConfig


def build_attribute_net(cfg: AttributesConfig):
    """A plain conv net (conv-BN-ReLU-pool stages, global average pool) with one linear head per attribute."""
    import torch.nn as nn

    class AttributeNet(nn.Module):
        """Shared trunk, three classification heads."""

        def __init__(self):
            super().__init__()
            layers, c_in = [], 3
            for w in cfg.widths:
                for _ in range(cfg.convs_per_stage):
                    layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                    c_in = w
                layers.append(nn.MaxPool2d(2))
            self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout))
            self.heads = nn.ModuleDict({h: nn.Linear(c_in, len(c)) for h, c in cfg.classes().items()})

        def forward(self, x):
            z = self.trunk(x)
            return {h: head(z) for h, head in self.heads.items()}

    return AttributeNet()


def to_tensor(images: np.ndarray):
    """uint8 (N, H, W, 3) to normalised float (N, 3, H, W)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (x / 255.0 - 0.5) / 0.25
