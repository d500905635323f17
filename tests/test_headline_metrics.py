"""The headline metrics (`metrics/`) stay short and flat; details, timings and addresses stay out (issues 13, 16)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import yaml

from realfake.core.atomic import write_torch
from realfake.core.errors import without_addresses
from realfake.core.imageio import DecodeError, decode_image
from realfake.core.stage_metrics import (
    MAX_HEADLINE_KEYS,
    counts,
    headline,
    report_path_for,
    without_timings,
    write_stage_metrics,
)

REPO = Path(__file__).resolve().parents[1]
# every distinct headline key over all metrics files; `dvc metrics show` prints one column per key
MAX_DISTINCT_KEYS = 25  # 24, + not_packed (sample: faces whose view was rejected)


def declared_metrics(dvc_yaml: Path) -> list[str]:
    """The metrics paths dvc.yaml declares (foreach stages expanded over params.yaml `sources`)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    sources = list(yaml.safe_load((dvc_yaml.parent / "params.yaml").read_text())["sources"])
    paths = []
    for stage in stages.values():
        body = stage.get("do", stage)
        keys = sources if "foreach" in stage else [None]
        for entry in body.get("metrics", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            paths += [path.replace("${key}", k) if k else path for k in keys]
    return paths


def per_source_counts(dvc_yaml: Path) -> list[str]:
    """The per-source count files of the foreach stages: outputs under metrics/, deliberately not DVC metrics."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    sources = list(yaml.safe_load((dvc_yaml.parent / "params.yaml").read_text())["sources"])
    paths = []
    for stage in stages.values():
        if "foreach" not in stage:
            continue
        for entry in stage["do"].get("outs", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if path.startswith("metrics/"):
                assert isinstance(entry, dict) and entry[path] == {"cache": False}, path  # in git, like a metric
                paths += [path.replace("${key}", k) for k in sources]
    return paths


def test_every_declared_metrics_file_is_a_short_flat_headline():
    paths = declared_metrics(REPO / "dvc.yaml")
    # one headline per non-foreach stage (dedupe, attributes, metadata, sample, train, evaluate): a profile switch
    # changes every per-source count, and 4 stages x 14 sources x 3 counts pushed the detector's numbers out of
    # `dvc exp show --only-changed` (issue 25); those counts are outputs, not metrics
    assert len(paths) == 6
    assert len(per_source_counts(REPO / "dvc.yaml")) == 4 * len(yaml.safe_load((REPO / "params.yaml").read_text())["sources"])
    distinct = set()
    for rel in paths:
        data = json.loads((REPO / rel).read_text())
        assert isinstance(data, dict) and 0 < len(data) <= MAX_HEADLINE_KEYS, rel
        for key, value in data.items():
            assert isinstance(value, int | float) and not isinstance(value, bool), (rel, key)
        distinct |= set(data)
    assert len(distinct) <= MAX_DISTINCT_KEYS, sorted(distinct)
    assert not distinct & {"seconds", "train_seconds", "images_per_s"}


def test_headline_files_reconcile_their_counts():
    for rel in declared_metrics(REPO / "dvc.yaml") + per_source_counts(REPO / "dvc.yaml"):
        data = json.loads((REPO / rel).read_text())
        if "in" in data:
            assert data["in"] == data["kept"] + data["rejected"], rel


def test_metrics_dir_holds_nothing_but_declared_headlines():
    declared = set(declared_metrics(REPO / "dvc.yaml")) | set(per_source_counts(REPO / "dvc.yaml"))
    on_disk = {p.relative_to(REPO).as_posix() for p in (REPO / "metrics").rglob("*") if p.is_file()}
    assert on_disk == declared  # breakdowns, curves and per-group tables live in reports/ and plots/


def test_headline_rounds_and_drops_undefined_values():
    assert headline({"auc": 0.615384615, "n": 26, "mcc": float("nan"), "pair": None}) == {"auc": 0.6154, "n": 26}
    with pytest.raises(TypeError):
        headline({"uri": "data/sample/ffhq.zip"})
    with pytest.raises(ValueError, match="at most"):
        headline({f"k{i}": i for i in range(MAX_HEADLINE_KEYS + 1)})


def test_counts_must_reconcile():
    assert counts(5, 3, 2) == {"in": 5, "kept": 3, "rejected": 2}
    with pytest.raises(ValueError, match="in"):
        counts(5, 3, 1)


def test_details_go_to_reports_without_timings(tmp_path):
    metrics = tmp_path / "metrics" / "faces" / "x.json"
    details = {"in": 2, "kept": 1, "rejected": 1, "seconds": 3.2, "pad": {"images_per_s": 9.0, "mean": 0.1}}
    write_stage_metrics(metrics, counts(2, 1, 1), details)
    assert json.loads(metrics.read_text()) == {"in": 2, "kept": 1, "rejected": 1}
    assert json.loads((tmp_path / "reports" / "faces" / "x.json").read_text()) == {
        "in": 2, "kept": 1, "rejected": 1, "pad": {"mean": 0.1}}
    assert report_path_for(Path("m.json")) == Path("m.details.json")
    assert without_timings([{"seconds": 1, "a": 2}]) == [{"a": 2}]


def test_checkpoints_are_byte_for_byte_reproducible(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "info": {"epoch": 3}}
    write_torch(tmp_path / "a.pt", state)
    write_torch(tmp_path / "sub" / "b.pt", state)
    # torch.save straight to a temp file names the archive after that random file name
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()
    assert torch.equal(torch.load(io.BytesIO((tmp_path / "a.pt").read_bytes()), weights_only=True)["w"], state["w"])


def test_error_details_carry_no_object_addresses():
    with pytest.raises(DecodeError) as caught:
        decode_image(b"this is not an image")
    assert caught.value.detail and "0x" not in caught.value.detail  # a plain sentence now, no repr at all
    assert without_addresses("<Foo object at 0x7f3a9c> and <function f at 0xABC>") == "<Foo object> and <function f>"
