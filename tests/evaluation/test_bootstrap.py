"""Percentile bootstrap: stratified resampling, vectorised = callable path, coverage."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from workbench.evaluation.bootstrap import bootstrap_ci, bootstrap_indices
from workbench.evaluation.inputs import MetricInputError
from workbench.evaluation.metrics import f1, precision, sensitivity


def test_bootstrap_indices_stratified_keeps_class_counts():
    y = np.array([1] * 10 + [0] * 30)
    idx = bootstrap_indices(y, 50, seed=3)
    assert idx.shape == (50, 40)
    assert (y[idx].sum(axis=1) == 10).all()
    assert not np.array_equal(idx, bootstrap_indices(y, 50, seed=4))
    np.testing.assert_array_equal(idx, bootstrap_indices(y, 50, seed=3))
    assert not (y[bootstrap_indices(y, 200, seed=3, stratified=False)].sum(1) == 10).all()


def test_vectorised_bootstrap_equals_callable_path():
    rng = np.random.default_rng(2)
    y = (rng.random(80) < 0.4).astype(int)
    p = np.clip(0.3 * y + rng.random(80) * 0.7, 0, 1)
    for name, fn in [("auc", roc_auc_score), ("sensitivity", sensitivity),
                     ("precision", precision), ("f1", f1)]:
        fast = bootstrap_ci(y, p, name, n_boot=200, seed=9)
        slow = bootstrap_ci(y, p, fn, n_boot=200, seed=9)
        assert fast.value == pytest.approx(slow.value)
        assert (fast.lo, fast.hi) == pytest.approx((slow.lo, slow.hi))
        assert fast.n_valid == slow.n_valid == 200


def test_bootstrap_ci_coverage_in_simulation():
    # score = 0.6 y + N(0, 1) and p = expit(score), so "p >= 0.5" is "score >= 0" and the
    # true sensitivity is P(N(0.6, 1) >= 0); 95% intervals should cover it ~95 times in 100
    from scipy.stats import norm

    true_sens = norm.sf(0.0, loc=0.6, scale=1.0)
    rng = np.random.default_rng(123)
    covered = 0
    for rep in range(100):
        y = (rng.random(150) < 0.4).astype(int)
        score = 0.6 * y + rng.normal(0, 1, 150)
        p = 1 / (1 + np.exp(-score))  # p >= 0.5  <=>  score >= 0
        ci = bootstrap_ci(y, p, "sensitivity", n_boot=400, seed=rep)
        covered += ci.lo <= true_sens <= ci.hi
    assert covered >= 85


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_bootstrap_undefined_replicates_are_dropped():
    y = np.array([0, 0, 0, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.4])
    ci = bootstrap_ci(y, p, "precision", n_boot=300, seed=0, stratified=False)
    assert 0 < ci.n_valid < 300
    # a callable returning NaN (recent scikit-learn) or raising ValueError (older) on
    # one-class replicates is treated the same way
    auc = bootstrap_ci(y, p, roc_auc_score, n_boot=300, seed=0, stratified=False)
    assert 0 < auc.n_valid < 300 and auc.value == pytest.approx(0.75)
    none = bootstrap_ci(y, p, "precision", n_boot=50, threshold=0.99)
    assert none.n_valid == 0 and math.isnan(none.lo) and math.isnan(none.value)


def test_unknown_metric_name_is_refused():
    with pytest.raises(MetricInputError, match="metric_fn"):
        bootstrap_ci([0, 1], [0.5, 0.4], "kappa")
