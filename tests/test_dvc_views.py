"""What a user reads from DVC after a real run of the sample (issues 13 and 16).

`dvc metrics show` and `dvc exp show --only-changed` fit a terminal; an experiment keeps every chart, so
`dvc plots diff HEAD <exp>` draws each for both revisions; the run cache restores a repeated experiment; and
a second fresh `dvc repro --force` writes the same dvc.lock byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from repo_helpers import copy_worktree, dvc

EXP = "noattn"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TERMINAL = 200  # columns


def plain(text: str) -> str:
    return ANSI.sub("", text)


def widest(text: str) -> int:
    return max((len(line.rstrip()) for line in plain(text).splitlines()), default=0)


@pytest.fixture(scope="module")
def experiment(sample_pipeline) -> str:
    """The README's one-parameter experiment (attention ablation), in a temp copy: the workspace stays committed."""
    dvc(["exp", "run", "--temp", "-S", "model.attention=false", "-n", EXP], sample_pipeline.root)
    return EXP


@pytest.mark.slow
def test_metrics_show_prints_a_short_table(sample_pipeline):
    out = plain(dvc(["metrics", "show"], sample_pipeline.root).stdout)
    lines = out.splitlines()
    sources = yaml.safe_load((sample_pipeline.root / "params.yaml").read_text())["sources"]
    # a header and one row per headline file (6: the per-source counts are outputs, not metrics), few and short
    # columns: it was 1.2 MB with 26,742-character lines
    assert len(lines) == 1 + 6, (len(lines), len(sources))
    assert len(out) <= 320 * len(lines) and widest(out) <= 320, (len(out), widest(out))


@pytest.mark.slow
def test_readme_views_fit_a_200_column_terminal(sample_pipeline):
    root = sample_pipeline.root
    for args in (["metrics", "show", "metrics/evaluate.json", "metrics/train.json"],
                 ["metrics", "show", "metrics/dedupe.json", "metrics/metadata.json", "metrics/sample.json"],
                 ["metrics", "show", "metrics/faces"],
                 ["metrics", "diff", "--all"]):
        out = dvc(args, root).stdout
        assert 0 < widest(out) <= TERMINAL, (args, widest(out), out)


@pytest.mark.slow
def test_exp_show_only_changed_fits_200_columns(sample_pipeline, experiment):
    out = plain(dvc(["exp", "show", "--only-changed"], sample_pipeline.root).stdout)
    assert widest(out) <= TERMINAL, "\n" + out
    assert experiment in out and "model.attention" in out
    for metric in ("auc", "acc", "pair_auc", "val_auc"):
        assert re.search(rf"\b{metric}\b", out), metric
    # and the details of both revisions stay one command away
    diff = dvc(["metrics", "diff", "HEAD", experiment, "--targets", "reports/evaluate.json"], sample_pipeline.root)
    assert "at_threshold.roc_auc" in diff.stdout


@pytest.mark.slow
def test_plots_diff_draws_every_chart_for_both_revisions(sample_pipeline, experiment):
    import json

    root = sample_pipeline.root
    shown = json.loads(dvc(["plots", "diff", "HEAD", experiment, "--json"], root).stdout)
    assert not shown.get("errors"), shown.get("errors")
    charts = shown["data"]
    declared = [next(iter(p)) if isinstance(p, dict) else p for p in yaml.safe_load((root / "dvc.yaml").read_text())["plots"]]
    named = [d for d in declared if not d.endswith(("/", ".png"))]
    assert set(named) <= set(charts), set(named) - set(charts)
    images = [c for c in charts if c.endswith(".png")]
    assert len(images) >= 8 + 3 + 12 + 1  # dataset card, evaluate, contact sheets, dedupe pairs
    missing = {}
    for chart, entries in charts.items():
        revs = set()
        for entry in entries:
            revs |= set(entry["revisions"])
            if entry["type"] == "vega":
                revs &= {row.get("rev") for row in entry["content"]["data"]["values"]}
        if revs != {"HEAD", experiment}:
            missing[chart] = sorted(revs)
    assert not missing, missing


@pytest.mark.slow
def test_run_cache_restores_a_repeated_experiment(sample_pipeline, experiment):
    again = dvc(["exp", "run", "--temp", "-S", "model.attention=false", "-n", f"{EXP}-again"], sample_pipeline.root)
    out = again.stdout + again.stderr
    assert "Stage 'train' is cached - skipping run" in out and "Stage 'evaluate' is cached - skipping run" in out


def profile_switch_commit(root: Path, clone: Path) -> None:
    """A clone of `root` with one more commit that changes what a data-profile switch changes: data.profile and
    every number of every metrics/ file, per-source counts included (a real mirror run takes hours)."""
    import json
    import subprocess

    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    params = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(params.replace("  profile: sample\n", "  profile: mirror\n", 1))
    for path in (clone / "metrics").rglob("*.json"):
        data = json.loads(path.read_text())
        bumped = {k: (v * 25 if isinstance(v, int) else round(min(v + 0.0123, 0.9999), 4)) for k, v in data.items()}
        path.write_text(json.dumps(bumped, indent=2) + "\n")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "mirror"], cwd=clone,
                   check=True)


def only_changed_after_a_profile_switch(root: Path, clone: Path) -> str:
    """`dvc exp show --only-changed` over the sample commit and a profile-switching one (plain text)."""
    profile_switch_commit(root, clone)
    # COLUMNS: the table DVC draws for a 200-column terminal (off a terminal it squeezes into 80)
    return plain(dvc(["exp", "show", "--only-changed", "-n", "2", "--no-pager"], clone, COLUMNS=str(TERMINAL)).stdout)


@pytest.mark.slow
def test_exp_show_after_a_profile_switch_shows_the_detector_headline_in_200_columns(sample_pipeline, tmp_path):
    out = only_changed_after_a_profile_switch(sample_pipeline.root, tmp_path / "clone")
    assert widest(out) <= TERMINAL, "\n" + out
    for metric in ("auc", "acc", "pair_auc", "val_auc"):  # the detector's headline, beside the baseline's
        assert re.search(rf"\b{metric}\b", out), (metric, out)
    assert "mirror" in out and "sample" in out
    # and `dvc metrics diff` lists headline files only: a few dozen rows, not 162
    diff = plain(dvc(["metrics", "diff", "HEAD~1", "HEAD"], tmp_path / "clone").stdout)
    assert len(diff.splitlines()) <= 1 + 31 and "metrics/download/" not in diff, diff
    # DVC prints those rows in Python set order (different on every run): `make metrics-diff` sorts them
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    make = ["make", "-s", "-f", str(Path(__file__).resolve().parents[1] / "Makefile"), "metrics-diff", "A=HEAD~1", "B=HEAD"]
    runs = [subprocess.run(make, cwd=tmp_path / "clone", env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    rows = runs[0].splitlines()[2:]
    assert runs[0] == runs[1] and rows == sorted(rows) and len(rows) >= 20, runs[0]


def lock_differences(a: str, b: str) -> list[str]:
    """Paths whose hash differs between two dvc.lock texts (for a readable failure)."""
    def hashes(text: str) -> dict[str, str]:
        out = {}
        for name, stage in yaml.safe_load(text)["stages"].items():
            for kind in ("deps", "outs"):
                for entry in stage.get(kind, []):
                    out[f"{name} {kind} {entry['path']}"] = entry.get("md5")
        return out

    ha, hb = hashes(a), hashes(b)
    return sorted(k for k in ha.keys() | hb.keys() if ha.get(k) != hb.get(k))


@pytest.mark.slow
@pytest.mark.slow_full  # a second whole-pipeline run (minutes): `make test-full`; CI's default run repros once
def test_two_fresh_repros_write_the_same_dvc_lock(sample_pipeline, tmp_path_factory):
    other = copy_worktree(tmp_path_factory.mktemp("again") / "realfake")
    dvc(["repro", "--force"], other)
    second = (other / "dvc.lock").read_text()
    assert second == sample_pipeline.lock, lock_differences(sample_pipeline.lock, second)
    assert Path(other / "logs" / "timings.jsonl").is_file()  # the timings went somewhere: not into dvc.lock
