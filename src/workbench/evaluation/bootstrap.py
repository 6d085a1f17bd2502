"""Percentile bootstrap confidence intervals, vectorised over an index matrix.

Replicates in which a metric is undefined are dropped from the interval, and their number
is reported (see the conventions of :mod:`workbench.evaluation`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from workbench.evaluation.counts import THRESHOLD_METRICS, batch_rates, divide_or_nan
from workbench.evaluation.inputs import MetricInputError, check_labels_scores, check_threshold


class BootstrapCI(NamedTuple):
    """A point estimate with a percentile bootstrap interval."""

    value: float
    lo: float
    hi: float
    n_valid: int


def bootstrap_indices(y, n_boot: int = 2000, *, seed: int = 0,
                      stratified: bool = True) -> np.ndarray:
    """Resampling index matrix of shape ``(n_boot, n)``.

    With ``stratified=True`` each replicate keeps the number of positive and negative patients
    (as pROC's default), so every replicate has both classes.
    """
    y_arr = np.asarray(y)
    n = y_arr.size
    if int(n_boot) < 1:
        raise MetricInputError(f"n_boot must be >= 1, got {n_boot}.", step="bootstrap")
    rng = np.random.default_rng(seed)
    if not stratified:
        return rng.integers(0, n, size=(int(n_boot), n))
    blocks = []
    for cls in (1, 0):
        members = np.flatnonzero(y_arr == cls)
        if members.size:
            blocks.append(members[rng.integers(0, members.size, size=(int(n_boot), members.size))])
    return np.concatenate(blocks, axis=1)


def batch_auc(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """AUC (Mann-Whitney, midranks for ties) of each row of ``(Y, P)``; NaN for one-class rows."""
    ranks = rankdata(P, axis=1)
    n1 = Y.sum(1).astype(float)
    n0 = Y.shape[1] - n1
    u = (ranks * (Y == 1)).sum(1) - n1 * (n1 + 1) / 2
    return divide_or_nan(u, n1 * n0)


def _call_or_nan(fn, y: np.ndarray, p: np.ndarray) -> float:
    try:
        return float(fn(y, p))
    except ValueError:  # e.g. roc_auc_score on a one-class replicate: undefined, not fatal
        return np.nan


def bootstrap_ci(y, p, metric_fn: str | Callable[[np.ndarray, np.ndarray], float], *,
                 n_boot: int = 2000, alpha: float = 0.05, seed: int = 0,
                 stratified: bool = True, threshold: float = 0.5) -> BootstrapCI:
    """Percentile bootstrap confidence interval of a metric.

    Parameters
    ----------
    y, p
        Labels (0/1) and probabilities.
    metric_fn
        A name — ``"auc"`` or one of :data:`THRESHOLD_METRICS` (at ``threshold``) — computed
        for all replicates at once on an index matrix; or any callable ``f(y, p) -> float``,
        called once per replicate (a replicate where it returns NaN or raises ValueError
        counts as undefined).
    n_boot, alpha, seed
        Number of replicates, 1 − confidence level, seed of the resampling generator.
    stratified
        Resample positives and negatives separately (keeps the class counts).
    threshold
        Threshold for the named threshold metrics.

    Returns
    -------
    BootstrapCI
        ``value`` is the metric on the original data; ``lo``/``hi`` the ``alpha/2`` and
        ``1 − alpha/2`` percentiles of the replicates where the metric is defined
        (``n_valid`` of them); all NaN when none is.
    """
    y_arr, p_arr = check_labels_scores(y, p, step="bootstrap", need_both_classes=False)
    if not 0 < alpha < 1:
        raise MetricInputError(f"alpha must be in (0, 1), got {alpha}.", step="bootstrap")
    idx = bootstrap_indices(y_arr, n_boot, seed=seed, stratified=stratified)
    if isinstance(metric_fn, str):
        if metric_fn == "auc":
            batch = batch_auc
        elif metric_fn in THRESHOLD_METRICS:
            t = check_threshold(threshold)

            def batch(Y, P):
                return batch_rates(Y, P, t)[metric_fn]
        else:
            raise MetricInputError(
                f"metric_fn must be 'auc', one of {THRESHOLD_METRICS} or a callable, "
                f"got {metric_fn!r}.", step="bootstrap")
        value = float(batch(y_arr[None, :], p_arr[None, :])[0])
        reps = batch(y_arr[idx], p_arr[idx])
    else:
        value = float(metric_fn(y_arr, p_arr))
        reps = np.array([_call_or_nan(metric_fn, y_arr[row], p_arr[row]) for row in idx])
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return BootstrapCI(value, np.nan, np.nan, 0)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return BootstrapCI(value, float(lo), float(hi), int(reps.size))

