"""LassoSelector: keep the features with a non-zero L1 coefficient at the CV-chosen penalty.

The path itself (proximal Newton with an exact active-set solve, warm-started from the
strongest penalty) lives in :mod:`workbench.selection._lasso_path`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import lasso_path
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils import ClassifierTags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

from workbench.selection._lasso_path import (
    alpha_grid,
    column_auc,
    logistic_lasso_path,
)
from workbench.selection._univariate import check_binary_target
from workbench.selection._variance import (
    PandasSelectorMixin,
    SelectionError,
    SelectionWarning,
    check_has_features,
    feature_names,
)

FALLBACK_ALPHA = 1e-4  # penalty of the one-feature fit that gives the fallback its coef_


class LassoSelector(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Keep the features with a non-zero L1 coefficient at the cross-validated penalty.

    The features are z-scored (a :class:`~sklearn.preprocessing.StandardScaler` fitted on
    each training fold, then on all data for the final fit), and the penalty ``alpha`` is
    chosen by stratified K-fold CV over a log-spaced grid, each fold computing one
    warm-started path from the strongest to the weakest penalty. As in glmnet, a fold stops
    descending once its training fit explains >= 99.9% of the null deviance (the weaker
    penalties reuse that solution; ``cv_results_["n_saturated_folds"]`` counts them).

    **Penalty scale (alpha <-> C).** For ``model="logistic"`` the objective is the mean
    log-loss plus ``alpha * ||beta||_1`` (intercept unpenalised), i.e. glmnet's lambda.
    scikit-learn's ``LogisticRegression`` minimises ``C * sum(log-loss) + ||beta||_1``;
    dividing by ``C * n_samples`` shows they are the same problem when
    ``C = 1 / (alpha * n_samples)`` (``n_samples`` of the data being fitted: a training fold
    in CV). For ``model="linear"`` the objective is scikit-learn's Lasso,
    ``(1 / (2 n_samples)) ||y - X beta||^2 + alpha * ||beta||_1``, with the same ``alpha``.

    Parameters
    ----------
    model : {"logistic", "linear"}, default="logistic"
        LASSO logistic regression (the study's choice) or the linear LASSO.
    alphas : int or array-like, default=100
        Number of log-spaced penalties in [alpha_min, alpha_max], or the grid itself.
    alpha_min, alpha_max : float, default=1e-4, 1.0
        Grid bounds (alpha_min < alpha_max, both > 0).
    cv : int, default=10
        Folds (stratified for binary y, shuffled with ``random_state``). When the minority
        class is smaller, the folds are reduced to its size with a :class:`SelectionWarning`.
    scoring : {None, "roc_auc", "neg_log_loss", "neg_mean_squared_error"}, default=None
        CV criterion, higher is better. None: "roc_auc" for a binary target (always the
        case with ``model="logistic"``), "neg_mean_squared_error" for a continuous target
        (``model="linear"`` only). AUC is computed on the linear predictor of each
        validation fold; "neg_log_loss" needs ``model="logistic"``.
    rule : {"best", "1se"}, default="best"
        "best": the alpha with the highest mean CV score (ties: the larger alpha);
        "1se": the largest alpha whose mean score is within one standard error of the best.
    max_iter : int, default=100_000
        Maximum coordinate-descent epochs per sub-problem.
    tol : float, default=1e-6
        Convergence tolerance (see :func:`logistic_lasso_path`).
    random_state : int, default=0
        Seed of the fold shuffling.
    fallback : {"best_single", "empty"}, default="best_single"
        What happens when no coefficient is non-zero at the chosen alpha (with a
        :class:`SelectionWarning` either way). "best_single" keeps the feature that enters
        the LASSO path first: the largest ``|x_j . (y - mean(y))|`` on the standardised
        scale (largest absolute point-biserial / Pearson correlation with y); its ``coef_``
        is its coefficient fitted alone with the penalty ``min(alpha_min, 1e-4)``.
        "empty" selects nothing.

    Attributes
    ----------
    alpha_ : float
        The chosen penalty.
    scoring_ : str
        The CV criterion used.
    alphas_ : ndarray
        The grid, decreasing.
    cv_results_ : pandas.DataFrame
        alpha, mean_score, std_score, sem_score, n_nonzero (on all data), n_saturated_folds.
    coef_ : ndarray
        Coefficients of the selected features on the standardised scale, aligned with
        ``selected_``.
    intercept_ : float
    selected_ : ndarray of str
        Names of the selected features.
    support_ : ndarray of bool
    n_splits_ : int
        Folds actually used.
    n_iter_ : int
        Iterations of the final path (proximal-Newton steps for "logistic",
        coordinate-descent epochs for "linear").
    fallback_used_ : bool
    scaler_ : StandardScaler
        Fitted on all the training data.
    n_features_in_, feature_names_in_
    """

    def __init__(self, model="logistic", alphas=100, alpha_min=1e-4, alpha_max=1.0, cv=10,
                 scoring=None, rule="best", max_iter=100_000, tol=1e-6, random_state=0,
                 fallback="best_single"):
        self.model = model
        self.alphas = alphas
        self.alpha_min = alpha_min
        self.alpha_max = alpha_max
        self.cv = cv
        self.scoring = scoring
        self.rule = rule
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.fallback = fallback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if self.model == "logistic":
            tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    # -- validation -------------------------------------------------------------------------
    def _grid(self) -> np.ndarray:
        def bad(name, allowed, value):
            raise SelectionError(f"parameter {name} must be {allowed}, got {value!r}",
                                 step="LassoSelector")

        if self.model not in ("logistic", "linear"):
            bad("model", "'logistic' or 'linear'", self.model)
        allowed = {"logistic": (None, "roc_auc", "neg_log_loss"),
                   "linear": (None, "roc_auc", "neg_mean_squared_error")}[self.model]
        if self.scoring not in allowed:
            bad("scoring", f"one of {allowed} for model={self.model!r}", self.scoring)
        if self.rule not in ("best", "1se"):
            bad("rule", "'best' or '1se'", self.rule)
        if self.fallback not in ("best_single", "empty"):
            bad("fallback", "'best_single' or 'empty'", self.fallback)
        for name in ("cv", "max_iter"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < (
                    2 if name == "cv" else 1):
                bad(name, "an int >= 2" if name == "cv" else "an int >= 1", value)
        if not isinstance(self.tol, numbers.Real) or not self.tol > 0:
            bad("tol", "a float > 0", self.tol)
        if isinstance(self.alphas, numbers.Integral) and not isinstance(self.alphas, bool):
            if self.alphas < 1:
                bad("alphas", "an int >= 1 or an array of positive floats", self.alphas)
            for name in ("alpha_min", "alpha_max"):
                value = getattr(self, name)
                if not isinstance(value, numbers.Real) or not value > 0:
                    bad(name, "a float > 0", value)
            if not self.alpha_min < self.alpha_max:
                bad("alpha_min", f"< alpha_max={self.alpha_max}", self.alpha_min)
            return alpha_grid(self.alphas, self.alpha_min, self.alpha_max)
        grid = np.asarray(self.alphas, dtype=float).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            bad("alphas", "an int >= 1 or an array of positive floats", self.alphas)
        return np.sort(grid)[::-1]

    # -- fitting ----------------------------------------------------------------------------
    def _path(self, Xz, y, grid):
        """Coefficients (n_alphas, p), intercepts, saturated count, iterations."""
        if self.model == "logistic":
            return logistic_lasso_path(Xz, y, grid, tol=self.tol, max_iter=self.max_iter)
        ybar = y.mean()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, coefs, _, n_iter = lasso_path(np.asfortranarray(Xz), y - ybar, alphas=grid,
                                             tol=self.tol, max_iter=self.max_iter,
                                             precompute=False, return_n_iter=True)
        return coefs.T, np.full(len(grid), ybar), 0, int(np.sum(n_iter))

    def _scores(self, y_true, eta) -> np.ndarray:
        """CV criterion of every penalty at once; ``eta`` is (n_validation, n_alphas)."""
        if self.scoring_ == "roc_auc":
            return column_auc(y_true, eta)
        if self.scoring_ == "neg_log_loss":
            return -np.mean(np.logaddexp(0.0, eta) - y_true[:, None] * eta, axis=0)
        return -np.mean((y_true[:, None] - eta) ** 2, axis=0)

    def fit(self, X, y):
        """Choose alpha by CV, refit the path on all of X and keep the non-zero features.

        Raises
        ------
        SelectionError
            Bad parameters, X without features, or a target that cannot be cross-validated.
        """
        check_has_features(X, step="LassoSelector")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=self.model == "linear")
        grid = self._grid()
        step = "LassoSelector"
        binary = self.model == "logistic" or self.scoring == "roc_auc" or (
            self.scoring is None and type_of_target(y) == "binary")
        if binary:
            y, _ = check_binary_target(y, step=step, min_per_class=2)
        else:
            y = y.astype(np.float64)
        self.scoring_ = self.scoring or ("roc_auc" if binary else "neg_mean_squared_error")
        n_splits = self.cv
        if binary:
            minority = int(min(np.bincount(y.astype(int))))
            if minority < n_splits:
                warnings.warn(f"{step}: cv={self.cv} folds but the minority class has "
                              f"{minority} samples; using {minority} stratified folds",
                              SelectionWarning, stacklevel=2)
                n_splits = minority
            splitter = StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
        else:
            n_splits = min(n_splits, len(y))
            splitter = KFold(n_splits, shuffle=True, random_state=self.random_state)
        scores = np.empty((n_splits, len(grid)))
        saturated = np.zeros(len(grid), dtype=int)
        for i, (train, test) in enumerate(splitter.split(X, y)):
            scaler = StandardScaler().fit(X[train])
            coefs, intercepts, n_sat, _ = self._path(scaler.transform(X[train]), y[train],
                                                     grid)
            if n_sat:
                saturated[-n_sat:] += 1
            eta = scaler.transform(X[test]) @ coefs.T + intercepts  # (n_test, n_alphas)
            scores[i] = self._scores(y[test], eta)
        mean, std = scores.mean(axis=0), scores.std(axis=0)
        sem = std / np.sqrt(n_splits)
        best = int(np.argmax(mean))  # grid is decreasing: ties go to the larger alpha
        chosen = best
        if self.rule == "1se":
            chosen = int(np.flatnonzero(mean >= mean[best] - sem[best])[0])
        self.scaler_ = StandardScaler().fit(X)
        Xz = self.scaler_.transform(X)
        coefs, intercepts, _, self.n_iter_ = self._path(Xz, y, grid)
        n_nonzero = np.count_nonzero(coefs, axis=1)
        self.alphas_ = grid
        self.alpha_ = float(grid[chosen])
        self.n_splits_ = n_splits
        self.cv_results_ = pd.DataFrame({
            "alpha": grid, "mean_score": mean, "std_score": std, "sem_score": sem,
            "n_nonzero": n_nonzero, "n_saturated_folds": saturated})
        coef = coefs[chosen]
        support = coef != 0
        self.intercept_ = float(intercepts[chosen])
        self.fallback_used_ = False
        if not support.any():
            self.fallback_used_ = True
            if self.fallback == "best_single":
                j = int(np.argmax(np.abs(Xz.T @ (y - y.mean()))))
                support[j] = True
                weak = np.array([min(self.alpha_min, grid[-1], FALLBACK_ALPHA)])
                single, b0, _, _ = self._path(Xz[:, [j]], y, weak)
                coef = np.zeros_like(coef)
                coef[j] = single[-1, 0]
                self.intercept_ = float(b0[-1])
                what = (f"keeping the single feature that enters the path first: "
                        f"{feature_names(self)[j]!r}")
            else:
                what = "the selection is empty (fallback='empty')"
            warnings.warn(f"{step}: no coefficient is non-zero at the chosen "
                          f"alpha={self.alpha_:.3g}; {what}", SelectionWarning, stacklevel=2)
        self.support_ = support
        self.coef_ = coef[support]
        self.selected_ = feature_names(self)[support]
        return self

    def _get_support_mask(self):
        return self.support_
