"""Where the per-image stages run: `local` (this machine's processes/threads) or `ray` (Ray Data on a Ray cluster).

Both engines call the same per-batch functions (faces.batch.crop_batch, faces.resize.resize_batch,
dedupe.hashing.hash_files, attributes.face_measures.measure_batch) on the same batches, so their results are
identical by construction; only where a batch runs differs. Ray actors never write the stage's outputs: they
return the bytes, and the driver writes them into the stage's atomic output directory, so an interrupted run
leaves nothing behind and the outputs are where DVC expects them. The actors read the inputs themselves, in
the driver's working directory: on a multi-node cluster the repository must be on a filesystem mounted at
the same path on every node.

Caveat (ray-project/ray#44687): actors that reserve whole CPUs can leave Ray Data's own tasks without one
and hang on a small machine; actors here reserve `cpus_per_actor` (0.5 by default).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from realfake.core.errors import UserError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
T = TypeVar("T")
R = TypeVar("R")
CONNECT_TIMEOUT_S = 5.0  # a cluster that does not accept a TCP connection in this time is not there


@dataclass
class ComputeConfig:
    """Params of the per-image engines (params.yaml section `compute`; read with core.params.load_section)."""

    engine: Literal["local", "ray"] = "local"
    address: str = ""  # ray: "" starts a private Ray on this machine; "auto", "host:6379" or "ray://host:10001" joins one
    actors: int | None = None  # ray: actors per stage; None = the stage's own `workers`
    cpus_per_actor: float = 0.5  # fractional on purpose (module doc)
    gpus_per_actor: float = 0.5  # only for stages that run on CUDA (faces.device): two MTCNNs share a GPU
    object_store_mb: int = 500  # private Ray only: its shared-memory object store
    temp_dir: str = "/tmp/ray"  # private Ray only: sessions and logs (short: Ray's socket paths must fit 107 bytes)
    retries: int = 0  # ray: restart a crashed actor and retry its batch this often (0: a crash fails the stage)

    def __post_init__(self) -> None:
        self.address = str(self.address or "").strip()

    def validate(self) -> None:
        """Raise UserError on values that cannot work."""
        if self.engine not in ENGINES:
            raise UserError(f"compute.engine must be one of {list(ENGINES)}, got {self.engine!r}")
        checks = {
            "actors": self.actors is None or (isinstance(self.actors, int) and self.actors >= 1),
            "cpus_per_actor": 0 < self.cpus_per_actor <= 64,
            "gpus_per_actor": 0 < self.gpus_per_actor <= 8,
            "object_store_mb": isinstance(self.object_store_mb, int) and self.object_store_mb >= 100,
            "retries": isinstance(self.retries, int) and self.retries >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"compute: invalid value for {bad}: {[getattr(self, b) for b in bad]}")

    def actor_count(self, workers: int) -> int:
        """Actors for a stage whose own params ask for `workers`."""
        return self.actors or max(1, workers)


# ---------------------------------------------------------------- both engines

def imap_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], compute: ComputeConfig, workers: int,
                chunk: int) -> Iterator[tuple[int, list[R]]]:
    """fn over chunks of items on the configured engine; yields (offset of the chunk, its results) as they finish.

    local: in this process (workers 1) or on a thread pool (for work that releases the GIL: PIL, OpenCV).
    """
    chunks = [list(items[i:i + chunk]) for i in range(0, len(items), chunk)]
    if not chunks:
        return
    if compute.engine == "ray":
        with ray_session(compute):
            actors = min(compute.actor_count(workers), len(chunks))
            for k, result in ray_map(chunks, StatelessWorker(fn), compute, actors):
                yield k * chunk, result
    elif workers <= 1:
        for k, part in enumerate(chunks):
            yield k * chunk, fn(part)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for k, result in enumerate(pool.map(fn, chunks)):
                yield k * chunk, result


def map_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], compute: ComputeConfig, workers: int,
               chunk: int, progress: Callable[[int], None] | None = None) -> list[R]:
    """imap_chunks, collected: the results in input order."""
    out: list[R | None] = [None] * len(items)
    for offset, result in imap_chunks(fn, items, compute, workers, chunk):
        out[offset:offset + len(result)] = result
        if progress:
            progress(len(result))
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------- ray

class StatelessWorker:
    """A picklable factory for ray_map that needs no per-actor state: each batch is fn(batch)."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def __call__(self) -> Callable[[Any], Any]:
        return self.fn


class _BatchActor:
    """The Ray Data callable class: one per actor, built once (an MTCNN per actor), called once per batch.

    It works in the driver's directory, so the stages' relative paths (data/raw/..., and error messages that
    quote them) are the same as on the local engine; on a multi-node cluster that directory must exist at
    the same path on every node (a shared filesystem).
    """

    def __init__(self, factory: Callable[[], Callable[[Any], Any]], cwd: str):
        if not os.path.isdir(cwd):
            raise RuntimeError(f"the driver's directory {cwd} does not exist on this Ray node: the inputs must be "
                               "on a filesystem mounted at the same path on every node")
        os.chdir(cwd)
        self.fn = factory()

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = [pickle.dumps(self.fn(pickle.loads(p)), protocol=5) for p in rows["payload"]]
        return {"k": rows["k"], "result": np.array(results, dtype=object)}


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """One clear line, fast, when no Ray cluster answers at a `host:port` (GCS) or `ray://host:port` address.

    Without this, ray.init retries for 20-60 s and prints a C++ warning a second before failing.
    """
    target = address.removeprefix("ray://")
    if address == "auto" or "://" in target:
        return  # "auto" is resolved by Ray itself; other schemes are Ray's to judge
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"compute.address {address!r}: expected host:port, ray://host:port or auto")
    hint = "start one (`ray start --head`) or leave compute.address empty for a private local Ray"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"compute.address {address!r}: no Ray cluster answers there ({reason}); {hint}") from None
    if address.startswith("ray://"):
        return  # Ray Client speaks its own protocol; ray.init judges it
    try:
        from ray._raylet import GcsClient  # private API: skip the probe if a Ray release moves it
    except ImportError:
        return
    try:
        with _stderr_silenced():  # the C++ client logs its own warning line before raising
            GcsClient(address=target)
    except Exception as exc:  # any failure means there is no usable GCS there
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"compute.address {address!r}: something listens there but it is not a Ray cluster "
                        f"({first}); {hint}") from None


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a moment (C++ libraries write there directly)."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _quiet_ray_logs() -> None:
    """Keep the terminal readable: Ray Data's execution chatter stays in its session logs."""
    for name in ("ray", "ray.data", "ray.data._internal.progress", "ray.data._internal.execution"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


@contextmanager
def ray_session(compute: ComputeConfig) -> Iterator[None]:
    """Start a private Ray (address empty) or join a cluster; shut down what we started or joined.

    Reuses a Ray that this process already runs (benchmarks, tests) and leaves it running.
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise UserError("compute.engine is ray but the `ray` package is not installed (pip install 'ray[data]')") from exc
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline machines: no usage-stats upload attempt
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
    if compute.address:
        check_reachable(compute.address)
        # ship this package so the cluster runs exactly the driver's per-image code
        kwargs["runtime_env"] = {"py_modules": [os.fspath(Path(__file__).resolve().parent)]}
        address, where = compute.address, f"the Ray cluster at {compute.address}"
    else:
        temp_dir = Path(compute.temp_dir).resolve()
        temp_dir.mkdir(parents=True, exist_ok=True)
        kwargs.update(object_store_memory=compute.object_store_mb * 2**20, _temp_dir=os.fspath(temp_dir))
        address, where = "local", "a private local Ray"  # "local": never join a cluster found by chance
    log.info("compute: starting %s", where)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        ray.shutdown()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UserError(f"compute: could not start or join Ray ({where}): {first}") from None
    _quiet_ray_logs()
    try:
        yield
    finally:
        ray.shutdown()


def ray_map(batches: Sequence[Any], factory: Callable[[], Callable[[Any], Any]], compute: ComputeConfig,
            actors: int, num_gpus: float = 0.0) -> Iterator[tuple[int, Any]]:
    """Run each batch through one call of a per-actor worker (built by `factory`) with Ray Data's map_batches.

    Yields (batch index, result) as batches finish, in any order. Ray must be running (ray_session).
    """
    import ray
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the stage draws one tqdm bar over the results
    rows = [{"k": k, "payload": pickle.dumps(b, protocol=5)} for k, b in enumerate(batches)]
    # one block per batch (up to a cap) so actors take work batch by batch and none sits on a long queue
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 4096)))
    remote_args: dict[str, Any] = {"max_restarts": compute.retries}
    if compute.retries:
        remote_args["max_task_retries"] = compute.retries
    with warnings.catch_warnings():
        # Ray 2.60 flags actor options passed as keywords as deprecated but offers no other way to set them
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*", category=DeprecationWarning)
        out = ds.map_batches(
            _BatchActor, fn_constructor_args=(factory, os.getcwd()), batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=compute.cpus_per_actor,
            num_gpus=num_gpus or None, **remote_args,
        )
    try:
        with warnings.catch_warnings():
            # Ray Data's own context copies trip its deprecated-field warnings: not ours to act on
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data")
            for row in out.iter_rows():
                yield int(row["k"]), pickle.loads(row["result"])
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise RuntimeError(f"ray engine: a batch failed: {first}") from exc


def engine_session(compute: ComputeConfig | None, needed: bool = True) -> AbstractContextManager[None]:
    """ray_session for the ray engine when there is work, else nothing: a stage enters it before it creates any
    output, so a cluster that is not there costs one line and leaves nothing behind."""
    if compute is not None and compute.engine == "ray" and needed:
        return ray_session(compute)
    return nullcontext()


def cluster_has_gpu() -> bool:
    """Whether the running Ray cluster offers at least one GPU."""
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0
