"""Signature: one score column from the selected features; the selection pipeline and trace.

Design: the signature refits its own coefficients. A Signature that borrowed ``coef_`` from a
separately fitted :class:`LassoSelector` would sit outside the Pipeline that
cross-validation clones, which is exactly how selection leaks into validation folds. Here
VarianceFilter -> UnivariateFilter -> LassoSelector -> Signature are four steps of one
Pipeline; the Signature standardises the columns the LASSO kept and fits an L2 logistic
regression on them (a post-selection refit, "relaxed LASSO"), so every label-fitted number
is learnt on the training fold only.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.selection._lasso import LassoSelector
from workbench.selection._univariate import UnivariateFilter, check_binary_target
from workbench.selection._variance import (
    SelectionError,
    VarianceFilter,
    check_has_features,
    feature_names,
)


class Signature(TransformerMixin, BaseEstimator):
    """Collapse the input features into one linear score ``sig__<name>``.

    ``fit`` z-scores each column (:class:`~sklearn.preprocessing.StandardScaler`) and fits
    an L2-penalised logistic regression on them; ``transform`` returns the linear predictor
    ``intercept_ + sum_i coef_[i] * z_i`` (the log-odds, i.e. the usual "rad-score").

    Parameters
    ----------
    name : str, default="radiomics"
        Output column is ``sig__<name>``.
    C : float, default=1.0
        Inverse L2 strength of the refit (scikit-learn's ``LogisticRegression`` ``C``:
        penalty ``||beta||^2 / 2`` against ``C * sum(log-loss)``). Range > 0.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features_in_,)
        Weights on the standardised features.
    intercept_ : float
    scaler_ : StandardScaler
    classes_ : ndarray
        The two labels; the score grows with the odds of ``classes_[1]``.
    n_features_in_, feature_names_in_
    """

    def __init__(self, name="radiomics", C=1.0):
        self.name = name
        self.C = C

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    def fit(self, X, y):
        """Standardise X and fit the signature weights on the binary label y."""
        check_has_features(X, step="Signature")
        X, y = validate_data(self, X, y, dtype=np.float64)
        if not isinstance(self.name, str) or not self.name:
            raise SelectionError(f"parameter name must be a non-empty str, got {self.name!r}",
                                 step="Signature")
        if not isinstance(self.C, numbers.Real) or not self.C > 0:
            raise SelectionError(f"parameter C must be a float > 0, got {self.C!r}",
                                 step="Signature")
        y01, self.classes_ = check_binary_target(y, step="Signature")
        self.scaler_ = StandardScaler().fit(X)
        model = LogisticRegression(C=self.C, max_iter=10_000).fit(self.scaler_.transform(X), y01)
        self.coef_ = model.coef_.ravel().copy()
        self.intercept_ = float(model.intercept_[0])
        return self

    def transform(self, X):
        """The score column; a DataFrame keeps its index."""
        check_is_fitted(self)
        index = X.index if isinstance(X, pd.DataFrame) else None
        Xv = validate_data(self, X, reset=False, dtype=np.float64)
        score = (self.scaler_.transform(Xv) @ self.coef_ + self.intercept_)[:, None]
        if index is not None:
            return pd.DataFrame(score, index=index, columns=self.get_feature_names_out())
        return score

    def get_feature_names_out(self, input_features=None):
        """``[f"sig__{name}"]``."""
        check_is_fitted(self)
        return np.asarray([f"sig__{self.name}"], dtype=object)


def selection_pipeline(name: str, *, variance_threshold: float = 1e-8, alpha: float = 0.05,
                       lasso_kwargs: dict | None = None) -> Pipeline:
    """VarianceFilter -> UnivariateFilter -> LassoSelector -> Signature, pandas output.

    The univariate step keeps at least one feature (``keep_at_least=1``) and the LASSO falls
    back to its best single feature, so the signature always has an input.

    Parameters
    ----------
    name
        Feature-set name; the output column is ``sig__<name>``.
    variance_threshold
        :class:`VarianceFilter` ``threshold``.
    alpha
        :class:`UnivariateFilter` ``alpha``.
    lasso_kwargs
        Keyword arguments of :class:`LassoSelector`.
    """
    pipe = Pipeline([
        ("variance", VarianceFilter(threshold=variance_threshold)),
        ("univariate", UnivariateFilter(alpha=alpha, keep_at_least=1)),
        ("lasso", LassoSelector(**(lasso_kwargs or {}))),
        ("signature", Signature(name=name)),
    ])
    return pipe.set_output(transform="pandas")


def selection_trace(pipeline: Pipeline) -> pd.DataFrame:
    """One row per (stage, input feature) of a fitted selection pipeline, for the run folder.

    Columns: stage, feature, kept, test, p, coefficient, reason. ``coefficient`` is the
    LASSO coefficient (standardised scale, 0 when not selected) or the signature weight.
    Steps that are not selection steps are ignored.
    """
    rows: list[pd.DataFrame] = []
    for stage, est in pipeline.steps:
        if isinstance(est, VarianceFilter):
            check_is_fitted(est)
            names = feature_names(est)
            rows.append(pd.DataFrame({
                "stage": stage, "feature": names, "kept": est.support_,
                "reason": [est.dropped_.get(n, "kept") for n in names]}))
        elif isinstance(est, UnivariateFilter):
            check_is_fitted(est)
            res = est.results_
            rows.append(pd.DataFrame({
                "stage": stage, "feature": res["feature"], "kept": res["kept"],
                "test": res["test"], "p": res["p"], "reason": res["reason"]}))
        elif isinstance(est, LassoSelector):
            check_is_fitted(est)
            coef = np.zeros(est.n_features_in_)
            coef[est.support_] = est.coef_
            reason = np.where(est.support_, f"non-zero at alpha={est.alpha_:.3g}",
                              f"zero at alpha={est.alpha_:.3g}")
            if est.fallback_used_:
                reason = np.where(est.support_, "fallback: best single feature", reason)
            rows.append(pd.DataFrame({
                "stage": stage, "feature": feature_names(est), "kept": est.support_,
                "coefficient": coef, "reason": reason}))
        elif isinstance(est, Signature):
            check_is_fitted(est)
            rows.append(pd.DataFrame({
                "stage": stage, "feature": feature_names(est), "kept": True,
                "coefficient": est.coef_, "reason": f"weight in sig__{est.name}"}))
    columns = ["stage", "feature", "kept", "test", "p", "coefficient", "reason"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True).reindex(columns=columns)


def lasso_cv_trace(pipeline: Pipeline) -> pd.DataFrame:
    """The LASSO step's cross-validation curve, one row per penalty, for the run folder.

    Columns: alpha, mean_score, std_score, sem_score, n_nonzero (on all fitting data),
    n_saturated_folds, chosen (the penalty kept), scoring. Empty when the pipeline has no
    fitted :class:`LassoSelector`.
    """
    for _, est in pipeline.steps:
        if isinstance(est, LassoSelector):
            check_is_fitted(est)
            out = est.cv_results_.copy()
            out["chosen"] = np.isclose(out["alpha"], est.alpha_, rtol=1e-12, atol=0)
            out["scoring"] = est.scoring_
            return out
    return pd.DataFrame(columns=["alpha", "mean_score", "std_score", "sem_score", "n_nonzero",
                                 "n_saturated_folds", "chosen", "scoring"])
