"""Which torch device a stage runs on (`auto | cpu | cuda`), and its mixed-precision setting.

`auto` picks CUDA when `torch.cuda.is_available()`, else the CPU. The CPU path is never changed by these
settings: no autocast, no GradScaler, float32 throughout, so CPU results equal those of earlier releases.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from realfake.core.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("bf16", "fp16", "off")


def resolve_device(name: str, param: str = "device", has_cuda: bool | None = None,
                   where: str | None = None) -> torch.device:
    """`auto | cpu | cuda` (or `cuda:N`) to a torch.device; asking for CUDA without one is a UserError.

    The one device rule of every stage. `has_cuda` and `where` name another place to look for a GPU than this
    process's torch (the faces stage on Ray asks the cluster: the driver may have no GPU while the cluster does).
    """
    name = str(name).strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICES or (":" in name and (kind != "cuda" or not name.split(":", 1)[1].isdigit())):
        raise UserError(f"{param} must be one of {DEVICES} (or cuda:N), got {name!r}")
    if has_cuda is None:
        has_cuda = torch.cuda.is_available()
    if kind == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    if kind == "cuda" and not has_cuda:
        if where is not None:
            raise UserError(f"{param}={name} but {where} offers no GPU: use {param}=auto or cpu")
        raise UserError(f"{param}={name} but torch sees no CUDA device here (torch {torch.__version__}, "
                        f"built for CUDA {torch.version.cuda or 'none'}): use {param}=auto or cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: float32) and whether the loss needs a GradScaler (fp16 only)."""

    dtype: torch.dtype | None = None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """torch.autocast on CUDA with this dtype; a no-op context for fp32 (and always on the CPU)."""
        if self.dtype is None or device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)


def resolve_precision(mode: str, device: torch.device, param: str = "amp") -> Precision:
    """`bf16 | fp16 | off` to a Precision; CPU runs are always fp32, and bf16 falls back to fp16 on old GPUs."""
    if mode not in AMP_MODES:
        raise UserError(f"{param} must be one of {AMP_MODES}, got {mode!r}")
    if device.type != "cuda" or mode == "off":
        return Precision(None)
    if mode == "bf16" and not torch.cuda.is_bf16_supported():
        return Precision(torch.float16)  # pre-Ampere GPUs: fp16 with a GradScaler instead
    return Precision(torch.bfloat16 if mode == "bf16" else torch.float16)
