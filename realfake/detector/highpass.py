"""High-frequency input (`model.input: dwt_hh`): the diagonal detail band of a one-level Haar DWT, back at full size.

SAFE (Li et al., KDD 2025, "Improving Synthetic Image Detection Towards Generalization: An Image Transformation
Perspective") feeds its truncated ResNet the HH (diagonal high-frequency) sub-band of a one-level 2-D DWT of the
RGB image instead of the image itself: generator up-sampling leaves its traces in the highest frequencies, and
the low bands (colour, shape, lighting: what the reals and fakes of one data set differ in by accident) are
dropped before the network sees them. SAFE uses pytorch_wavelets with `bior1.3`; this is the Haar wavelet
(= `bior1.1`), pure torch and exact on 2x2 cells, so no extra package:

    HH[i, j] = (a - b - c + d) / 2     for the cell [[a, b], [c, d]] at rows 2i, 2i+1 and columns 2j, 2j+1

(pywt.dwt2(x, "haar")'s diagonal detail, up to its sign convention). As in SAFE the band (H/2 x W/2) is resized
back to the input's H x W (bilinear), so the network's shape and cost are those of the RGB input. The band of a
constant image (or of any image constant on each 2x2 cell) is exactly 0. An odd height or width drops its last
row or column before the transform.

`model.input` is part of the model's config, so the checkpoint records it and `realfake predict` / evaluate
apply the same filter. The layer has no parameters: `rgb` (nn.Identity) and `dwt_hh` share the state_dict.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

InputFilter = Literal["rgb", "dwt_hh"]  # the type of params.yaml `model.input`
INPUT_FILTERS: tuple[str, ...] = get_args(InputFilter)


def haar_hh(x: torch.Tensor) -> torch.Tensor:
    """The diagonal (HH) band of a one-level Haar DWT of each channel of (N, C, H, W): (N, C, H // 2, W // 2)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a - b - c + d) * 0.5


def dwt_hh_input(x: torch.Tensor) -> torch.Tensor:
    """SAFE's input: the Haar HH band of x, resized back to x's height and width (bilinear)."""
    band = haar_hh(x)
    return F.interpolate(band, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)


class DwtHighPass(nn.Module):
    """`model.input: dwt_hh` as a layer (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dwt_hh_input(x)


def input_layer(name: InputFilter) -> nn.Module:
    """The model's first layer for `model.input`: nn.Identity (rgb) or DwtHighPass (dwt_hh)."""
    return DwtHighPass() if name == "dwt_hh" else nn.Identity()
