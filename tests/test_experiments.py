"""The experiment summary on `dvc exp show --json` output of a real scratch DVC repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from realfake.evaluation.experiments import arm_of, experiment_frame, mean_std_table

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def sh(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_mean_and_std_over_seeds_grouped_by_attention(tmp_path):
    (tmp_path / "params.yaml").write_text("model: {attention: true}\ntrain: {seed: 0}\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  m:\n    cmd: python make.py\n    params: [model, train]\n"
        "    metrics: [metrics/evaluate.json: {cache: false}]\n")
    (tmp_path / "make.py").write_text(
        "import json, os, yaml\np = yaml.safe_load(open('params.yaml'))\nos.makedirs('metrics', exist_ok=True)\n"
        "auc = 0.9 + 0.05 * p['model']['attention'] + 0.01 * p['train']['seed']\n"
        "json.dump({'at_threshold': {'roc_auc': auc}}, open('metrics/evaluate.json', 'w'))\n")
    sh(["git", "init", "-q"], tmp_path)
    sh([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    sh(["git", "add", "-A"], tmp_path)
    sh(["git", "commit", "-qm", "init"], tmp_path)
    for attention in ("true", "false"):
        for seed in (0, 1, 2):
            sh([sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", f"a{attention}-s{seed}",
                "-S", f"model.attention={attention}", "-S", f"train.seed={seed}"], tmp_path)
    shown = json.loads(sh([sys.executable, "-m", "dvc", "exp", "show", "--json"], tmp_path))
    metrics = ("metrics/evaluate.json:at_threshold.roc_auc",)
    frame = experiment_frame(shown, ("model.attention", "train.seed"), metrics)
    assert len(frame) == 6
    table = mean_std_table(frame, ("model.attention",), metrics).set_index("model.attention")
    assert table.loc[True, "at_threshold.roc_auc"] == "0.9600 ± 0.0100"
    assert table.loc[False, "at_threshold.roc_auc"] == "0.9100 ± 0.0100"
    assert (table["runs"] == 3).all()
    by_arm = mean_std_table(frame, ("arm",), metrics).set_index("arm")  # arms are names minus -s<seed>
    assert by_arm.loc["atrue", "at_threshold.roc_auc"] == "0.9600 ± 0.0100" and by_arm.loc["afalse", "runs"] == 3


def test_arm_strips_only_a_trailing_seed():
    assert arm_of("reenc-s12") == "reenc" and arm_of("s1-base") == "s1-base" and arm_of("logo-tpdne") == "logo-tpdne"
