"""`dvc repro` on the embedded sample in a fresh copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def copy_worktree(dest: Path) -> Path:
    """A copy of the working tree (tracked and untracked-not-ignored files) as a new git repo."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], REPO).stdout.split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.name", "t"], dest)
    run(["git", "config", "user.email", "t@t"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "fresh"], dest)
    return dest


@pytest.fixture(scope="module")
def fresh_repo(tmp_path_factory) -> Path:
    return copy_worktree(tmp_path_factory.mktemp("clone") / "realfake")


def dvc(args: list[str], cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    """Run DVC with the test's interpreter first on PATH (stage commands call `python`)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           **GIT_IDENTITY, **env_extra}
    env.pop("REALFAKE_MIRROR", None)
    return run([sys.executable, "-m", "dvc", *args], cwd, env)


@pytest.fixture(scope="module")
def reproduced(fresh_repo: Path) -> Path:
    dvc(["repro"], fresh_repo)
    return fresh_repo


@pytest.mark.slow
def test_repro_on_the_sample_writes_every_download_output(reproduced):
    params = yaml.safe_load((reproduced / "params.yaml").read_text())
    for name in params["sources"]:
        frame = pd.read_parquet(reproduced / "data" / "raw" / f"{name}.parquet")
        metrics = json.loads((reproduced / "metrics" / "download" / f"{name}.json").read_text())
        assert metrics["images_kept"] == len(frame) > 0, name
        assert metrics["files_seen"] == metrics["images_kept"] + metrics["skipped_total"]
        assert all((reproduced / "data" / "raw" / name / p).is_file() for p in frame["path"])


@pytest.mark.slow
def test_second_repro_has_nothing_to_do(reproduced):
    out = dvc(["repro"], reproduced).stdout
    assert "Data and pipelines are up to date" in out
    assert "Running stage" not in out


@pytest.mark.slow
def test_changing_one_source_invalidates_only_that_source(reproduced):
    params_path = reproduced / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["sources"]["tpdne"]["include"] = ["tpdne/00*.jpg"]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = json.loads(dvc(["status", "--json"], reproduced).stdout)
    finally:
        params_path.write_text(original)
    changed = {name for name in status if name.startswith("download@")}
    assert changed == {"download@tpdne"}


@pytest.mark.mirror
@pytest.mark.slow
def test_temp_experiment_finds_the_mirror_from_its_copy(mirror, tmp_path):
    """`dvc exp run --temp` runs under .dvc/tmp/exps/…: the mirror is found by walking up to `shared/mirror`."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "mirror").symlink_to(mirror)
    repo = copy_worktree(tmp_path / "realfake")
    dvc(["exp", "run", "--temp", "-S", "data.profile=mirror", "download@tpdne"], repo)
    ref = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], repo).stdout.split()[0]
    metrics = json.loads(run(["git", "show", f"{ref}:metrics/download/tpdne.json"], repo).stdout)
    assert metrics["profile"] == "mirror" and metrics["images_kept"] == 564
