"""SIGKILL of a stage: its workers die with it, its temps are swept on the next run, DVC never sees them."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from repo_helpers import GIT_IDENTITY

from realfake.ingest.download import RAW_SCHEMA

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- processes, read from /proc

def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def descendants(root: int) -> list[int]:
    """Every live process below `root`."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = parent_of(int(entry.name))
            if ppid is not None:
                parents[int(entry.name)] = ppid
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found += sorted(frontier)
    return [pid for pid in found if running(pid)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def kill_and_check_orphans(stage_pid: int) -> None:
    """SIGKILL the stage; every process it started must be gone within a few seconds."""
    tree = descendants(stage_pid)
    os.kill(stage_pid, signal.SIGKILL)
    try:
        wait_for(lambda: not any(running(p) for p in tree), 20, "the killed stage's processes to exit")
    finally:
        for pid in tree:  # never leave a test's orphans behind, whatever happened
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def workers_of(pid: int) -> list[int]:
    """Pool workers below `pid`: not the resource tracker, and under forkserver the fork server's children."""
    procs = [p for p in descendants(pid) if "resource_tracker" not in cmdline(p)]
    server = [p for p in procs if parent_of(p) == pid and "forkserver" in cmdline(p)]
    return [p for p in procs if p not in server]


# ---------------------------------------------------------------- the pool on its own

POOL_SCRIPT = textwrap.dedent("""
    import multiprocessing, os, sys, time
    from realfake.faces.worker_pool import orphan_safe_pool

    def nap(_):
        time.sleep(300)

    if __name__ == "__main__":
        method, _, fallback = sys.argv[1].partition("+")
        if fallback == "no-pidfd":  # as on macOS or Linux < 5.3: the workers (forked, so they inherit this) poll
            del os.pidfd_open
        ctx = multiprocessing.get_context(method)
        with orphan_safe_pool(2, ctx) as pool:
            futures = [pool.submit(nap, i) for i in range(4)]
            print("ready", flush=True)
            time.sleep(300)
""")


@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork", "fork+no-pidfd"])
def test_pool_workers_die_with_a_killed_parent(tmp_path, method):
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), method], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_for(lambda: len(workers_of(proc.pid)) >= 2, 30, "two pool workers")
        kill_and_check_orphans(proc.pid)
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- temps left by a killed writer

WRITER_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from realfake.core.atomic import atomic_dir, atomic_path

    root = Path(sys.argv[1])
    with atomic_dir(root / "out") as tmp, atomic_path(root / "out.json") as tmp_file:
        (tmp / "half.png").write_bytes(b"half-written")
        tmp_file.write_text("{")
        print("ready", flush=True)
        time.sleep(300)
""")


def start_writer(tmp_path: Path, root: Path) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def temps(folder: Path) -> list[str]:
    """The atomic-write temps in `folder` (`.<name>.<random>[.ext].tmp`)."""
    return sorted(p.name for p in folder.iterdir() if re.match(r"^\..+\.tmp$", p.name))


def test_killed_writers_temps_are_swept_but_a_live_writers_are_kept(tmp_path):
    from realfake.core.atomic import atomic_dir, sweep_stale, write_text

    root = tmp_path / "data"
    dead = start_writer(tmp_path, root)
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    left = temps(root)
    assert len(left) == 2 and any(n.startswith(".out.json.") for n in left)  # one folder, one file
    live = start_writer(tmp_path, root)  # its first write into root sweeps the dead writer's temps
    try:
        live_temps = temps(root)
        assert len(live_temps) == 2 and not set(live_temps) & set(left)
        assert sweep_stale(root) == [] and temps(root) == live_temps  # a live writer's locks protect its temps
    finally:
        live.kill()
        live.wait()
    with atomic_dir(root / "other") as tmp:  # a stage's first write into the folder sweeps it
        (tmp / "x").write_text("x")
    write_text(root / "other.json", "{}")
    assert temps(root) == [] and sorted(p.name for p in root.iterdir()) == ["other", "other.json"]


# ---------------------------------------------------------------- the faces stage under DVC, killed mid-run

def write_raw(root: Path, source: str) -> None:
    """data/raw/<source>/ and its table (the download stage's schema) from the embedded sample's real faces."""
    rows = []
    with zipfile.ZipFile(REPO / "data/sample/boredhumans.zip") as zf:
        for rel in sorted(n for n in zf.namelist() if n.endswith(".jpg")):
            data = zf.read(rel)
            (root / "data/raw" / source / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "data/raw" / source / rel).write_bytes(data)
            rows.append({"source": source, "path": rel, "label": "fake", "kind": "gan", "bytes": len(data),
                         "sha256": "0" * 64, "group": f"{source}:{rel}"})
    pq.write_table(pa.Table.from_pylist(rows, schema=RAW_SCHEMA), root / "data/raw" / f"{source}.parquet")


DVC_YAML = """stages:
  faces:
    cmd: python {repo}/stages/faces.py --source demo
    deps: [data/raw/demo, data/raw/demo.parquet]
    params: [faces]
    outs: [data/faces/demo, data/faces/demo.parquet]
  count:
    cmd: python -c "import os; print(len(os.listdir('data/faces')))" > count.txt
    deps: [data/faces]
    outs: [count.txt]
"""

PARAMS = "faces: {{crop_size: 64, detect_size: 96, batch_size: 1, workers: 2, min_prob: {min_prob}}}\n"


def sh(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_IDENTITY, "PYTHONPATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert not check or proc.returncode == 0, f"{cmd}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def find_stage(dvc_pid: int) -> int | None:
    return next((p for p in descendants(dvc_pid) if "stages/faces.py" in cmdline(p)
                 and not cmdline(p).startswith(("/bin/sh", "sh "))), None)


@pytest.mark.slow
def test_sigkilled_stage_leaves_no_workers_and_dvc_status_stays_clean(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / ".dvcignore", repo / ".dvcignore")
    (repo / "dvc.yaml").write_text(DVC_YAML.format(repo=REPO))
    (repo / "params.yaml").write_text(PARAMS.format(min_prob=0.9))
    write_raw(repo, "demo")
    sh(["git", "init", "-q"], repo)
    sh([sys.executable, "-m", "dvc", "init", "-q"], repo)
    sh([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo)
    sh([sys.executable, "-m", "dvc", "repro", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "first run"], repo)

    # a second run with another param, killed by SIGKILL while its workers are busy
    (repo / "params.yaml").write_text(PARAMS.format(min_prob=0.8))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           f"{os.environ['PATH']}"}
    dvc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        stage = wait_for(lambda: find_stage(dvc.pid), 120, "the faces stage to start")
        wait_for(lambda: len(workers_of(stage)) >= 2, 120, "two faces workers")
        # the kill lands mid-stage: crops already written into the stage's temp folder
        wait_for(lambda: any(any((repo / "data/faces" / t).iterdir()) for t in temps(repo / "data/faces")), 120,
                 "the first crop")
        kill_and_check_orphans(stage)
        dvc.wait(timeout=120)
    finally:
        dvc.kill()
    assert dvc.returncode != 0
    assert temps(repo / "data/faces")  # what the killed run left behind

    # back to the committed params and outputs (DVC deleted the stage's outs before running it): nothing the
    # killed run left may show as a change
    (repo / "params.yaml").write_text(PARAMS.format(min_prob=0.9))
    sh([sys.executable, "-m", "dvc", "checkout", "-q"], repo)
    status = sh([sys.executable, "-m", "dvc", "status"], repo).stdout
    assert "up to date" in status, status

    # the next run of the stage sweeps its own leftovers first
    (repo / "params.yaml").write_text(PARAMS.format(min_prob=0.8))
    sh([sys.executable, "-m", "dvc", "repro", "-q"], repo)
    assert temps(repo / "data/faces") == []
    assert "up to date" in sh([sys.executable, "-m", "dvc", "status"], repo).stdout
