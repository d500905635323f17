"""Packaging and repository hygiene: the metadata a fresh install reads, and what git must never pick up."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    """`license = { text = ... }` printed a deprecation block on every install (setuptools >= 77 wants SPDX)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    setuptools = next(r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(re.search(r">=\s*(\d+)", setuptools).group(1)) >= 77


def test_dvc_plots_output_is_git_ignored():
    for path in ("dvc_plots/index.html", "dvc_plots/static/a.svg"):
        proc = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert proc.returncode == 0, f"{path} is not git-ignored"
