"""Confusion counts and rates: NaN where undefined, a sweep fast enough for a slider."""

import math
import time

import numpy as np

from workbench.evaluation.counts import (
    THRESHOLD_METRICS,
    ThresholdSweep,
    batch_rates,
    divide_or_nan,
    rates_from_counts,
)


def test_rates_from_counts_vectorised_and_nan_where_undefined():
    r = rates_from_counts(tp=[3, 0], fp=[2, 0], tn=[2, 5], fn=[1, 0])
    assert list(r) == list(THRESHOLD_METRICS)
    np.testing.assert_allclose(r["sensitivity"], [0.75, np.nan])
    np.testing.assert_allclose(r["precision"], [0.6, np.nan])
    np.testing.assert_allclose(r["specificity"], [0.5, 1.0])
    assert math.isnan(float(divide_or_nan(1, 0)))


def test_batch_rates_equal_the_sweep_row_by_row():
    rng = np.random.default_rng(5)
    Y = rng.integers(0, 2, (20, 30))
    P = rng.random((20, 30))
    rows = batch_rates(Y, P, 0.4)
    for i in range(20):
        ref = ThresholdSweep(Y[i], P[i]).table([0.4]).iloc[0]
        for name in THRESHOLD_METRICS:
            assert np.isclose(rows[name][i], ref[name], equal_nan=True), (i, name)


def test_threshold_sweep_is_fast_enough_for_a_slider():
    rng = np.random.default_rng(1)
    sweep = ThresholdSweep(rng.integers(0, 2, 5000), rng.random(5000))
    t0 = time.perf_counter()
    for t in np.linspace(0, 1, 200):
        sweep.counts(t)
    per_call = (time.perf_counter() - t0) / 200
    assert per_call < 1e-3  # microseconds in practice; generous on a loaded CI machine
