"""DeLong's AUC variance, confidence interval and paired test, in O(n log n).

The AUC is the Mann-Whitney statistic (ties count one half). DeLong, DeLong & Clarke-Pearson
(1988) estimate its variance from *structural components* (placement values): for a positive
patient ``i``, ``V10[i]`` is the fraction of negatives scored below it; for a negative ``j``,
``V01[j]`` is the fraction of positives scored above it (ties count one half). Then

    var(AUC) = var(V10) / m + var(V01) / n        (m positives, n negatives, ddof = 1)

and, for k models scored on the same patients, the same formula with covariance matrices gives
the k × k covariance of the AUCs, which is what the paired test needs.

Sun & Xu (2014, IEEE Signal Processing Letters 21:1389) showed the components come from three
midrank vectors — within positives, within negatives, and over all patients — so no m × n
comparison matrix is built: ``V10 = (Tz[:m] − Tx) / n`` and ``V01 = 1 − (Tz[m:] − Ty) / m``.
Midranks (average ranks of ties) come from :func:`scipy.stats.rankdata`, O(n log n).

The confidence interval is the Wald interval ``AUC ± z·SE`` on the AUC scale clipped to
[0, 1], which is what pROC's ``ci.auc(method = "delong")`` reports; ``transform="logit"``
builds it on the logit scale instead (never leaves (0, 1), more accurate near 1 in small
samples).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from scipy.stats import norm, rankdata

from workbench.evaluation.inputs import MetricInputError, check_labels_scores


class AucCI(NamedTuple):
    """AUC with its DeLong standard error and confidence interval."""

    auc: float
    lo: float
    hi: float
    se: float


class DelongTest(NamedTuple):
    """Paired DeLong test of two AUCs on the same patients (unpacks as a 4-tuple)."""

    auc1: float
    auc2: float
    z: float
    p_value: float


def delong_components(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong structural components of k score vectors (Sun & Xu's algorithm).

    Parameters
    ----------
    y
        Labels (0/1), both classes present.
    scores
        Array ``(n_patients,)`` or ``(k, n_patients)``; higher means more likely positive.

    Returns
    -------
    aucs : ndarray, shape (k,)
    v10 : ndarray, shape (k, m)
        Placement of each positive among the negatives.
    v01 : ndarray, shape (k, n)
        Placement of each negative among the positives.
    """
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    y_arr = None
    for row in s:  # validate every model's scores against the labels
        y_arr, _ = check_labels_scores(y, row, step="delong")
    pos = y_arr == 1
    x, z_neg = s[:, pos], s[:, ~pos]
    m, n = x.shape[1], z_neg.shape[1]
    tx = rankdata(x, axis=1)
    ty = rankdata(z_neg, axis=1)
    tz = rankdata(np.concatenate([x, z_neg], axis=1), axis=1)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    aucs = v10.mean(axis=1)
    return aucs, v10, v01


def delong_covariance(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance matrix for k models on the same patients.

    Returns
    -------
    aucs : ndarray, shape (k,)
    cov : ndarray, shape (k, k)
        NaN when a class has fewer than 2 patients (the variance is then undefined).
    """
    aucs, v10, v01 = delong_components(y, scores)
    k, m = v10.shape
    n = v01.shape[1]
    if m < 2 or n < 2:
        return aucs, np.full((k, k), np.nan)
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return aucs, s10 / m + s01 / n


def delong_auc_ci(y, p, alpha: float = 0.05, *,
                  transform: Literal["none", "logit"] = "none") -> AucCI:
    """AUC with DeLong standard error and ``1 − alpha`` confidence interval.

    Parameters
    ----------
    y, p
        Labels (0/1, both classes needed) and scores (finite).
    alpha
        1 − confidence level.
    transform
        ``"none"`` (default, as pROC): ``AUC ± z·SE`` clipped to [0, 1]. ``"logit"``: the
        interval ``logit(AUC) ± z·SE / (AUC (1 − AUC))`` mapped back; when the AUC is 0 or 1
        the SE is 0 and the interval collapses to the point.

    Returns
    -------
    AucCI
        ``auc, lo, hi, se``; ``se``/``lo``/``hi`` are NaN when a class has a single patient.

    Raises
    ------
    MetricInputError
        One class only (message gives the counts), NaN scores, bad ``alpha``/``transform``.
    """
    if not 0 < alpha < 1:
        raise MetricInputError(f"alpha must be in (0, 1), got {alpha}.", step="delong")
    if transform not in ("none", "logit"):
        raise MetricInputError(
            f"transform must be 'none' or 'logit', got {transform!r}.", step="delong")
    aucs, cov = delong_covariance(y, p)
    auc = float(aucs[0])
    se = float(np.sqrt(max(cov[0, 0], 0.0))) if np.isfinite(cov[0, 0]) else np.nan
    z = norm.ppf(1 - alpha / 2)
    if not np.isfinite(se):
        return AucCI(auc, np.nan, np.nan, np.nan)
    if transform == "logit" and 0 < auc < 1:
        centre = np.log(auc / (1 - auc))
        half = z * se / (auc * (1 - auc))
        lo, hi = 1 / (1 + np.exp(-(centre - half))), 1 / (1 + np.exp(-(centre + half)))
    else:
        lo, hi = auc - z * se, auc + z * se
    return AucCI(auc, float(np.clip(lo, 0, 1)), float(np.clip(hi, 0, 1)), se)


def delong_test(y, p1, p2) -> DelongTest:
    """Two-sided DeLong test that two models scored on the same patients have equal AUCs.

    The test uses the covariance of the two AUCs (the curves are correlated because the
    patients are shared): ``z = (AUC1 − AUC2) / sqrt(var1 + var2 − 2 cov)``.

    Parameters
    ----------
    y
        Labels (0/1, both classes needed).
    p1, p2
        Scores of the two models for the same patients, in the same order.

    Returns
    -------
    DelongTest
        ``(auc1, auc2, z, p_value)``. When the variance of the difference is zero (e.g.
        identical rankings) and the AUCs are equal, ``z = 0`` and ``p = 1`` (as pROC);
        NaN when a class has a single patient.
    """
    a1 = np.asarray(p1, dtype=float)
    a2 = np.asarray(p2, dtype=float)
    if a1.shape != a2.shape:
        raise MetricInputError(
            f"p1 and p2 must score the same patients, got shapes {a1.shape} and {a2.shape}.",
            step="delong test")
    aucs, cov = delong_covariance(y, np.vstack([a1, a2]))
    auc1, auc2 = float(aucs[0]), float(aucs[1])
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if not np.isfinite(var):
        return DelongTest(auc1, auc2, np.nan, np.nan)
    diff = auc1 - auc2
    if var <= 1e-15:
        if abs(diff) <= 1e-12:
            return DelongTest(auc1, auc2, 0.0, 1.0)
        return DelongTest(auc1, auc2, float(np.sign(diff) * np.inf), 0.0)
    z = diff / np.sqrt(var)
    return DelongTest(auc1, auc2, float(z), float(2 * norm.sf(abs(z))))
