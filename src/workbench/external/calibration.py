"""External performance of a saved model: discrimination, calibration and recalibration.

Every number here is an **external** estimate: the model was fitted elsewhere and is scored,
unchanged, on a labelled cohort it never saw (variant ``original``). The two recalibrated
variants refit the link between the model's linear predictor ``lp = logit(p)`` and the outcome
**on the external cohort itself** (Steyerberg's updating methods):

``recalibrated_intercept``
    ``logit p' = a + lp`` (calibration-in-the-large updated: the prevalence shift);
``recalibrated_logistic``
    ``logit p' = a + b · lp`` (logistic recalibration: intercept and slope).

Fitted and scored on the same patients, their calibration is perfect by construction (the
CITL of the intercept update is exactly 0), so they are also **cross-fitted**: the update is
fitted on k − 1 folds of the external cohort and applied to the held-out fold (metric
``citl_cv`` / ``slope_cv``), which is what a new patient of that site would see. AUC does not
change under either update (both are monotone).

For a synthetic cohort the generator knows each patient's true probability; fitting the same
calibration models with those probabilities as (fractional) outcomes gives the model's true
CITL and slope on these patients (:func:`truth_calibration`), which the reported intervals
should contain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm
from sklearn.model_selection import StratifiedKFold

from workbench.evaluation.bootstrap import bootstrap_ci
from workbench.evaluation.calibration import (
    _logistic_fit,
    brier_score,
    calibration_intercept_slope,
    clipped_logit,
    reliability_curve,
)
from workbench.evaluation.decision_curve import decision_curve
from workbench.evaluation.delong import delong_auc_ci
from workbench.evaluation.metrics import metrics_table

__all__ = ["RECALIBRATION_VARIANTS", "Recalibration", "recalibrate", "truth_calibration",
           "validation_tables"]

#: The variants of the validation tables, in order.
RECALIBRATION_VARIANTS = ("original", "recalibrated_intercept", "recalibrated_logistic")
_METRIC_COLUMNS = ["variant", "metric", "estimate", "ci_low", "ci_high", "ci_method", "n",
                   "n_pos"]


@dataclass(frozen=True)
class Recalibration:
    """Updates fitted on the external cohort: ``a_intercept`` (``logit p' = a + lp``) and
    ``a_logistic``, ``b_logistic`` (``logit p' = a + b · lp``)."""

    a_intercept: float
    a_logistic: float
    b_logistic: float

    def apply(self, p: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities of every variant for the original probabilities ``p``."""
        lp = clipped_logit(p)
        return {"original": np.asarray(p, dtype=float),
                "recalibrated_intercept": expit(self.a_intercept + lp),
                "recalibrated_logistic": expit(self.a_logistic + self.b_logistic * lp)}


def _fits(y: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
    """(intercept with lp as offset, its covariance, (a, b) on lp, their covariance); ``y``
    may be fractional (true probabilities)."""
    ones = np.ones((lp.size, 1))
    a, cov_a = _logistic_fit(ones, y, offset=lp)
    ab, cov_ab = _logistic_fit(np.column_stack([ones, lp]), y, offset=np.zeros_like(lp))
    return a, cov_a, ab, cov_ab


def recalibrate(y, p) -> Recalibration:
    """Fit both updates on labels ``y`` and original probabilities ``p``."""
    a, _, ab, _ = _fits(np.asarray(y, dtype=float), clipped_logit(p))
    return Recalibration(float(a[0]), float(ab[0]), float(ab[1]))


def truth_calibration(p_model, p_true) -> dict[str, float]:
    """The model's true calibration on these patients: CITL and slope fitted with the
    generator's true probabilities as outcomes (see the module docstring)."""
    a, _, ab, _ = _fits(np.clip(np.asarray(p_true, dtype=float), 0, 1), clipped_logit(p_model))
    return {"citl": float(a[0]), "slope": float(ab[1]),
            "how": "calibration fits on the generator's true P(pCR) of each patient "
                   "(fractional outcomes): the value the estimates aim at"}


def _cross_fitted(y: np.ndarray, p: np.ndarray, folds: int, seed: int) -> dict[str, np.ndarray]:
    """Each patient's recalibrated probabilities from updates fitted on the other folds."""
    out = {v: np.empty_like(p) for v in RECALIBRATION_VARIANTS[1:]}
    k = int(min(folds, np.bincount(y.astype(int), minlength=2).min()))
    if k < 2:
        return {v: np.full_like(p, np.nan) for v in out}
    for fit, held in StratifiedKFold(k, shuffle=True, random_state=seed).split(p, y):
        variants = recalibrate(y[fit], p[fit]).apply(p[held])
        for v in out:
            out[v][held] = variants[v]
    return out


def _row(variant: str, metric: str, estimate: float, lo: float, hi: float, method: str,
         y: np.ndarray) -> dict:
    return {"variant": variant, "metric": metric, "estimate": float(estimate),
            "ci_low": float(lo), "ci_high": float(hi), "ci_method": method, "n": int(y.size),
            "n_pos": int(y.sum())}


def _calibration_rows(variant: str, y: np.ndarray, p: np.ndarray, suffix: str = "",
                      note: str = "") -> list[dict]:
    z = norm.ppf(0.975)
    fit = calibration_intercept_slope(y, p)
    return [
        _row(variant, f"citl{suffix}", fit.intercept, fit.intercept - z * fit.intercept_se,
             fit.intercept + z * fit.intercept_se, f"Wald, logit(p) as offset{note}", y),
        _row(variant, f"slope{suffix}", fit.slope, fit.slope - z * fit.slope_se,
             fit.slope + z * fit.slope_se, f"Wald, logistic on logit(p){note}", y)]


def validation_tables(y, p, *, threshold: float, n_boot: int = 2000, seed: int = 0,
                      folds: int = 5) -> dict[str, pd.DataFrame | Recalibration]:
    """Every table of a labelled external validation.

    Returns
    -------
    dict
        ``metrics`` (columns ``variant, metric, estimate, ci_low, ci_high, ci_method, n,
        n_pos``: auc with DeLong and bootstrap CIs, citl, slope, brier, mean_predicted,
        observed_rate, oe_ratio, and ``citl_cv`` / ``slope_cv`` for the recalibrated
        variants), ``thresholds`` (metrics at ``threshold`` with bootstrap CIs),
        ``reliability`` (Wilson CIs), ``decision_curve``, ``probabilities`` (each variant)
        and ``recalibration`` (the fitted :class:`Recalibration`).
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    recal = recalibrate(y, p)
    variants = recal.apply(p)
    crossed = _cross_fitted(y, p, folds, seed)
    rows, thresholds, reliability = [], [], []
    boot = f"bootstrap percentile (stratified, n={int(n_boot)})"
    for variant, probs in variants.items():
        auc = delong_auc_ci(y, probs)
        rows.append(_row(variant, "auc", auc.auc, auc.lo, auc.hi, "DeLong", y))
        b = bootstrap_ci(y, probs, "auc", n_boot=n_boot, seed=seed)
        rows.append(_row(variant, "auc_bootstrap", b.value, b.lo, b.hi, boot, y))
        rows += _calibration_rows(variant, y, probs)
        if variant in crossed and np.isfinite(crossed[variant]).all():
            rows += _calibration_rows(variant, y, crossed[variant], "_cv",
                                      f"; update cross-fitted over {folds} folds")
        b = bootstrap_ci(y, probs, brier_score, n_boot=n_boot, seed=seed)
        rows.append(_row(variant, "brier", b.value, b.lo, b.hi, boot, y))
        observed, expected = float(y.mean()), float(probs.mean())
        rows.append(_row(variant, "mean_predicted", expected, np.nan, np.nan, "", y))
        rows.append(_row(variant, "observed_rate", observed, np.nan, np.nan, "", y))
        # O/E with the usual Poisson approximation on the observed count
        se = 1 / np.sqrt(max(y.sum(), 1))
        oe = observed / expected
        rows.append(_row(variant, "oe_ratio", oe, oe * np.exp(-1.96 * se), oe * np.exp(1.96 * se),
                         "log-normal, Poisson SE of the observed count", y))
        table = metrics_table(y, probs, threshold=threshold, n_boot=n_boot, seed=seed)
        table = table[table["metric"] != "auc"].rename(columns={"value": "estimate",
                                                                "lo": "ci_low", "hi": "ci_high"})
        table.insert(0, "threshold", float(threshold))
        table.insert(0, "variant", variant)
        thresholds.append(table.drop(columns="method"))
        curve = reliability_curve(y, probs, n_bins=10)
        curve = curve.rename(columns={"observed_lo": "ci_low", "observed_hi": "ci_high"})
        curve.insert(0, "variant", variant)
        reliability.append(curve[["variant", "bin", "n", "mean_predicted", "observed",
                                  "ci_low", "ci_high"]])
    dc = decision_curve(y, variants, thresholds=np.round(np.arange(0.01, 0.91, 0.01), 2))
    dc = dc.rename(columns={"strategy": "variant"}).replace(
        {"variant": {"treat all": "treat_all", "treat none": "treat_none"}})
    return {"metrics": pd.DataFrame(rows, columns=_METRIC_COLUMNS),
            "thresholds": pd.concat(thresholds, ignore_index=True),
            "reliability": pd.concat(reliability, ignore_index=True),
            "decision_curve": dc[["variant", "threshold", "net_benefit"]],
            "probabilities": variants, "recalibration": recal}
