"""Threshold metrics, Youden's threshold, bootstrap confidence intervals and the metrics table.

Conventions used throughout :mod:`workbench.evaluation`:

* ``y`` holds the true labels (1 = pCR, 0 = no pCR); ``p`` the predicted probability of pCR.
* A patient is **predicted positive when** ``p >= threshold`` (ties go to the positive class).
* A metric whose denominator is zero is **undefined and returned as NaN**, never an error:
  sensitivity without positive patients, specificity without negative patients, precision
  (PPV) without positive predictions, NPV without negative predictions, F1 when there are
  neither positive patients nor positive predictions. Bootstrap replicates in which the metric
  is undefined are dropped from the percentile interval (their number is reported).

Everything here is a pure function of numpy arrays; :class:`ThresholdSweep` sorts the scores
once so the dashboard can move a threshold slider and recount in microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

#: Threshold metrics in the order the metrics table shows them.
THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "npv", "f1")


class MetricInputError(WorkbenchError, ValueError):
    """Labels or scores handed to an evaluation function are unusable."""


# --------------------------------------------------------------------------- validation
def check_labels_scores(y, p, *, step: str = "metrics", need_both_classes: bool = True,
                        name: str = "p") -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and scores and return them as 1-D numpy arrays.

    Parameters
    ----------
    y
        True labels, 0/1 or boolean, one per patient.
    p
        Scores (usually probabilities), one per patient; must be finite.
    step
        Name of the calling step, used in error messages.
    need_both_classes
        Refuse labels with only one class (AUC, sensitivity/specificity CIs need both).
    name
        Name of the score argument, used in error messages.

    Returns
    -------
    y, p
        ``y`` as ``int8`` and ``p`` as ``float64``.

    Raises
    ------
    MetricInputError
        Shapes differ, labels are not binary, scores are NaN/infinite, or (when
        ``need_both_classes``) one class is absent; the message gives the class counts.
    """
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.ndim != 1 or p_arr.ndim != 1:
        raise MetricInputError(
            f"y and {name} must be 1-D, got shapes {y_arr.shape} and {p_arr.shape}.", step=step)
    if y_arr.shape[0] != p_arr.shape[0]:
        raise MetricInputError(
            f"y and {name} must have the same length, got {y_arr.shape[0]} and {p_arr.shape[0]}.",
            step=step)
    if y_arr.shape[0] == 0:
        raise MetricInputError("no patients: y is empty.", step=step)
    try:
        y_float = y_arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"labels must be 0/1, got dtype {y_arr.dtype}.", step=step) from exc
    bad = ~np.isin(y_float, (0.0, 1.0))
    if bad.any():
        raise MetricInputError(
            f"labels must be 0/1; {int(bad.sum())} value(s) are not, e.g. "
            f"{y_arr[bad][:3].tolist()} (missing labels must be dropped first).", step=step)
    bad_p = ~np.isfinite(p_arr)
    if bad_p.any():
        where = np.flatnonzero(bad_p)[:5].tolist()
        raise MetricInputError(
            f"{name} has {int(bad_p.sum())} NaN/infinite value(s) (positions {where}...). "
            "Every patient needs a prediction; check the model's output.", step=step)
    y_int = y_float.astype(np.int8)
    if need_both_classes:
        n_pos = int(y_int.sum())
        n_neg = int(y_int.size - n_pos)
        if n_pos == 0 or n_neg == 0:
            raise MetricInputError(
                f"both classes are needed, got {n_pos} positive (pCR) and {n_neg} negative "
                "patients. Evaluate on a set containing both outcomes.", step=step)
    return y_int, p_arr


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not np.isfinite(t):
        raise MetricInputError(f"threshold must be a finite number, got {threshold!r}.",
                               step="metrics")
    return t


# --------------------------------------------------------------------------- counts -> rates
def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0`` (no warning, no ZeroDivisionError)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def rates_from_counts(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    """Threshold metrics from confusion counts (vectorised over arrays of counts).

    Parameters
    ----------
    tp, fp, tn, fn
        Confusion counts; scalars or arrays of one shape.

    Returns
    -------
    dict
        ``accuracy, sensitivity, specificity, precision, npv, f1`` as float arrays, NaN where
        undefined (see the module docstring).
    """
    tp, fp, tn, fn = (np.asarray(a, dtype=float) for a in (tp, fp, tn, fn))
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


# --------------------------------------------------------------------------- sweeps
class ThresholdSweep:
    """Confusion counts at any threshold after sorting the scores once.

    Build it once per prediction set (O(n log n)); each call to :meth:`counts` costs
    O(k log n) for k thresholds, which is microseconds for a dashboard slider.

    Parameters
    ----------
    y, p
        Labels (0/1) and scores; validated by :func:`check_labels_scores` (one class allowed).
    """

    def __init__(self, y, p) -> None:
        y_arr, p_arr = check_labels_scores(y, p, step="threshold sweep", need_both_classes=False)
        self.pos_ = np.sort(p_arr[y_arr == 1])
        self.neg_ = np.sort(p_arr[y_arr == 0])

    def counts(self, thresholds) -> dict[str, np.ndarray]:
        """Return ``tp, fp, tn, fn`` (int arrays) for each threshold (``p >= t`` is positive)."""
        t = np.atleast_1d(np.asarray(thresholds, dtype=float))
        # searchsorted(..., "left") counts scores strictly below t: those are predicted negative
        fn = np.searchsorted(self.pos_, t, side="left")
        tn = np.searchsorted(self.neg_, t, side="left")
        return {"tp": self.pos_.size - fn, "fp": self.neg_.size - tn, "tn": tn, "fn": fn}

    def table(self, thresholds) -> pd.DataFrame:
        """Counts and metrics at each threshold as a DataFrame (one row per threshold)."""
        t = np.atleast_1d(np.asarray(thresholds, dtype=float))
        c = self.counts(t)
        return pd.DataFrame({"threshold": t, **c, **rates_from_counts(**c)})


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
    c = ThresholdSweep(y, p).counts([_check_threshold(threshold)])
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
    t = _check_threshold(threshold)
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


# --------------------------------------------------------------------------- bootstrap
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


def _batch_rates(Y: np.ndarray, P: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Threshold metrics of each row of the replicate matrices ``(Y, P)``."""
    pred = P >= threshold
    pos = Y == 1
    return rates_from_counts(tp=(pred & pos).sum(1), fp=(pred & ~pos).sum(1),
                             tn=(~pred & ~pos).sum(1), fn=(~pred & pos).sum(1))


def batch_auc(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """AUC (Mann-Whitney, midranks for ties) of each row of ``(Y, P)``; NaN for one-class rows."""
    from scipy.stats import rankdata

    ranks = rankdata(P, axis=1)
    n1 = Y.sum(1).astype(float)
    n0 = Y.shape[1] - n1
    u = (ranks * (Y == 1)).sum(1) - n1 * (n1 + 1) / 2
    return _ratio(u, n1 * n0)


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
            t = _check_threshold(threshold)

            def batch(Y, P):
                return _batch_rates(Y, P, t)[metric_fn]
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


# --------------------------------------------------------------------------- table
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
        Bootstrap settings (see :func:`bootstrap_ci`); all threshold metrics share one index
        matrix.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, value, lo, hi, method``; rows ``auc`` then :data:`THRESHOLD_METRICS`.
    """
    from workbench.evaluation.delong import delong_auc_ci

    y_arr, p_arr = check_labels_scores(y, p, step="metrics table")
    t = _check_threshold(threshold)
    auc = delong_auc_ci(y_arr, p_arr, alpha=alpha)
    rows = [{"metric": "auc", "value": auc.auc, "lo": auc.lo, "hi": auc.hi,
             "method": "DeLong"}]
    idx = bootstrap_indices(y_arr, n_boot, seed=seed, stratified=stratified)
    reps_all = _batch_rates(y_arr[idx], p_arr[idx], t)
    point = threshold_metrics(y_arr, p_arr, t)
    label = f"bootstrap percentile ({'stratified, ' if stratified else ''}n={int(n_boot)})"
    for name in THRESHOLD_METRICS:
        reps = reps_all[name][np.isfinite(reps_all[name])]
        lo, hi = (np.quantile(reps, [alpha / 2, 1 - alpha / 2]) if reps.size
                  else (np.nan, np.nan))
        rows.append({"metric": name, "value": point[name], "lo": float(lo), "hi": float(hi),
                     "method": label})
    return pd.DataFrame(rows, columns=["metric", "value", "lo", "hi", "method"])
