"""External calibration, recalibration, case mix and membership (workbench.external)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from workbench.evaluation.calibration import calibration_intercept_slope
from workbench.external import (
    case_mix,
    membership_model,
    recalibrate,
    truth_calibration,
    validation_tables,
)


def _cohort(n: int, seed: int, a: float = -0.6, b: float = 0.8):
    """Model probabilities p and a truth logit(p_true) = a + b logit(p)."""
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-0.8, 1.2, n))
    p_true = expit(a + b * logit(p))
    y = (rng.random(n) < p_true).astype(int)
    return y, p, p_true


def test_truth_calibration_recovers_the_generating_intercept_and_slope():
    _, p, p_true = _cohort(2000, 0, a=-0.6, b=0.8)
    truth = truth_calibration(p, p_true)
    assert truth["slope"] == pytest.approx(0.8, abs=1e-6)
    # CITL has lp as an offset: not the generating a, but the shift that matches the mean risk
    assert np.mean(expit(truth["citl"] + logit(p))) == pytest.approx(p_true.mean(), abs=1e-6)


def test_the_intervals_cover_the_generator_truth_at_about_their_level():
    hits_citl = hits_slope = 0
    reps = 200
    for seed in range(reps):
        y, p, p_true = _cohort(400, seed)
        truth = truth_calibration(p, p_true)
        fit = calibration_intercept_slope(y, p)
        hits_citl += abs(fit.intercept - truth["citl"]) <= 1.96 * fit.intercept_se
        hits_slope += abs(fit.slope - truth["slope"]) <= 1.96 * fit.slope_se
    assert 0.90 <= hits_citl / reps <= 0.99
    assert 0.90 <= hits_slope / reps <= 0.99


def test_recalibration_fixes_calibration_in_the_large_out_of_sample():
    y, p, _ = _cohort(1000, 3, a=-1.0, b=1.0)
    tables = validation_tables(y, p, threshold=0.5, n_boot=200, seed=0)
    m = tables["metrics"].set_index(["variant", "metric"])["estimate"]
    assert m["original", "citl"] == pytest.approx(-1.0, abs=0.25)
    assert abs(m["recalibrated_intercept", "citl"]) < 1e-6  # in-sample: exact by construction
    assert abs(m["recalibrated_intercept", "citl_cv"]) < 0.1  # cross-fitted: what a new
    assert abs(m["recalibrated_logistic", "citl_cv"]) < 0.1   # patient of the site sees
    # a monotone update leaves discrimination alone
    assert m["recalibrated_logistic", "auc"] == pytest.approx(m["original", "auc"])
    assert set(tables["reliability"]["variant"]) == {"original", "recalibrated_intercept",
                                                     "recalibrated_logistic"}
    assert {"treat_all", "treat_none"} <= set(tables["decision_curve"]["variant"])
    recal = recalibrate(y, p)
    assert recal.b_logistic == pytest.approx(1.0, abs=0.2)


def test_case_mix_standardised_differences():
    dev = pd.DataFrame({"age": [40.0, 50, 60, 50], "er": ["positive"] * 2 + ["negative"] * 2,
                        "pcr": [0, 1, 0, 1]})
    ext = pd.DataFrame({"age": [50.0, 60, 70, 60], "er": ["positive"] * 4, "pcr": [0, 0, 0, 1]})
    table = case_mix(dev, ext).set_index(["variable", "level"])
    sd = np.sqrt((np.var([40, 50, 60, 50], ddof=1) + np.var([50, 60, 70, 60], ddof=1)) / 2)
    assert table.loc[("age", ""), "smd"] == pytest.approx(10 / sd)
    assert table.loc[("er", "positive"), "external"] == "4 (100.0 %)"
    assert table.loc[("er", "positive"), "smd"] == pytest.approx(0.5 / np.sqrt(0.125))
    assert "laterality" not in table.index.get_level_values(0)  # in neither cohort


def test_membership_auc_near_half_for_one_population_and_high_for_a_shift():
    rng = np.random.default_rng(0)
    a = pd.DataFrame(rng.normal(size=(300, 3)), columns=["x", "y", "z"])
    b = pd.DataFrame(rng.normal(size=(300, 3)), columns=["x", "y", "z"])
    same, _ = membership_model(a, b, seed=0)
    assert same["auc_low"] < 0.5 < same["auc_high"] or abs(same["auc"] - 0.5) < 0.06
    shifted, coefs = membership_model(a, b.assign(y=b["y"] + 1.5), seed=0)
    assert shifted["auc"] > 0.8
    assert coefs.iloc[0]["feature"] == "y"
