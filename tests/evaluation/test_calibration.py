import numpy as np
import pytest
from scipy.special import expit

from workbench.evaluation.calibration import (
    brier_score,
    calibration_intercept_slope,
    calibration_table,
    clipped_logit,
    reliability_curve,
    wilson_interval,
)
from workbench.evaluation.inputs import MetricInputError


def _calibrated(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-0.5, 1.3, n))
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_perfectly_calibrated_probabilities():
    y, p = _calibrated()
    fit = calibration_intercept_slope(y, p)
    assert abs(fit.intercept) < 3 * fit.intercept_se and abs(fit.intercept) < 0.1
    assert abs(fit.slope - 1) < 3 * fit.slope_se and abs(fit.slope - 1) < 0.1
    assert fit.n == 5000


def test_overfit_and_underfit_probabilities():
    y, p = _calibrated(seed=1)
    too_extreme = expit(2 * clipped_logit(p))
    too_moderate = expit(0.5 * clipped_logit(p))
    assert calibration_intercept_slope(y, too_extreme).slope == pytest.approx(0.5, abs=0.06)
    assert calibration_intercept_slope(y, too_moderate).slope == pytest.approx(2.0, abs=0.25)
    # systematic over-prediction of risk -> negative calibration-in-the-large
    too_high = expit(clipped_logit(p) + 1.0)
    assert calibration_intercept_slope(y, too_high).intercept == pytest.approx(-1.0, abs=0.1)


def test_zero_and_one_probabilities_are_clipped_not_infinite():
    y = np.array([0, 1, 1, 0, 1, 0, 1, 0, 0, 1])
    p = np.array([0.0, 0.1, 1.0, 0.8, 0.3, 0.6, 0.9, 0.4, 0.2, 0.7])
    fit = calibration_intercept_slope(y, p)
    assert all(np.isfinite(v) for v in fit)
    assert np.isfinite(clipped_logit([0.0, 1.0])).all()


def test_separated_data_warns_instead_of_failing(caplog):
    fit = calibration_intercept_slope([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9])
    assert fit.slope > 5  # the MLE diverges: a huge slope, flagged in the log
    assert "did not converge" in caplog.text


def test_brier_score():
    assert brier_score([0, 1], [0.0, 1.0]) == 0.0
    assert brier_score([0, 1, 1, 0], [0.5] * 4) == pytest.approx(0.25)
    assert brier_score([1, 0], [0.2, 0.6]) == pytest.approx((0.64 + 0.36) / 2)


def test_reliability_curve_quantile_and_uniform():
    y, p = _calibrated(n=2000, seed=2)
    q = reliability_curve(y, p, n_bins=10)
    assert len(q) == 10 and q["n"].sum() == 2000
    assert q["n"].min() >= 195  # quantile bins hold about n / 10 patients
    assert (q["observed_lo"] <= q["observed"]).all() and (q["observed"] <= q["observed_hi"]).all()
    # calibrated: the Wilson intervals cover the mean prediction in (nearly) every bin
    covered = (q["observed_lo"] <= q["mean_predicted"]) & (q["mean_predicted"] <= q["observed_hi"])
    assert covered.sum() >= 8
    u = reliability_curve(y, p, n_bins=5, strategy="uniform")
    assert u["n"].sum() == 2000
    assert np.allclose(u["bin_hi"] - u["bin_lo"], 0.2)
    assert ((u["mean_predicted"] >= u["bin_lo"]) & (u["mean_predicted"] <= u["bin_hi"])).all()


def test_reliability_curve_edge_cases():
    # p = 1 falls in the last uniform bin; empty bins are dropped
    r = reliability_curve([0, 1, 1], [0.0, 1.0, 1.0], n_bins=4, strategy="uniform")
    assert list(r["bin"]) == [0, 3] and list(r["n"]) == [1, 2]
    # ties merge quantile edges instead of producing empty bins
    r = reliability_curve([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], n_bins=10)
    assert len(r) == 1 and r["observed"].iloc[0] == 0.5
    with pytest.raises(MetricInputError, match="strategy"):
        reliability_curve([0, 1], [0.2, 0.4], strategy="kmeans")


def test_wilson_interval():
    lo, hi = wilson_interval([0, 5, 10], [10, 10, 10])
    assert lo[0] == 0 and hi[2] == 1
    assert lo[1] == pytest.approx(0.2366, abs=1e-3) and hi[1] == pytest.approx(0.7634, abs=1e-3)
    lo, hi = wilson_interval([0], [0])
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def test_calibration_table_and_bad_input():
    y, p = _calibrated(n=500, seed=3)
    t = calibration_table(y, p)
    assert list(t["metric"]) == ["brier", "calibration_intercept", "calibration_slope"]
    assert (t["lo"].iloc[1:] < t["value"].iloc[1:]).all()
    with pytest.raises(MetricInputError, match=r"\[0, 1\]"):
        calibration_intercept_slope([0, 1], [-1.0, 2.0])
    with pytest.raises(MetricInputError, match="both classes"):
        calibration_intercept_slope([1, 1], [0.2, 0.9])
