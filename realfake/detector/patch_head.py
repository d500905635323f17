"""Patch-level logits (`model.head: patch`; Chai et al., ECCV 2020, "What makes fake images detectable?").

Chai et al. classify every position of a truncated network's last feature map (each sees only a small receptive
field, a patch of the face) and average the patch predictions into the image's score: local artefacts count
wherever they are, and the network cannot lean on the global face. Here the classifier is the model's own
linear layer `fc` applied at every position of the last map (N, C, h, w): training puts the image's label on
each of the h*w patch logits (the loss is the mean over patches); at test time the image logit is the mean of
the patch logits. Because `fc` is linear, that mean equals `fc` of the pooled features, the model's usual output,
so a patch-head checkpoint scores with the ordinary forward pass and has the same parameters as `head: pool`:
the switch changes what training optimises, not the network. Pair it with a truncated network
(`model.arch: resnet`) whose positions see patches rather than the whole face.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Head = Literal["pool", "patch"]  # the type of params.yaml `model.head`


def patch_logits(feature_map: torch.Tensor, dropout: nn.Module, fc: nn.Linear) -> torch.Tensor:
    """(N, h*w) logits: the linear classifier `fc` at every position of an (N, C, h, w) feature map."""
    return fc(dropout(feature_map.permute(0, 2, 3, 1))).flatten(1)


def image_logit(patch_logit_map: torch.Tensor) -> torch.Tensor:
    """One logit per image from (N, P) patch logits: their mean (= fc of the pooled features)."""
    return patch_logit_map.mean(dim=1)


def head_output(feature_map: torch.Tensor, pool: nn.Module, dropout: nn.Module, fc: nn.Linear,
                patch: bool, training: bool) -> torch.Tensor:
    """The model's output: (N,) image logits, or (N, h*w) patch logits while training a patch head."""
    if patch and training:
        return patch_logits(feature_map, dropout, fc)
    return fc(dropout(pool(feature_map).flatten(1))).squeeze(1)
