"""The ray engine against the local one on the embedded sample (a real local Ray), and its failure modes."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from realfake.core.engine import ComputeConfig, ray_session
from realfake.core.errors import UserError
from realfake.core.params import load_params, load_section
from realfake.core.training_image import ResizeConfig
from realfake.dedupe.pipeline import hash_faces
from realfake.faces.batch import face_id
from realfake.faces.config import FacesConfig
from realfake.faces.crop import process_images
from realfake.faces.stage import run_source
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.sources import load_source
from realfake.metadata.build import measure_faces
from realfake.resize.images import run_resize

REPO = Path(__file__).resolve().parents[1]
LOCAL = ComputeConfig(engine="local")
RAY = ComputeConfig(engine="ray", actors=2)
# timing and engine columns differ by design; everything else must be equal
RUN_METRICS = {"seconds", "images_per_s", "engine"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sample_raw(tmp_path_factory) -> Path:
    """data/raw for every source of the embedded sample, through the download stage's code."""
    root = tmp_path_factory.mktemp("sample") / "data" / "raw"
    params = load_params(REPO / "params.yaml")
    params["data"]["profile"] = "sample"
    cfg = load_section(DownloadConfig, params, "download")
    for name in params["sources"]:
        source = load_source(params, name)
        if source.enabled:  # the embedded sample's archives are relative to the repository
            parts = tuple(dataclasses.replace(p, uri=os.fspath(REPO / p.uri)) for p in source.parts)
            source = dataclasses.replace(source, parts=parts)
        run_download(source, cfg, root, root.parent / "metrics" / f"{name}.json")
    return root


@pytest.fixture(scope="module")
def ray_running():
    """One private Ray for the module: the engine's sessions reuse it instead of starting one per call."""
    with ray_session(RAY):
        yield


def sample_items(raw: Path) -> list[tuple[str, str]]:
    """(image path, face_id) for every image of the sample, all sources."""
    items = []
    for table in sorted(raw.glob("*.parquet")):
        for rel in pd.read_parquet(table, columns=["path"])["path"]:
            items.append((os.fspath(raw / table.stem / rel), face_id(table.stem, rel)))
    return items


def bad_items(root: Path) -> list[tuple[str, str]]:
    """Files that must be rejected with other reasons than the sample's: empty, truncated, not an image, no face."""
    root.mkdir()
    sky = Image.fromarray(np.tile(np.linspace(60, 220, 160, dtype=np.uint8)[:, None, None], (1, 200, 3)))
    buf = io.BytesIO()
    sky.save(buf, format="JPEG", quality=90)
    files = {"empty.jpg": b"", "truncated.jpg": buf.getvalue()[:300], "text.jpg": b"not an image\n" * 20,
             "sky.jpg": buf.getvalue()}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return [(os.fspath(root / name), face_id("bad", name)) for name in files]


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under root."""
    return {os.fspath(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_compute_params_are_checked():
    assert load_section(ComputeConfig, {}, "compute") == LOCAL
    with pytest.raises(UserError, match="compute.engine"):
        load_section(ComputeConfig, {"compute": {"engine": "spark"}}, "compute")
    with pytest.raises(UserError, match="unknown key 'workers'"):
        load_section(ComputeConfig, {"compute": {"workers": 2}}, "compute")
    with pytest.raises(UserError, match="cpus_per_actor"):
        load_section(ComputeConfig, {"compute": {"cpus_per_actor": 0}}, "compute")
    assert load_section(ComputeConfig, {"compute": {"address": " auto "}}, "compute").address == "auto"
    with pytest.raises(UserError, match="faces.device"):
        load_section(FacesConfig, {"faces": {"device": "tpu"}}, "faces")


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "not-an-address"])
def test_a_cluster_that_is_not_there_is_one_line_and_nothing_written(tmp_path, sample_raw, address):
    """The faces stage with compute.address pointing nowhere: exit 2, one clear line, no outputs, no temp dirs."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["compute"].update(engine="ray", address=address.format(port=free_port()))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(sample_raw, tmp_path / "data" / "raw", ignore=shutil.ignore_patterns("metrics"))
    before = set(tmp_path.rglob("*"))
    proc = subprocess.run([sys.executable, os.fspath(REPO / "stages" / "faces.py"), "--source", "ffhq-1024"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "compute.address" in errors[0], proc.stderr
    assert set(tmp_path.rglob("*")) == before  # no crops, no parquet, no metrics, no half-built temp dir


@pytest.mark.slow
def test_ray_and_local_engines_give_the_same_dataset(tmp_path, sample_raw, ray_running):
    """Every sample image: same keep/reject decisions, reasons and columns, byte-identical crops; then the
    same resized images, hashes and measures from those crops."""
    items = sample_items(sample_raw) + bad_items(tmp_path / "bad")
    assert len(items) > 300
    cfg = load_section(FacesConfig, load_params(REPO / "params.yaml"), "faces")
    local, _ = process_images(items, tmp_path / "local", cfg, progress=False, compute=LOCAL)
    ray, _ = process_images(items, tmp_path / "ray", cfg, progress=False, compute=RAY)
    kept = sum(r["status"] == "kept" for r in local)
    assert 0 < kept < len(items)  # the sample has rejections to compare, with several reasons
    assert {"empty_file", "truncated", "not_an_image", "no_face"} < {r["reason"] for r in local}
    assert pd.DataFrame(ray).equals(pd.DataFrame(local))
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    assert len(tree(tmp_path / "local")) == kept

    crops = [tmp_path / "local" / r["crop_path"] for r in local if r["status"] == "kept"]
    assert measure_faces(crops, progress=False, compute=RAY).equals(measure_faces(crops, progress=False, compute=LOCAL))
    faces = pd.DataFrame({"source": ["local"] * len(crops), "crop_path": [p.name for p in crops]})
    assert hash_faces(faces, tmp_path, compute=RAY).equals(hash_faces(faces, tmp_path, compute=LOCAL))


@pytest.mark.slow
def test_the_stages_write_the_same_outputs_on_either_engine(tmp_path, sample_raw, ray_running):
    """run_source and run_resize for one source: identical parquet bytes, crops and resized images."""
    out = {}
    for compute in (LOCAL, RAY):
        root = tmp_path / compute.engine
        faces = run_source("utkface", FacesConfig(), sample_raw, root / "faces", root / "metrics/faces",
                           root / "plots", progress=False, compute=compute)
        resize = run_resize("utkface", ResizeConfig(reencode="jpeg"), root / "faces", root / "resized",
                            root / "metrics/resize", progress=False, compute=compute)
        assert faces["engine"] == resize["engine"] == compute.engine
        out[compute.engine] = {
            "crops": tree(root / "faces"), "resized": tree(root / "resized"), "sheet": tree(root / "plots"),
            "faces": {k: v for k, v in faces.items() if k not in RUN_METRICS},
            "resize": {k: v for k, v in resize.items() if k not in RUN_METRICS},
        }
    assert out["ray"] == out["local"]
    assert len(out["local"]["resized"]) == out["local"]["resize"]["kept"] > 0


@pytest.fixture
def ray_cluster(tmp_path_factory):
    """A real Ray cluster (`ray start --head --block`) on 127.0.0.1; stopped by its PID, never `ray stop`
    (that kills every Ray on the machine)."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rf-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [os.fspath(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
           "--num-cpus=2", "--object-store-memory=200000000", f"--temp-dir={temp_dir}", "--include-dashboard=false",
           "--node-ip-address=127.0.0.1"]
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    with log.open("wb") as out:
        head = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text(errors="replace"):
            assert head.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_a_stage_joins_a_running_cluster_and_writes_the_same_outputs(tmp_path, sample_raw, ray_cluster):
    """stages/resize.py with compute.address: it joins the cluster (this package shipped to it), the actors work
    in the stage's directory, and the outputs equal the local engine's."""
    run_source("ffhq-1024", FacesConfig(), sample_raw, tmp_path / "data/faces", tmp_path / "metrics/faces",
               tmp_path / "plots", progress=False, compute=LOCAL)
    local = run_resize("ffhq-1024", ResizeConfig(reencode="jpeg"), tmp_path / "data/faces", tmp_path / "local",
                       tmp_path / "metrics/local", progress=False, compute=LOCAL)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["compute"].update(engine="ray", address=ray_cluster)
    params["resize"].update(reencode="jpeg")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, os.fspath(REPO / "stages" / "resize.py"), "--source", "ffhq-1024",
                           "--size", str(ResizeConfig().size)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"the Ray cluster at {ray_cluster}" in proc.stderr
    metrics = json.loads((tmp_path / "metrics/resize/ffhq-1024.json").read_text())  # the headline
    details = json.loads((tmp_path / "reports/resize/ffhq-1024.json").read_text())
    assert details["engine"] == "ray" and metrics["kept"] == local["kept"] > 0
    assert tree(tmp_path / "data/resized") == tree(tmp_path / "local")


@pytest.mark.gpu
def test_faces_on_cuda_keep_what_the_cpu_keeps(tmp_path, sample_raw):
    """Where a GPU exists: faces.device=cuda on the local engine and auto on Ray (the cluster offers the GPU) give
    the CPU's keep/reject decisions (CUDA kernels differ from the CPU's, so not the same bytes)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    items = sample_items(sample_raw)[::4]
    base = load_section(FacesConfig, load_params(REPO / "params.yaml"), "faces")
    runs = {
        "cpu": (dataclasses.replace(base, device="cpu", workers=1), LOCAL),
        "cuda": (dataclasses.replace(base, device="cuda", workers=1), LOCAL),
        "ray_auto": (dataclasses.replace(base, device="auto"), dataclasses.replace(RAY, actors=1)),
    }
    decisions = {}
    for name, (cfg, compute) in runs.items():
        records, _ = process_images(items, tmp_path / name, cfg, progress=False, compute=compute)
        decisions[name] = [r["status"] for r in records]
    for name in ("cuda", "ray_auto"):
        same = np.mean([a == b for a, b in zip(decisions[name], decisions["cpu"], strict=True)])
        assert same >= 0.97, (name, same)
