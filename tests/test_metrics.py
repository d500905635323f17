"""realfake.evaluation.metrics against scikit-learn on crafted predictions, the threshold rule, ECE, degenerate inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from realfake.detector import threshold as T
from realfake.evaluation import metrics as M


def crafted(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Imbalanced labels with informative but noisy scores."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int8)
    p = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1)
    return y, p


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.62])
def test_binary_metrics_match_sklearn(threshold):
    y, p = crafted()
    m = M.binary_metrics(y, p, threshold)
    pred = (p >= threshold).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["confusion"]["matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    np.testing.assert_allclose(m["confusion"]["normalized"], skm.confusion_matrix(y, pred, labels=[0, 1], normalize="true"))
    assert m["n_real"] + m["n_fake"] == m["n"] == len(y)


def test_threshold_keeps_half_when_it_is_optimal():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    choice = T.choose_threshold(y, p)
    assert choice.threshold == 0.5
    assert choice.val_balanced_accuracy == 1.0 and choice.val_youden_j == 1.0


def test_threshold_moves_to_the_separating_gap():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.55, 0.6, 0.7, 0.8])  # at 0.5 every real face is called fake
    choice = T.choose_threshold(y, p)
    assert choice.threshold == pytest.approx(0.65)
    assert M.binary_metrics(y, p, choice.threshold)["balanced_accuracy"] == 1.0


@pytest.mark.parametrize(("real", "fake", "expected"), [
    ([0.2, 0.75], [0.3, 0.8], 0.25),   # two optimal gaps: 0.25 (0.25 from 0.5) beats 0.775
    ([0.25, 0.7], [0.4, 0.8], 0.325),  # 0.325 (0.175 from 0.5) beats 0.75
])
def test_threshold_ties_go_to_the_candidate_closest_to_half(real, fake, expected):
    y = np.array([0] * len(real) + [1] * len(fake))
    choice = T.choose_threshold(y, np.array(real + fake))
    assert choice.threshold == pytest.approx(expected)
    assert choice.val_balanced_accuracy == pytest.approx(0.75)


def test_threshold_reaches_the_best_balanced_accuracy_of_any_threshold():
    y, p = crafted(400, seed=3)
    choice = T.choose_threshold(y, p)
    grid = np.unique(np.concatenate([p, np.linspace(0, 1, 2001)]))
    pred = p[None, :] >= grid[:, None]  # every grid threshold at once
    best = ((pred[:, y == 1].mean(axis=1) + (~pred[:, y == 0]).mean(axis=1)) / 2).max()
    assert choice.val_balanced_accuracy == pytest.approx(best, abs=1e-12)
    assert skm.balanced_accuracy_score(y, (p >= choice.threshold).astype(int)) == pytest.approx(best)


def test_ece_small_for_calibrated_large_for_overconfident():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)  # y ~ Bernoulli(p): calibrated by construction
    assert M.calibration(y, p)["ece"] < 0.02
    assert M.calibration(y, p ** 3)["ece"] > 0.1


def test_ece_exact_value_and_curve():
    p = np.full(10, 0.9)
    y = np.array([1] * 5 + [0] * 5)
    cal = M.calibration(y, p, n_bins=10)
    assert cal["ece"] == pytest.approx(0.4)
    assert cal["curve"] == [{"bin_lo": pytest.approx(0.9), "bin_hi": pytest.approx(1.0), "mean_predicted": pytest.approx(0.9),
                             "fraction_fake": 0.5, "count": 10}]
    assert M.calibration([1, 0], [1.0, 0.0], n_bins=10)["curve"][-1]["bin_hi"] == 1.0  # p = 1 falls in the top bin


def test_curves_thinned_and_complete():
    y, p = crafted(3000, seed=2)
    roc = M.roc_points(y, p, max_points=200)
    pr = M.pr_points(y, p, max_points=200)
    assert 2 < len(roc) <= 200 and 2 < len(pr) <= 200
    assert (roc[0]["fpr"], roc[0]["tpr"]) == (0.0, 0.0) and (roc[-1]["fpr"], roc[-1]["tpr"]) == (1.0, 1.0)
    assert all(0 <= r["threshold"] <= 1 for r in roc)
    fpr = [r["fpr"] for r in roc]
    assert fpr == sorted(fpr)
    assert np.trapezoid([r["tpr"] for r in roc], fpr) == pytest.approx(skm.roc_auc_score(y, p), abs=0.01)


@pytest.mark.parametrize(("y", "p"), [([1, 1, 1], [0.2, 0.7, 0.9]), ([0, 0], [0.1, 0.6]), ([], [])])
def test_degenerate_inputs_give_nan_and_a_note(y, p):
    m = M.binary_metrics(y, p)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["average_precision"]) and math.isnan(m["balanced_accuracy"])
    assert m["notes"]
    assert M.roc_points(y, p) == [] and M.pr_points(y, p) == []
    choice = T.choose_threshold(y, p)
    assert choice.threshold == 0.5 and choice.notes
    report = M.to_jsonable(M.evaluate_scores(y, p, y, p))
    json.dumps(report, allow_nan=False)  # strict JSON: NaN became null
    assert report["at_threshold"]["roc_auc"] is None


def test_evaluate_scores_uses_val_threshold_and_reports_half():
    y_val, p_val = np.array([0, 0, 1, 1]), np.array([0.55, 0.6, 0.7, 0.8])
    y, p = np.array([0, 0, 1, 1]), np.array([0.52, 0.58, 0.72, 0.9])
    out = M.evaluate_scores(y, p, y_val, p_val)
    assert out["threshold"]["threshold"] == pytest.approx(0.65)
    assert out["at_threshold"]["accuracy"] == 1.0 and out["at_0_5"]["accuracy"] == 0.5
    assert out["threshold"]["rule"] == T.THRESHOLD_RULE


def test_confusion_records_count_like_the_matrix():
    y, p = crafted(200)
    rec = M.confusion_records(y, p, 0.5)
    cm = M.confusion(y, (p >= 0.5).astype(int))
    assert sum(r == {"actual": "fake", "predicted": "real"} for r in rec) == cm["fn"]
    assert sum(r == {"actual": "real", "predicted": "fake"} for r in rec) == cm["fp"]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        M.binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError):
        M.binary_metrics([0, 2], [0.5, 0.5])


def test_plot_records_hold_every_plot():
    y, p = crafted(300)
    rec = M.plot_records(y, p, 0.5)
    assert set(rec) == {"roc", "pr", "calibration", "confusion"}
    assert len(rec["confusion"]) == 300 and sum(b["count"] for b in rec["calibration"]) == 300


def test_numeric_only_keeps_the_diffable_scalars():
    y, p = crafted(100)
    out = M.numeric_only(M.evaluate_scores(y, p, y, p))
    assert out["at_threshold"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    cm = out["at_threshold"]["confusion"]
    assert set(cm) == {"tn", "fp", "fn", "tp"} and sum(cm.values()) == 100  # the matrix lists are dropped
    assert "notes" not in out["at_threshold"] and "rule" not in out["threshold"]
