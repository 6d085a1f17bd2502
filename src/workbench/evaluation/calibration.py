"""Calibration: Brier score, calibration intercept and slope, binned reliability curve.

* **Calibration intercept** (calibration-in-the-large): ``a`` in the logistic model
  ``logit P(y=1) = a + logit(p)``, i.e. logit(p) entered as an offset. 0 is ideal; > 0 means the
  model under-predicts risk on average, < 0 that it over-predicts.
* **Calibration slope**: ``b`` in ``logit P(y=1) = a + b · logit(p)``. 1 is ideal; < 1 means the
  predictions are too extreme (typical of overfitting), > 1 too moderate.

Both are maximum-likelihood fits (Newton-Raphson / IRLS, no penalty) with Wald standard
errors. Probabilities are clipped to [1e-6, 1 − 1e-6] before the logit so that p = 0 or 1
does not produce infinities. Under perfect separation the estimates diverge; the fit stops
after ``max_iter`` iterations and logs a warning.
"""

from __future__ import annotations

import logging
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from workbench.evaluation.inputs import MetricInputError, check_labels_scores

log = logging.getLogger(__name__)

#: Probabilities are clipped to [EPS, 1 − EPS] before taking logits.
EPS = 1e-6


class CalibrationFit(NamedTuple):
    """Calibration intercept and slope with Wald standard errors."""

    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    n: int


def _check_probabilities(y, p, step: str, need_both_classes: bool = True):
    y_arr, p_arr = check_labels_scores(y, p, step=step, need_both_classes=need_both_classes)
    if (p_arr < 0).any() or (p_arr > 1).any():
        raise MetricInputError(
            f"probabilities must lie in [0, 1]; got range [{p_arr.min():.4g}, {p_arr.max():.4g}]."
            " Pass predict_proba[:, 1], not a decision function.", step=step)
    return y_arr, p_arr


def clipped_logit(p) -> np.ndarray:
    """``log(p / (1 − p))`` after clipping ``p`` to [:data:`EPS`, 1 − :data:`EPS`]."""
    q = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(q / (1 - q))


def _logistic_fit(X: np.ndarray, y: np.ndarray, offset: np.ndarray, *, max_iter: int = 100,
                  tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Unpenalised logistic regression by Newton-Raphson with step halving.

    Returns the coefficients and their covariance (inverse observed information).
    """
    beta = np.zeros(X.shape[1])

    def loglik(b):
        eta = X @ b + offset
        return float(np.sum(y * eta - np.logaddexp(0, eta)))

    ll = loglik(beta)
    converged = False
    for _ in range(max_iter):
        mu = expit(X @ beta + offset)
        hess = X.T @ (X * (mu * (1 - mu))[:, None])
        step = np.linalg.lstsq(hess, X.T @ (y - mu), rcond=None)[0]
        for _ in range(30):  # halve the step until the likelihood does not decrease
            cand = beta + step
            ll_cand = loglik(cand)
            if ll_cand >= ll - 1e-12:
                break
            step = step / 2
        beta, ll = cand, ll_cand
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    if not converged:
        log.warning("calibration fit did not converge in %d iterations (separated data?); "
                    "estimates may be unreliable", max_iter)
    mu = expit(X @ beta + offset)
    info = X.T @ (X * (mu * (1 - mu))[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
    return beta, cov


def brier_score(y, p) -> float:
    """Mean squared difference between the probability and the outcome (lower is better)."""
    y_arr, p_arr = _check_probabilities(y, p, "brier", need_both_classes=False)
    return float(np.mean((p_arr - y_arr) ** 2))


def calibration_intercept_slope(y, p) -> CalibrationFit:
    """Calibration intercept (logit(p) as offset) and calibration slope (on logit(p)).

    Parameters
    ----------
    y, p
        Labels (both classes needed) and predicted probabilities in [0, 1].

    Returns
    -------
    CalibrationFit
        ``intercept, intercept_se, slope, slope_se, n``.
    """
    y_arr, p_arr = _check_probabilities(y, p, "calibration")
    lp = clipped_logit(p_arr)
    yf = y_arr.astype(float)
    ones = np.ones((lp.size, 1))
    a, cov_a = _logistic_fit(ones, yf, offset=lp)
    b, cov_b = _logistic_fit(np.column_stack([ones, lp]), yf, offset=np.zeros_like(lp))
    return CalibrationFit(float(a[0]), _se(cov_a[0, 0]), float(b[1]), _se(cov_b[1, 1]),
                          int(lp.size))


def _se(var: float) -> float:
    return float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan")


def wilson_interval(k, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``k`` successes out of ``n`` (vectorised; NaN where n = 0)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = n + z**2
        centre = (k + z**2 / 2) / denom
        half = z / denom * np.sqrt(k * (n - k) / n + z**2 / 4)
        lo, hi = centre - half, centre + half
    bad = n <= 0
    return (np.where(bad, np.nan, np.clip(lo, 0, 1)), np.where(bad, np.nan, np.clip(hi, 0, 1)))


def reliability_curve(y, p, n_bins: int = 10, *,
                      strategy: Literal["quantile", "uniform"] = "quantile",
                      alpha: float = 0.05) -> pd.DataFrame:
    """Binned reliability (calibration) curve with a Wilson interval per bin.

    Parameters
    ----------
    y, p
        Labels and predicted probabilities in [0, 1].
    n_bins
        Number of bins requested.
    strategy
        ``"quantile"``: bins with (about) equal numbers of patients; tied probabilities can
        merge edges, giving fewer bins. ``"uniform"``: equal-width bins on [0, 1].
    alpha
        1 − confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin, bin_lo, bin_hi, n, n_events, mean_predicted,
        observed, observed_lo, observed_hi``. Bins are closed on the left except the last,
        which also holds its right edge.
    """
    y_arr, p_arr = _check_probabilities(y, p, "reliability curve", need_both_classes=False)
    if int(n_bins) < 1:
        raise MetricInputError(f"n_bins must be >= 1, got {n_bins}.", step="reliability curve")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p_arr, np.linspace(0, 1, int(n_bins) + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    else:
        raise MetricInputError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}.",
                               step="reliability curve")
    which = np.searchsorted(edges[1:-1], p_arr, side="right")
    nb = edges.size - 1
    n = np.bincount(which, minlength=nb)
    events = np.bincount(which, weights=y_arr, minlength=nb)
    sum_p = np.bincount(which, weights=p_arr, minlength=nb)
    keep = n > 0
    lo, hi = wilson_interval(events[keep], n[keep], alpha)
    return pd.DataFrame({
        "bin": np.arange(nb)[keep],
        "bin_lo": edges[:-1][keep],
        "bin_hi": edges[1:][keep],
        "n": n[keep],
        "n_events": events[keep].astype(int),
        "mean_predicted": sum_p[keep] / n[keep],
        "observed": events[keep] / n[keep],
        "observed_lo": lo,
        "observed_hi": hi,
    })


def calibration_table(y, p, alpha: float = 0.05) -> pd.DataFrame:
    """Brier score, calibration intercept and slope as ``metric, value, lo, hi, method`` rows.

    The intercept and slope carry Wald intervals (estimate ± z·SE); the Brier score has none.
    """
    fit = calibration_intercept_slope(y, p)
    z = norm.ppf(1 - alpha / 2)
    return pd.DataFrame([
        {"metric": "brier", "value": brier_score(y, p), "lo": np.nan, "hi": np.nan,
         "method": "mean squared error"},
        {"metric": "calibration_intercept", "value": fit.intercept,
         "lo": fit.intercept - z * fit.intercept_se, "hi": fit.intercept + z * fit.intercept_se,
         "method": "logistic, logit(p) offset (Wald)"},
        {"metric": "calibration_slope", "value": fit.slope,
         "lo": fit.slope - z * fit.slope_se, "hi": fit.slope + z * fit.slope_se,
         "method": "logistic on logit(p) (Wald)"},
    ], columns=["metric", "value", "lo", "hi", "method"])
