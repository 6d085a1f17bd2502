"""Transportability: how different is the external cohort from the development cohort?

* :func:`case_mix` — a Table-1 of both cohorts side by side with the **standardised
  difference** of each variable (continuous: difference of means over the pooled SD;
  categorical, per level: difference of proportions over the pooled binomial SD). |SMD| > 0.1
  is the usual mark of a relevant imbalance; missing values are a level of their own.
* :func:`membership_model` — a penalised logistic regression that tries to tell the two cohorts
  apart from the model's own inputs, scored by cross-validated AUC (DeLong CI): about 0.5 means
  the external patients look like development patients to the model; near 1 means the model is
  extrapolating, and its standardised coefficients name the features that differ most.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.evaluation.delong import delong_auc_ci

__all__ = ["CASE_MIX_COLUMNS", "CASE_MIX_VARIABLES", "case_mix", "membership_model"]

CASE_MIX_COLUMNS = ["variable", "level", "kind", "development", "external", "smd",
                    "n_development", "n_external"]
#: Cohort columns compared (when present in either cohort), continuous first.
CASE_MIX_VARIABLES: dict[str, str] = {
    "age": "continuous", "mri_ld_mm": "continuous", "pcr": "categorical",
    "hr_her2": "categorical", "er": "categorical", "pgr": "categorical",
    "hr": "categorical", "her2": "categorical", "laterality": "categorical",
    "race": "categorical"}
_MISSING = "missing"


def _mean_sd(values: pd.Series) -> str:
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}" if len(values) > 1 else "—"


def _continuous(variable: str, a: pd.Series, b: pd.Series) -> dict:
    a = pd.to_numeric(a, errors="coerce").dropna()
    b = pd.to_numeric(b, errors="coerce").dropna()
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if len(a) > 1 and len(b) > 1 else 0
    smd = float((b.mean() - a.mean()) / pooled) if pooled > 0 else np.nan
    return {"variable": variable, "level": "", "kind": "continuous",
            "development": _mean_sd(a), "external": _mean_sd(b), "smd": smd,
            "n_development": int(len(a)), "n_external": int(len(b))}


def _levels(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), _MISSING).astype(str)


def _categorical(variable: str, a: pd.Series, b: pd.Series) -> list[dict]:
    a, b = _levels(a), _levels(b)
    levels = sorted(set(a) | set(b), key=lambda v: (v == _MISSING, v))
    rows = []
    for level in levels:
        pa, pb = float((a == level).mean()), float((b == level).mean())
        pooled = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
        rows.append({"variable": variable, "level": level, "kind": "categorical",
                     "development": f"{int((a == level).sum())} ({100 * pa:.1f} %)",
                     "external": f"{int((b == level).sum())} ({100 * pb:.1f} %)",
                     "smd": float((pb - pa) / pooled) if pooled > 0 else 0.0,
                     "n_development": int(len(a)), "n_external": int(len(b))})
    return rows


def case_mix(development: pd.DataFrame, external: pd.DataFrame,
             variables: Sequence[str] | None = None) -> pd.DataFrame:
    """Both cohorts' characteristics side by side with standardised differences (see the
    module docstring); columns :data:`CASE_MIX_COLUMNS`. A variable absent from both cohorts,
    or entirely missing in both, is left out."""
    rows: list[dict] = []
    for variable in variables or CASE_MIX_VARIABLES:
        kind = CASE_MIX_VARIABLES.get(variable, "categorical")
        a = development.get(variable, pd.Series(np.nan, index=development.index))
        b = external.get(variable, pd.Series(np.nan, index=external.index))
        if a.notna().sum() == 0 and b.notna().sum() == 0:
            continue
        if kind == "continuous":
            rows.append(_continuous(variable, a, b))
        else:
            rows += _categorical(variable, a, b)
    return pd.DataFrame(rows, columns=CASE_MIX_COLUMNS)


def membership_model(development: pd.DataFrame, external: pd.DataFrame, *, folds: int = 5,
                     seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Cross-validated AUC of telling external from development patients on the given columns
    (median imputation, z-score, L2 logistic regression C = 1), and each column's
    standardised coefficient in a fit on everyone.

    Returns
    -------
    tuple
        ``({"auc", "auc_low", "auc_high", "method", "n_development", "n_external"},
        DataFrame[feature, coefficient, abs_coefficient])`` sorted by ``abs_coefficient``.
        Columns empty in both cohorts are dropped.
    """
    columns = [c for c in development.columns if c in external.columns]
    X = pd.concat([development[columns], external[columns]], axis=0).astype(float)
    X = X.loc[:, X.notna().any()]
    y = np.r_[np.zeros(len(development), int), np.ones(len(external), int)]
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=2000))
    k = int(min(folds, len(development), len(external)))
    method = (f"{k}-fold stratified CV, L2 logistic regression (C=1) on the model's "
              f"{X.shape[1]} inputs; DeLong CI")
    info = {"method": method, "n_development": int(len(development)),
            "n_external": int(len(external))}
    if k < 2 or X.shape[1] == 0:
        return {**info, "auc": np.nan, "auc_low": np.nan, "auc_high": np.nan}, pd.DataFrame(
            columns=["feature", "coefficient", "abs_coefficient"])
    scores = cross_val_predict(model, X, y, cv=StratifiedKFold(k, shuffle=True,
                                                               random_state=seed),
                               method="predict_proba")[:, 1]
    auc = delong_auc_ci(y, scores)
    model.fit(X, y)
    coef = model[-1].coef_[0]
    table = pd.DataFrame({"feature": X.columns, "coefficient": coef,
                          "abs_coefficient": np.abs(coef)})
    table = table.sort_values("abs_coefficient", ascending=False, ignore_index=True)
    return {**info, "auc": float(auc.auc), "auc_low": float(auc.lo),
            "auc_high": float(auc.hi)}, table
