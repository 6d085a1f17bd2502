"""Confusion counts and the rates derived from them, vectorised.

:class:`ThresholdSweep` sorts the scores once so the dashboard can move a threshold slider
and recount in microseconds; :func:`rates_from_counts` turns counts (scalars or arrays, e.g.
one per bootstrap replicate) into the threshold metrics, NaN where a denominator is zero
(see the conventions of :mod:`workbench.evaluation`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.evaluation.inputs import check_labels_scores

#: Threshold metrics in the order the metrics table shows them.
THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "npv", "f1")


def divide_or_nan(num: np.ndarray, den: np.ndarray) -> np.ndarray:
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
        undefined (see the conventions of :mod:`workbench.evaluation`).
    """
    tp, fp, tn, fn = (np.asarray(a, dtype=float) for a in (tp, fp, tn, fn))
    return {
        "accuracy": divide_or_nan(tp + tn, tp + fp + tn + fn),
        "sensitivity": divide_or_nan(tp, tp + fn),
        "specificity": divide_or_nan(tn, tn + fp),
        "precision": divide_or_nan(tp, tp + fp),
        "npv": divide_or_nan(tn, tn + fn),
        "f1": divide_or_nan(2 * tp, 2 * tp + fp + fn),
    }


def batch_rates(Y: np.ndarray, P: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Threshold metrics of each row of the replicate matrices ``(Y, P)``."""
    pred = P >= threshold
    pos = Y == 1
    return rates_from_counts(tp=(pred & pos).sum(1), fp=(pred & ~pos).sum(1),
                             tn=(~pred & ~pos).sum(1), fn=(~pred & pos).sum(1))


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

