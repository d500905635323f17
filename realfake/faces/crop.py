"""The faces stage's engines: every batch through realfake.faces.batch.crop_batch, in a process pool or on Ray."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

from realfake.core.engine import ComputeConfig
from realfake.faces.batch import empty_record, make_detector, process_batch, write_crops
from realfake.faces.config import FacesConfig
from realfake.faces.worker_pool import orphan_safe_pool

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- the process pool

_WORKER: dict[str, Any] = {}


def _init_worker(cfg: FacesConfig) -> None:
    """Per-process setup: one MTCNN (make_detector)."""
    _WORKER["cfg"] = cfg
    _WORKER["detector"] = make_detector(cfg)


def _work(items: list[tuple], out_dir: str) -> list[tuple[int, dict[str, Any]]]:
    """Pool task: one batch through the worker's detector."""
    return process_batch(items, out_dir, _WORKER["cfg"], _WORKER["detector"])


def process_images(
    items: list[tuple[str, str]], out_dir: str | os.PathLike, cfg: FacesConfig, progress: bool = True,
    watermark_boxes: list[Any] | None = None, compute: ComputeConfig | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Run (image path, face_id) items through the pipeline; return records in input order and seconds taken.

    on_batch(n) is called as each batch of n images is done (benchmarks time the engines with it).
    """
    from realfake.core.progress import tqdm

    boxes = watermark_boxes or [None] * len(items)
    indexed = [(i, path, fid, box) for i, ((path, fid), box) in enumerate(zip(items, boxes, strict=True))]
    batches = [indexed[i:i + cfg.batch_size] for i in range(0, len(indexed), cfg.batch_size)]
    records: list[dict[str, Any] | None] = [None] * len(items)
    start = time.perf_counter()
    bar = tqdm(total=len(items), unit="img", disable=not progress or not items, desc="faces")

    def done(n: int) -> None:
        bar.update(n)
        if on_batch is not None:
            on_batch(n)

    if not batches:
        pass  # nothing to do: do not pay for loading torch and MTCNN
    elif compute is not None and compute.engine == "ray":
        from realfake.faces.crop_ray import ray_crop_batches

        for result in ray_crop_batches(batches, cfg, compute):
            _collect(write_crops(result, out_dir), records, done)
    elif cfg.workers == 1 or len(batches) <= 1:
        _init_worker(cfg)
        results = (_work(b, os.fspath(out_dir)) for b in batches)
        for result in results:
            _collect(result, records, done)
    else:
        from realfake.core.device import resolve_device

        resolve_device(cfg.device, "faces.device")  # a missing GPU is one clear line here, not an error in every worker
        # forkserver: children never inherit a parent that may already have run torch ops (fork + OpenMP
        # can deadlock), yet torch is imported once in the server and not once per worker as with spawn
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "facenet_pytorch", "realfake.faces.crop"])
        # the workers exit with this process, even when it is killed (a plain pool's workers outlive it)
        with orphan_safe_pool(cfg.workers, ctx, initializer=_init_worker, initargs=(cfg,)) as pool:
            for result in pool.map(_work, batches, [os.fspath(out_dir)] * len(batches)):
                _collect(result, records, done)
    bar.close()
    return [r if r is not None else {**empty_record(), "reason": "lost"} for r in records], time.perf_counter() - start


def _collect(result: list[tuple[int, dict[str, Any]]], records: list, done: Callable[[int], None]) -> None:
    """Store a batch's records at their input positions."""
    for index, rec in result:
        records[index] = rec
    done(len(result))
