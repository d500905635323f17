"""Checks against the offline mirror (skipped cleanly where the machine has none)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from realfake.core.params import load_params
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.embedded_sample import make_sample
from realfake.ingest.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]

# Image counts per source, from ../shared/mirror/SOURCES.md (dfdc and ciplab archives hold both classes)
EXPECTED_IMAGES = {"ffhq": 1100, "ffhq-1024": 300, "lfw": 2000, "utkface": 4000, "dfdc-real": 1000,
                   "ciplab-real": 200, "stylegan-140k": 1100, "tpdne": 564, "boredhumans": 901,
                   "generated-faces": 1100, "dfdc-faceswap": 1000, "ciplab-photoshop": 200}


@pytest.mark.mirror
def test_embedded_sample_rebuilds_byte_identical(mirror, tmp_path):
    sums = make_sample(mirror, tmp_path, per_source=40, seed=0)
    committed = dict(reversed(line.split()) for line in (REPO / "data/sample/SHA256SUMS").read_text().splitlines())
    assert sums == committed


@pytest.mark.mirror
def test_mirror_profile_describes_all_ten_archives(mirror):
    params = load_params(REPO / "params.yaml")
    archives = {resolve_source(n, s, "mirror").uri for n, s in params["sources"].items()}
    assert archives == {f"mirror://{p.name}" for p in mirror.glob("*.zip")}
    assert len(archives) == 10


@pytest.mark.mirror_full
@pytest.mark.parametrize("name", sorted(EXPECTED_IMAGES))
def test_mirror_download_reconciles_with_the_archive(mirror, tmp_path, name):
    params = load_params(REPO / "params.yaml")
    src = resolve_source(name, params["sources"][name], "mirror")
    metrics = run_download(src, DownloadConfig.from_params(params["download"]), tmp_path, tmp_path / "m.json")
    with zipfile.ZipFile(mirror / src.uri.removeprefix("mirror://")) as zf:
        files = [i for i in zf.infolist() if not i.is_dir()]
    assert metrics["files_seen"] == len(files)
    assert metrics["images_kept"] == EXPECTED_IMAGES[name]
    assert metrics["images_kept"] + metrics["skipped_total"] == len(files)
