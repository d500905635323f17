"""The faces stage on Ray Data: one MTCNN per actor, the same batches and the same crop_batch as the local pool."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any

from realfake.core.device import resolve_device
from realfake.core.engine import ComputeConfig, cluster_has_gpu, ray_map, ray_session
from realfake.faces.batch import crop_batch, make_detector
from realfake.faces.config import FacesConfig


class FacesActor:
    """Picklable factory for ray_map: on the actor, load one MTCNN and return the per-batch function."""

    def __init__(self, cfg: FacesConfig):
        self.cfg = cfg

    def __call__(self) -> Callable[[list[tuple[int, str, str]]], list[tuple[int, dict[str, Any], bytes | None]]]:
        return functools.partial(crop_batch, cfg=self.cfg, detector=make_detector(self.cfg))


def ray_crop_batches(
    batches: list[list[tuple[int, str, str]]], cfg: FacesConfig, compute: ComputeConfig
) -> Iterator[list[tuple[int, dict[str, Any], bytes | None]]]:
    """crop_batch on every batch, on Ray actors; yields each batch's results as it finishes."""
    with ray_session(compute):
        # faces.device against the cluster's resources, not the driver's torch
        device = resolve_device(cfg.device, "faces.device", cluster_has_gpu(), "the Ray cluster").type
        actor_cfg = dataclasses.replace(cfg, device=device)
        gpus = compute.gpus_per_actor if device == "cuda" else 0.0
        actors = min(compute.actor_count(cfg.workers), len(batches))
        for _, result in ray_map(batches, FacesActor(actor_cfg), compute, actors, num_gpus=gpus):
            yield result
