"""Patch masking (`train.augment.mask_p`, `mask_ratio`, `mask_patch`): SAFE's `RandomMask`, batched.

SAFE (Li et al., KDD 2025, data/datasets.py) zeroes a random share of each training image, drawn from
U[0, 0.75], in whole 16 px patches on the image's 16 px grid (p 0.5 per image): the detector cannot rest on one
region (the eyes, the hairline, a background) and must find the artefact wherever part of it survives. As SAFE:
the number of patches is int(H * W * ratio / patch^2), capped at the number of whole grid cells, drawn without
replacement; a cell is zeroed over all channels. Zero is black in 0-1 pixel space (the model input's -1).
"""

from __future__ import annotations

import torch


def grid_cells(h: int, w: int, patch: int) -> tuple[int, int]:
    """Whole patch cells on the grid (rows, columns) of an h x w image."""
    return h // patch, w // patch


def patch_count(h: int, w: int, patch: int, ratio: float) -> int:
    """How many patches zero about `ratio` of the image (SAFE's rule, capped at the grid's cells)."""
    rows, cols = grid_cells(h, w, patch)
    return min(rows * cols, int(h * w * ratio / patch**2))


def random_mask(x: torch.Tensor, ratio: tuple[float, float] | list[float], patch: int,
                gen: torch.Generator) -> torch.Tensor:
    """Zero a share drawn from U[ratio] of each image of (N, C, H, W) in whole `patch` x `patch` grid cells."""
    n, _, h, w = x.shape
    rows, cols = grid_cells(h, w, patch)
    shares = ratio[0] + (ratio[1] - ratio[0]) * torch.rand(n, generator=gen)
    keep = torch.ones(n, rows * cols, dtype=x.dtype)
    for i, share in enumerate(shares.tolist()):
        k = patch_count(h, w, patch, share)
        if k:
            keep[i, torch.randperm(rows * cols, generator=gen)[:k]] = 0
    grid = keep.view(n, 1, rows, cols).repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    mask = torch.ones(n, 1, h, w, dtype=x.dtype)
    mask[:, :, : rows * patch, : cols * patch] = grid
    return x * mask
