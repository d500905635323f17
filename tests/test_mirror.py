"""Checks against the offline mirror (skipped cleanly where the machine has none)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from realfake.core.params import load_params, load_section
from realfake.ingest.download import DownloadConfig, run_download
from realfake.ingest.embedded_sample import make_sample
from realfake.ingest.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]

# Image counts per source, from ../shared/mirror/SOURCES.md (dfdc and ciplab archives hold both classes;
# ffhq and stylegan-140k also read their half of 140k-faces.zip)
EXPECTED_IMAGES = {"ffhq": 1100 + 900, "ffhq-1024": 300, "lfw": 2000, "utkface": 4000, "pixabay": 802,
                   "dfdc-real": 1000, "ciplab-real": 200, "stylegan-140k": 1100 + 900, "tpdne": 564,
                   "boredhumans": 901, "generated-faces": 1100, "pollinations": 1001, "dfdc-faceswap": 1000,
                   "ciplab-photoshop": 200, "unsplash": 1225}
NEW_SOURCES = ("ffhq", "stylegan-140k", "pixabay", "pollinations")  # the archives added with issue 17


@pytest.mark.mirror
def test_embedded_sample_rebuilds_byte_identical(mirror, tmp_path):
    sums = make_sample(mirror, tmp_path, per_source=40, seed=0)
    committed = dict(reversed(line.split()) for line in (REPO / "data/sample/SHA256SUMS").read_text().splitlines())
    assert sums == committed


@pytest.mark.mirror
def test_mirror_profile_describes_every_archive(mirror):
    params = load_params(REPO / "params.yaml")
    archives = {uri for n, s in params["sources"].items() for uri in resolve_source(n, s, "mirror").uris}
    assert archives == {f"mirror://{p.name}" for p in mirror.glob("*.zip")}
    assert len(archives) == 14
    sums = dict(reversed(line.split()) for line in (mirror / "SHA256SUMS").read_text().splitlines())
    for name, spec in params["sources"].items():
        for part in resolve_source(name, spec, "mirror").parts:
            assert part.sha256 == sums[part.uri.removeprefix("mirror://")], (name, part.uri)


def _reconcile(mirror: Path, tmp_path: Path, name: str) -> dict:
    """Download one source from the mirror; check in = kept + rejected against the archives themselves."""
    params = load_params(REPO / "params.yaml")
    src = resolve_source(name, params["sources"][name], "mirror")
    metrics = run_download(src, load_section(DownloadConfig, params, "download"), tmp_path, tmp_path / "m.json")
    for part, part_metrics in zip(src.parts, metrics["parts"], strict=True):
        with zipfile.ZipFile(mirror / part.uri.removeprefix("mirror://")) as zf:
            files = [i for i in zf.infolist() if not i.is_dir()]
        assert part_metrics["files_seen"] == len(files) == part_metrics["images_kept"] + part_metrics["skipped_total"]
    assert metrics["images_kept"] == EXPECTED_IMAGES[name]
    assert metrics["files_seen"] == metrics["images_kept"] + metrics["skipped_total"]
    return metrics


@pytest.mark.mirror_full
@pytest.mark.parametrize("name", sorted(EXPECTED_IMAGES))
def test_mirror_download_reconciles_with_the_archive(mirror, tmp_path, name):
    _reconcile(mirror, tmp_path, name)


@pytest.mark.mirror_full
def test_new_sources_labels_and_ffhq_groups(mirror, tmp_path):
    """The 140k halves join their sources (FFHQ ids as groups), labels parse with the counts in the metrics."""
    import pandas as pd

    by_name = {n: _reconcile(mirror, tmp_path / n, n) for n in NEW_SOURCES}
    ffhq = pd.read_parquet(tmp_path / "ffhq" / "ffhq.parquet")
    extra = ffhq[ffhq["archive"] == "mirror://140k-faces.zip"]
    assert len(extra) == 900 and extra["group"].str.fullmatch(r"ffhq:\d+").all()
    assert not set(extra["group"]) & set(ffhq.loc[ffhq["archive"] == "mirror://ffhq.zip", "group"])
    assert by_name["ffhq"]["parts"][1]["skipped"] == {"not-included": 900}
    assert by_name["stylegan-140k"]["parts"][1] | {"uri": None, "archive_bytes": None} == {
        "uri": None, "archive_bytes": None, "files_seen": 1800, "images_kept": 900,
        "skipped": {"not-included": 900}, "skipped_total": 900}
    assert by_name["pixabay"]["labelled"]["gender_source"] == 802
    polli = by_name["pollinations"]["labelled"]
    assert polli["age_min_source"] == 1000 and 400 < polli["gender_source"] < 600
    assert 300 < polli["ethnicity_source"] < 1000 and by_name["pollinations"]["label_notes"] == 1
