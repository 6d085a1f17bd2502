"""Threshold metrics, Youden's threshold and the metrics table (AUC and threshold metrics
with confidence intervals).

A patient is predicted positive when ``p >= threshold``; a metric whose denominator is zero
is NaN, never an error (the conventions of :mod:`workbench.evaluation`). The counting lives
in :mod:`.counts`, the intervals in :mod:`.bootstrap` and :mod:`.delong`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# ThresholdSweep, bootstrap_indices, check_labels_scores and rates_from_counts are used here
# and also imported from here by workbench.app.evals; their homes are .counts, .bootstrap
# and .inputs.
from workbench.evaluation.bootstrap import bootstrap_indices
from workbench.evaluation.counts import (
    THRESHOLD_METRICS,
    ThresholdSweep,
    batch_rates,
    rates_from_counts,
)
from workbench.evaluation.delong import delong_auc_ci
from workbench.evaluation.inputs import check_labels_scores, check_threshold


def confusion_at(y, p, thresholds) -> pd.DataFrame:
    """Confusion counts and threshold metrics at many thresholds, vectorised.

    Parameters
    ----------
    y, p
        Labels (0/1) and predicted probabilities.
    thresholds
        Array of thresholds; a patient is positive when ``p >= threshold``.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold, tp, fp, tn, fn`` and the :data:`THRESHOLD_METRICS`.

    Notes
    -----
    For repeated calls on the same predictions (a dashboard slider) keep a
    :class:`ThresholdSweep` and call its :meth:`~ThresholdSweep.counts`.
    """
    return ThresholdSweep(y, p).table(thresholds)


def confusion_matrix(y, p, threshold: float = 0.5) -> dict[str, int]:
    """Confusion counts at one threshold: ``{"tp", "fp", "tn", "fn"}``."""
    c = ThresholdSweep(y, p).counts([check_threshold(threshold)])
    return {k: int(v[0]) for k, v in c.items()}


def confusion_frame(y, p, threshold: float = 0.5) -> pd.DataFrame:
    """Confusion matrix as a tidy frame with columns ``actual, predicted, outcome, count``."""
    c = confusion_matrix(y, p, threshold)
    rows = [(1, 1, "tp"), (0, 1, "fp"), (0, 0, "tn"), (1, 0, "fn")]
    return pd.DataFrame([{"actual": a, "predicted": b, "outcome": k, "count": c[k]}
                         for a, b, k in rows])


def threshold_metrics(y, p, threshold: float = 0.5) -> dict[str, float]:
    """Counts and metrics at one threshold.

    Returns
    -------
    dict
        ``threshold, tp, fp, tn, fn`` and the :data:`THRESHOLD_METRICS` (NaN when undefined).
    """
    t = check_threshold(threshold)
    c = confusion_matrix(y, p, t)
    rates = rates_from_counts(**c)
    return {"threshold": t, **c, **{k: float(v) for k, v in rates.items()}}


def _single(metric: str):
    def fn(y, p, threshold: float = 0.5) -> float:
        return threshold_metrics(y, p, threshold)[metric]

    fn.__name__ = metric
    fn.__doc__ = (f"{metric.capitalize()} at ``threshold`` (``p >= threshold`` is positive); "
                  "NaN if undefined.")
    return fn


accuracy = _single("accuracy")
sensitivity = _single("sensitivity")
specificity = _single("specificity")
precision = _single("precision")
npv = _single("npv")
f1 = _single("f1")


def youden_threshold(y, p) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity − 1.

    **Label-fitted**: this uses the labels, so it must only ever see *training* data — the
    caller passes training out-of-fold predictions and then applies the returned threshold,
    unchanged, to the test set. Choosing it on test predictions inflates every threshold
    metric.

    Candidate thresholds are the midpoints between consecutive distinct scores (plus one
    above the maximum and one below the minimum), so the cut sits between training patients
    rather than on one of them. Ties in J go to the highest threshold (fewest false positives).

    Parameters
    ----------
    y, p
        Training labels (both classes needed) and out-of-fold probabilities.

    Returns
    -------
    float
        The chosen threshold.
    """
    y_arr, p_arr = check_labels_scores(y, p, step="youden threshold")
    u = np.unique(p_arr)
    cands = np.concatenate([[u[0] - 1e-9], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-9]])
    c = ThresholdSweep(y_arr, p_arr).counts(cands)
    r = rates_from_counts(**c)
    j = r["sensitivity"] + r["specificity"] - 1
    best = np.flatnonzero(j >= j.max() - 1e-12)
    return float(cands[best[-1]])


def metrics_table(y, p, threshold: float = 0.5, n_boot: int = 2000, seed: int = 0, *,
                  alpha: float = 0.05, stratified: bool = True) -> pd.DataFrame:
    """AUC with a DeLong CI and the threshold metrics with percentile bootstrap CIs.

    Parameters
    ----------
    y, p
        Labels (both classes needed) and probabilities of the evaluated set.
    threshold
        Decision threshold — fixed in advance or chosen on training data
        (:func:`youden_threshold`), never on these labels.
    n_boot, seed, alpha, stratified
        Bootstrap settings (see :func:`~workbench.evaluation.bootstrap.bootstrap_ci`); all
        threshold metrics share one index matrix.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, value, lo, hi, method``; rows ``auc`` then :data:`THRESHOLD_METRICS`.
    """
    y_arr, p_arr = check_labels_scores(y, p, step="metrics table")
    t = check_threshold(threshold)
    auc = delong_auc_ci(y_arr, p_arr, alpha=alpha)
    rows = [{"metric": "auc", "value": auc.auc, "lo": auc.lo, "hi": auc.hi,
             "method": "DeLong"}]
    idx = bootstrap_indices(y_arr, n_boot, seed=seed, stratified=stratified)
    reps_all = batch_rates(y_arr[idx], p_arr[idx], t)
    point = threshold_metrics(y_arr, p_arr, t)
    label = f"bootstrap percentile ({'stratified, ' if stratified else ''}n={int(n_boot)})"
    for name in THRESHOLD_METRICS:
        reps = reps_all[name][np.isfinite(reps_all[name])]
        lo, hi = (np.quantile(reps, [alpha / 2, 1 - alpha / 2]) if reps.size
                  else (np.nan, np.nan))
        rows.append({"metric": name, "value": point[name], "lo": float(lo), "hi": float(hi),
                     "method": label})
    return pd.DataFrame(rows, columns=["metric", "value", "lo", "hi", "method"])
