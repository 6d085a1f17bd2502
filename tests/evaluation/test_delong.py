import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from workbench.evaluation.delong import (
    delong_auc_ci,
    delong_components,
    delong_covariance,
    delong_test,
)
from workbench.evaluation.inputs import MetricInputError


def brute_force_delong(y, scores):
    """DeLong (1988) from the m × n kernel matrix psi(X_i, Y_j): slow but obviously right."""
    y = np.asarray(y)
    scores = np.atleast_2d(scores)
    aucs, v10s, v01s = [], [], []
    for s in scores:
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    v10, v01 = np.array(v10s), np.array(v01s)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return np.array(aucs), v10, v01, s10 / m + s01 / n


def _data(n=120, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    p1 = 1 / (1 + np.exp(-(1.2 * y + rng.normal(0, 1, n))))
    p2 = 1 / (1 + np.exp(-(0.6 * y + 0.5 * np.log(p1 / (1 - p1)) + rng.normal(0, 1, n))))
    if ties:  # a coarse score (e.g. a grade) has many ties
        p1, p2 = np.round(p1, 1), np.round(p2 * 4) / 4
    return y, p1, p2


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_matches_brute_force_and_sklearn(ties):
    y, p1, p2 = _data(ties=ties)
    aucs, cov = delong_covariance(y, np.vstack([p1, p2]))
    b_aucs, b_v10, b_v01, b_cov = brute_force_delong(y, np.vstack([p1, p2]))
    np.testing.assert_allclose(aucs, b_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, b_cov, atol=1e-12)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, p1), roc_auc_score(y, p2)], atol=1e-12)
    _, v10, v01 = delong_components(y, np.vstack([p1, p2]))
    np.testing.assert_allclose(v10, b_v10, atol=1e-12)
    np.testing.assert_allclose(v01, b_v01, atol=1e-12)


def test_hand_computed_example():
    # positives 0.35, 0.8; negatives 0.1, 0.4 (and a tie case below).
    # V10 = [1/2, 1], V01 = [1, 1/2]; AUC = 3/4; var = 0.125/2 + 0.125/2 = 0.125
    y = [0, 0, 1, 1]
    ci = delong_auc_ci(y, [0.1, 0.4, 0.35, 0.8])
    assert ci.auc == pytest.approx(0.75)
    assert ci.se == pytest.approx(np.sqrt(0.125))
    z = norm.ppf(0.975)
    assert ci.lo == pytest.approx(0.75 - z * np.sqrt(0.125))
    assert ci.hi == 1.0  # 0.75 + 0.69 clipped
    # ties between a positive and a negative count one half: positives 0.4, 0.3 against
    # negatives 0.1, 0.4 -> psi = [[1, 1/2], [1, 0]]: AUC = 5/8, V10 = [3/4, 1/2],
    # V01 = [1, 1/4]; var = (1/32)/2 + (9/32)/2 = 5/32
    tie = delong_auc_ci(y, [0.1, 0.4, 0.4, 0.3])
    assert tie.auc == pytest.approx(0.625)
    assert tie.se == pytest.approx(np.sqrt(5 / 32))


def test_ci_contains_auc_and_logit_ci_stays_inside_unit_interval():
    y, p1, _ = _data(n=40, seed=3)
    plain = delong_auc_ci(y, p1)
    logit = delong_auc_ci(y, p1, transform="logit")
    assert plain.lo < plain.auc < plain.hi
    assert 0 < logit.lo < logit.auc < logit.hi < 1
    assert logit.se == plain.se
    narrower = delong_auc_ci(y, p1, alpha=0.2)
    assert plain.lo < narrower.lo and narrower.hi < plain.hi


def test_perfect_separation_gives_zero_se():
    ci = delong_auc_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert ci == (1.0, 1.0, 1.0, 0.0)


def test_paired_test_matches_brute_force_and_is_symmetric():
    y, p1, p2 = _data(seed=5)
    res = delong_test(y, p1, p2)
    aucs, _, _, cov = brute_force_delong(y, np.vstack([p1, p2]))
    z = (aucs[0] - aucs[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert res.z == pytest.approx(z, rel=1e-10)
    assert res.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-10)
    auc1, auc2, z2, p2v = delong_test(y, p2, p1)  # unpacks as a 4-tuple
    assert (auc1, auc2) == (res.auc2, res.auc1)
    assert z2 == pytest.approx(-res.z) and p2v == pytest.approx(res.p_value)


def test_paired_test_identical_and_monotone_models():
    y, p1, _ = _data(seed=1)
    assert delong_test(y, p1, p1)[2:] == (0.0, 1.0)
    # a monotone transform ranks patients identically: same AUC, no difference
    assert delong_test(y, p1, np.log(p1))[2:] == (0.0, 1.0)


def test_paired_test_detects_a_real_difference():
    rng = np.random.default_rng(11)
    y = (rng.random(300) < 0.4).astype(int)
    good = 2.0 * y + rng.normal(0, 1, 300)
    weak = 0.3 * y + rng.normal(0, 1, 300)
    res = delong_test(y, good, weak)
    assert res.auc1 > res.auc2 and res.p_value < 1e-6


def test_single_class_and_nan_are_refused_with_context():
    with pytest.raises(MetricInputError, match=r"3 positive \(pCR\) and 0 negative"):
        delong_auc_ci([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(MetricInputError, match="NaN"):
        delong_auc_ci([0, 1, 1], [0.2, np.nan, 0.9])
    with pytest.raises(MetricInputError, match="NaN"):
        delong_test([0, 1, 1], [0.2, 0.4, 0.9], [0.2, np.nan, 0.9])
    with pytest.raises(MetricInputError, match="same patients"):
        delong_test([0, 1, 1], [0.2, 0.4, 0.9], [0.2, 0.9])
    with pytest.raises(MetricInputError, match="transform"):
        delong_auc_ci([0, 1], [0.1, 0.9], transform="probit")


def test_one_patient_in_a_class_gives_nan_interval_not_an_error():
    ci = delong_auc_ci([0, 0, 0, 1], [0.1, 0.2, 0.6, 0.5])
    assert ci.auc == pytest.approx(2 / 3)
    assert np.isnan(ci.se) and np.isnan(ci.lo) and np.isnan(ci.hi)
