"""What the checkpoint records about its input (`preprocessing`): built from the run and the data before the loop.

`realfake predict`, `evaluate` and `serve` read it back to cut, shape and score a new photo exactly as training
saw its faces: the normalisation, how faces were cut (params `faces`), how the crop became the training image
(`resize`), which view the arrays hold (`sample.view`) and, in patch mode, how images are scored.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from realfake.core.errors import UserError
from realfake.core.params import load_section
from realfake.core.training_image import ResizeConfig
from realfake.core.view_record import read_view_record
from realfake.detector.checkpoint import preprocessing_for
from realfake.detector.model import config_to_dict
from realfake.detector.packed import packed_view
from realfake.detector.patches import check_fits
from realfake.detector.run import TrainRun


def preprocessing_record(run: TrainRun, packed_dir: str | os.PathLike, size: int) -> dict[str, Any]:
    """The checkpoint's `preprocessing` for `run` on images of side `size`; refuses a patch or arch that cannot fit."""
    cfg = run.train
    preprocessing = preprocessing_for(size)
    if run.faces is not None:  # how faces were cut, so `realfake predict` crops new photos the same way
        preprocessing["faces"] = dict(run.faces)
    preprocessing["resize"] = resize_record(run.resize, size)  # and how the crop became the training image
    # which view the packed arrays hold (sample.view) and its params, so predict cuts new photos the same way
    preprocessing["view"] = (packed_view(packed_dir, size) if cfg.input == "packed"
                             else read_view_record(cfg.shards.location) or {"name": "aligned"})
    preprocessing["view"]["size"] = size
    check_fits(cfg.patch, size)
    model_side = cfg.patch.size if cfg.patch.enabled else size
    if run.model.arch == "npr" and model_side % 2:  # the residual works on 2x2 cells
        raise UserError(f"model.arch npr needs an even input side, got {model_side} px (resize.size or train.patch.size)")
    if cfg.patch.enabled:  # how images are scored: the evaluate stage and `realfake predict` read it from here
        preprocessing["patch"] = config_to_dict(cfg.patch)
        if cfg.patch.positions == "random":  # as before the centre crop existed: old checkpoints' bytes
            del preprocessing["patch"]["positions"]
    return preprocessing


def resize_record(resize_params: dict[str, Any] | None, size: int) -> dict[str, Any]:
    """How the packed images were shaped from the crops: params.yaml `resize` read as the resize stage reads it.

    None (a caller that packed its own arrays, as the tests do) means nothing was re-encoded.
    """
    section = {"reencode": "none"} if resize_params is None else dict(resize_params)
    return asdict(load_section(ResizeConfig, {"resize": {**section, "size": int(size)}}, "resize"))
