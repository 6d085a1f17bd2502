import numpy as np
import pytest

from workbench.evaluation.decision_curve import (
    DEFAULT_THRESHOLDS,
    decision_curve,
    net_benefit,
    treat_all_net_benefit,
)
from workbench.evaluation.inputs import MetricInputError
from workbench.evaluation.metrics import threshold_metrics


def _data(n=200, prevalence=0.3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n, int)
    y[: int(n * prevalence)] = 1
    rng.shuffle(y)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    return y, p


def test_default_grid():
    assert len(DEFAULT_THRESHOLDS) == 99
    assert DEFAULT_THRESHOLDS[0] == 0.01 and DEFAULT_THRESHOLDS[-1] == 0.99
    assert 0.3 in DEFAULT_THRESHOLDS


def test_treat_all_is_zero_at_the_prevalence():
    y, _ = _data(prevalence=0.3)
    nb = treat_all_net_benefit(y, [0.3])
    assert nb[0] == pytest.approx(0.0, abs=1e-12)
    assert treat_all_net_benefit(y, [0.01])[0] == pytest.approx(0.3 - 0.7 * 0.01 / 0.99)


def test_perfect_model_net_benefit_is_the_prevalence():
    y, _ = _data(prevalence=0.25)
    nb = net_benefit(y, y.astype(float))
    np.testing.assert_allclose(nb, 0.25)


def test_net_benefit_matches_formula():
    y, p = _data(seed=3)
    t = np.array([0.1, 0.37, 0.5, 0.8])
    nb = net_benefit(y, p, t)
    for ti, got in zip(t, nb, strict=True):
        m = threshold_metrics(y, p, ti)
        assert got == pytest.approx(m["tp"] / len(y) - m["fp"] / len(y) * ti / (1 - ti))


def test_decision_curve_tidy_frame():
    y, p = _data(seed=1)
    dc = decision_curve(y, {"radiomics": p, "clinical": np.full(len(y), 0.3)},
                        interventions_avoided=True)
    assert list(dc.columns) == ["threshold", "strategy", "net_benefit", "interventions_avoided"]
    assert list(dc["strategy"].unique()) == ["radiomics", "clinical", "treat all", "treat none"]
    assert len(dc) == 4 * 99
    assert (dc.loc[dc.strategy == "treat none", "net_benefit"] == 0).all()
    assert (dc.loc[dc.strategy == "treat all", "interventions_avoided"] == 0).all()
    # a constant 0.3 prediction is "treat all" below 0.3 and "treat none" above it
    clin = dc[dc.strategy == "clinical"].set_index("threshold")["net_benefit"]
    every = dc[dc.strategy == "treat all"].set_index("threshold")["net_benefit"]
    assert clin.loc[0.2] == pytest.approx(every.loc[0.2]) and clin.loc[0.4] == 0
    single = decision_curve(y, p, [0.2, 0.5], model_name="fusion")
    assert list(single["strategy"].unique()) == ["fusion", "treat all", "treat none"]


def test_bad_thresholds_and_names():
    y, p = _data()
    with pytest.raises(MetricInputError, match="strictly between 0 and 1"):
        net_benefit(y, p, [0.0, 0.5])
    with pytest.raises(MetricInputError, match="reserved"):
        decision_curve(y, {"treat all": p})
