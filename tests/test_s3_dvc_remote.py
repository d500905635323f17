"""S3 as a DVC remote, set up as docs/s3.md says, round-tripped through a real local S3 server."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


def dvc(*args: str) -> str:
    """One DVC command, in this process (its CLI entry point: the same code path as the shell, minus the start-up)."""
    from dvc.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(list(args))
    assert rc == 0, f"dvc {' '.join(args)} exited {rc}: {out.getvalue()}"
    return out.getvalue()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file DVC tracks here (the .dvc files and .gitignore are git's)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".dvc" and p.name != ".gitignore"}


@pytest.mark.slow  # ~8 s: dvc init, add, push, pull, status against the local server
def test_dvc_push_then_pull_into_an_empty_workspace_and_cache(tmp_path, s3, monkeypatch):
    repo = tmp_path / "repo"
    images = repo / "data" / "faces"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
        (images / f"{i:03d}.png").write_bytes(buf.getvalue())
    pd.DataFrame({"path": sorted(p.name for p in images.iterdir()), "label": ["real", "fake"] * 6}).to_parquet(
        repo / "data" / "faces.parquet")
    before = digests(repo / "data")

    # DVC gets its credentials only from .dvc/config.local, as the docs set them up, not from the environment
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in dict(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                            AWS_EC2_METADATA_DISABLED="true", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t",
                            GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
                            GIT_COMMITTER_EMAIL="t@example.com").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(repo)
    git("init", "-q")
    dvc("init", "-q")
    dvc("add", "-q", "data/faces", "data/faces.parquet")
    dvc("remote", "add", "-d", "store", s3.uri("dvc-store"))
    dvc("remote", "modify", "store", "endpointurl", s3.server.endpoint)
    dvc("remote", "modify", "--local", "store", "access_key_id", s3.server.access_key)
    dvc("remote", "modify", "--local", "store", "secret_access_key", s3.server.secret_key)
    git("add", "-A")
    git("commit", "-qm", "data tracked by DVC, remote on S3")
    assert s3.server.secret_key not in git("show", "HEAD")  # the secret stays in the git-ignored config.local
    assert s3.server.secret_key in (repo / ".dvc" / "config.local").read_text()

    dvc("push", "-q")
    pushed = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{s3.prefix}dvc-store/")
    assert pushed["KeyCount"] >= 14  # 12 images, the directory listing, the parquet

    shutil.rmtree(images)
    (repo / "data" / "faces.parquet").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    assert digests(repo / "data") == {}
    dvc("pull", "-q")
    assert digests(repo / "data") == before
    assert "Cache and remote 'store' are in sync" in dvc("status", "-c")
