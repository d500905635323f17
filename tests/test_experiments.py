"""The experiment summary on `dvc exp show --json` output of a real scratch DVC repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repo_helpers import GIT_IDENTITY

from realfake.evaluation.experiments import arm_of, experiment_frame, mean_std_table

ENV = {**os.environ, **GIT_IDENTITY, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def sh(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def scratch_project(root: Path, make_py: str, outs: str = "") -> None:
    """A committed git + DVC repo: params model.attention and train.seed, one stage `m` that runs make.py."""
    (root / "params.yaml").write_text("model: {attention: true}\ntrain: {seed: 0}\n")
    (root / "dvc.yaml").write_text(
        "stages:\n  m:\n    cmd: python make.py\n    params: [model, train]\n"
        "    metrics: [metrics/evaluate.json: {cache: false}]\n" + outs)
    (root / "make.py").write_text(make_py)
    sh(["git", "init", "-q"], root)
    sh([sys.executable, "-m", "dvc", "init", "-q"], root)
    sh(["git", "add", "-A"], root)
    sh(["git", "commit", "-qm", "init"], root)


@pytest.mark.slow
def test_mean_and_std_over_seeds_grouped_by_attention(tmp_path):
    scratch_project(tmp_path, outs="    outs: [reports/evaluate.json]\n", make_py=(
        "import json, os, yaml\np = yaml.safe_load(open('params.yaml'))\nos.makedirs('metrics', exist_ok=True)\n"
        "auc = 0.9 + 0.05 * p['model']['attention'] + 0.01 * p['train']['seed']\n"
        "json.dump({'at_threshold': {'roc_auc': auc}}, open('metrics/evaluate.json', 'w'))\n"
        "os.makedirs('reports', exist_ok=True)\n"
        "json.dump({'honest_pair': {'real_accuracy': auc - 0.5}}, open('reports/evaluate.json', 'w'))\n"))
    # the baseline: the stage run and committed (attention true, seed 0: AUC 0.95)
    sh([sys.executable, "-m", "dvc", "repro", "-q"], tmp_path)
    sh(["git", "add", "-A"], tmp_path)
    sh(["git", "commit", "-qm", "baseline run"], tmp_path)
    for attention in ("true", "false"):
        for seed in (0, 1, 2):
            sh([sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", f"a{attention}-s{seed}",
                "-S", f"model.attention={attention}", "-S", f"train.seed={seed}"], tmp_path)
    shown = json.loads(sh([sys.executable, "-m", "dvc", "exp", "show", "--json"], tmp_path))
    metrics = ("metrics/evaluate.json:at_threshold.roc_auc",)
    everything = experiment_frame(shown, ("model.attention", "train.seed"), metrics)
    # exp-table includes the baseline, as its own first row, never mixed into a group of seeds
    (base,) = everything[everything["baseline"]].to_dict(orient="records")
    assert base["name"] == "baseline" and base["at_threshold.roc_auc"] == pytest.approx(0.95)
    with_base = mean_std_table(everything, ("model.attention",), metrics)
    assert with_base.iloc[0]["run"] == "baseline" and with_base.iloc[0]["runs"] == 1
    assert with_base.iloc[0]["at_threshold.roc_auc"] == "0.9500"
    assert (with_base.iloc[1:]["run"] == "experiments").all() and (with_base.iloc[1:]["runs"] == 3).all()
    frame = everything[~everything["baseline"]].drop(columns="baseline")
    # a details file (a cached output, not a headline metric) is read at each experiment's revision
    details = experiment_frame(shown, ("model.attention",), ("reports/evaluate.json:honest_pair.real_accuracy",),
                               repo=str(tmp_path)).set_index("name")
    assert details.loc["afalse-s2", "honest_pair.real_accuracy"] == pytest.approx(0.42)
    assert len(frame) == 6
    table = mean_std_table(frame, ("model.attention",), metrics).set_index("model.attention")
    assert table.loc[True, "at_threshold.roc_auc"] == "0.9600 ± 0.0100"
    assert table.loc[False, "at_threshold.roc_auc"] == "0.9100 ± 0.0100"
    assert (table["runs"] == 3).all()
    by_arm = mean_std_table(frame, ("arm",), metrics).set_index("arm")  # arms are names minus -s<seed>
    assert by_arm.loc["atrue", "at_threshold.roc_auc"] == "0.9600 ± 0.0100" and by_arm.loc["afalse", "runs"] == 3


def test_arm_strips_only_a_trailing_seed():
    assert arm_of("reenc-s12") == "reenc" and arm_of("s1-base") == "s1-base" and arm_of("logo-tpdne") == "logo-tpdne"


@pytest.mark.slow
def test_exp_table_names_a_misspelt_metric_key_and_exits_2(tmp_path):
    """A misspelt --metric printed "—" in every cell and exited 0."""
    scratch_project(tmp_path, make_py=(
        "import json, os\nos.makedirs('metrics', exist_ok=True)\n"
        "json.dump({'at_threshold': {'roc_auc': 0.9, 'f1': 0.8}}, open('metrics/evaluate.json', 'w'))\n"))
    sh([sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", "e-s0", "-S", "train.seed=0"], tmp_path)
    env = {**ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def exp_table(*metric: str) -> subprocess.CompletedProcess:
        args = [a for m in metric for a in ("--metric", m)]
        return subprocess.run([sys.executable, "-m", "realfake.cli", "exp-table", "--group", "arm", *args],
                              cwd=tmp_path, capture_output=True, text=True, env=env)

    good = exp_table("metrics/evaluate.json:at_threshold.roc_auc")
    assert good.returncode == 0 and "0.9000" in good.stdout, good.stderr
    for metric, says in [("metrics/evaluate.json:at_threshold.roc_aux", "did you mean at_threshold.roc_auc"),
                         ("metrics/evaluat.json:at_threshold.roc_auc", "no experiment has metrics file"),
                         ("at_threshold.roc_auc", "FILE:dotted.key")]:
        bad = exp_table(metric)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert says in bad.stderr and bad.stdout == "", bad.stderr
