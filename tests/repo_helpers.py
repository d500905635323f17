"""Helpers for tests that run the real pipeline: a fresh git copy of the working tree and DVC in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def dvc(args: list[str], cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    """Run DVC with the test's interpreter first on PATH (stage commands call `python`)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           **GIT_IDENTITY, **env_extra}
    env.pop("REALFAKE_MIRROR", None)
    # as a user's shell: stages write __pycache__ beside the code they import (.dvcignore keeps it out of hashes)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return run([sys.executable, "-m", "dvc", *args], cwd, env)
