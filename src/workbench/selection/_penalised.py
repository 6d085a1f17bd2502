"""PenalisedLogistic: elastic-net logistic regression with unpenalised covariates, tuned by CV.

The modelling strategies (:mod:`workbench.selection._strategies`) end in this classifier. It
minimises, on standardised columns,

    mean_i logloss(y_i, b0 + x_i . b) + alpha * (l1_ratio * ||b_P||_1
                                                 + (1 - l1_ratio) / 2 * ||b_P||^2)

where ``P`` are the *penalised* columns: every column except those matched by
``unpenalised`` (names or patterns; ``clin__*`` by default). The clinical covariates therefore enter as in
an ordinary logistic model and the imaging features compete for the penalty: adding imaging
cannot shrink the clinical signal away, which a shared penalty (or a classifier on a single
imaging signature) can.

The solver is proximal Newton (the glmnet scheme, as :func:`~workbench.selection.
logistic_lasso_path`): each step replaces the log-loss by its weighted least-squares model.
The unpenalised columns and the intercept are projected out of that quadratic exactly
(Frisch-Waugh-Lovell: the penalty does not involve them), the penalised part is solved by
scikit-learn's coordinate descent (:func:`sklearn.linear_model.enet_path`) -- or, for
``l1_ratio = 0`` (ridge), by one linear solve -- and the step is accepted by backtracking on
the exact objective. ``alpha`` (and ``l1_ratio`` when several are given) are chosen by
stratified inner cross-validation on the fitting data only, so inside an outer CV fold
nothing of the held-out patients is seen.
"""

from __future__ import annotations

import numbers
import warnings
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import enet_path
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import ClassifierTags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.selection._lasso_path import _mean_logloss, armijo_step, column_auc
from workbench.selection._univariate import check_binary_target
from workbench.selection._variance import SelectionError, check_has_features, feature_names

SATURATION = 0.999  # stop descending the path once the fit explains 99.9 % of the deviance
RIDGE_L1 = 1e-3  # glmnet's stand-in l1_ratio for the top of a ridge path
SCORINGS = ("deviance", "auc")


def _penalty(beta: np.ndarray, alpha: float, l1_ratio: float) -> float:
    return alpha * (l1_ratio * np.abs(beta).sum() + 0.5 * (1 - l1_ratio) * beta @ beta)


def unpenalised_mask(names, patterns) -> np.ndarray:
    """Columns matched by any of ``patterns`` (exact names or fnmatch patterns such as
    ``clin__*``); none when ``patterns`` is empty or None."""
    names = [str(n) for n in np.asarray(names, dtype=object)]
    if not patterns:
        return np.zeros(len(names), dtype=bool)
    pats = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    return np.array([any(fnmatchcase(n, p) for p in pats) for n in names], dtype=bool)


def _basis(U: np.ndarray) -> np.ndarray:
    """Orthonormal basis of U's column space (collinear clinical columns are fine)."""
    if U.shape[1] == 0:
        return U
    u, s, _ = np.linalg.svd(U, full_matrices=False)
    keep = s > (s[0] if s.size else 0.0) * 1e-8
    return u[:, keep]


def _solve_penalised(P: np.ndarray, z: np.ndarray, alpha: float, l1_ratio: float,
                     coef: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """``argmin (1/2n)||z - P b||^2 + alpha (l1_ratio ||b||_1 + (1-l1_ratio)/2 ||b||^2)``."""
    n, p = P.shape
    if p == 0:
        return coef
    if l1_ratio == 0:  # ridge: one linear solve, in the smaller of the two spaces
        if p <= n:
            return np.linalg.solve(P.T @ P / n + alpha * np.eye(p), P.T @ z / n)
        return P.T @ np.linalg.solve(P @ P.T / n + alpha * np.eye(n), z) / n
    # enet_path's own argument checks cost more than a small sub-problem: ours are above
    with warnings.catch_warnings(), config_context(skip_parameter_validation=True):
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, path, _ = enet_path(np.asfortranarray(P), np.ascontiguousarray(z),
                               l1_ratio=l1_ratio, alphas=np.array([alpha]),
                               coef_init=np.ascontiguousarray(coef), precompute=False,
                               tol=tol, max_iter=max_iter, copy_X=False, check_input=False)
    return path[:, 0]


def _newton(X, y, pen, alpha, l1_ratio, b0, beta, *, tol, max_newton, max_iter):
    """Proximal Newton at one penalty from (b0, beta); returns (b0, beta)."""
    n = len(y)
    unpen = ~pen

    def objective(c0, c):
        return _mean_logloss(c0 + X @ c, y) + _penalty(c[pen], alpha, l1_ratio)

    f = objective(b0, beta)
    for _ in range(max_newton):
        eta = b0 + X @ beta
        prob = expit(eta)
        w = np.clip(prob * (1 - prob), 1e-5, None)
        z = eta + (y - prob) / w
        sw = w / w.sum()
        xm, zm = sw @ X, sw @ z
        root = np.sqrt(w)
        Xc = (X - xm) * root[:, None]
        zc = (z - zm) * root
        U, P = Xc[:, unpen], Xc[:, pen]
        Q = _basis(U)
        P_r = P - Q @ (Q.T @ P)
        z_r = zc - Q @ (Q.T @ zc)
        new = np.zeros_like(beta)
        new[pen] = _solve_penalised(P_r, z_r, alpha, l1_ratio, beta[pen].copy(), tol,
                                    max_iter)
        if unpen.any():
            new[unpen] = np.linalg.lstsq(U, zc - P @ new[pen], rcond=None)[0]
        new_b0 = zm - xm @ new
        d, d0 = new - beta, new_b0 - b0
        grad0, grad = -(y - prob).mean(), -(X.T @ (y - prob)) / n
        decrease = (grad0 * d0 + grad @ d + _penalty(new[pen], alpha, l1_ratio)
                    - _penalty(beta[pen], alpha, l1_ratio))
        accepted = armijo_step(objective, f, b0, beta, d0, d, decrease)
        if accepted is None:
            break
        c0, c, f_new = accepted
        improvement = f - f_new
        b0, beta, f = c0, c, f_new
        if improvement <= tol * max(1.0, f):
            break
    return b0, beta


def penalised_logistic_path(X, y, alphas, *, l1_ratio=1.0, penalised=None, tol=1e-6,
                            max_newton=50, max_iter=10_000, max_nonzero=None):
    """Elastic-net logistic fits along a decreasing penalty grid, warm-started.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
        Standardised columns.
    y : ndarray of 0/1
    alphas : ndarray, decreasing
    l1_ratio : float in [0, 1]
    penalised : ndarray of bool, optional
        Columns under the penalty (default: all); the others are fitted freely.
    max_nonzero : int, optional
        Stop the path once more penalised coefficients than this are non-zero (stability
        selection needs only the sparse end); the remaining penalties repeat that fit.

    Returns
    -------
    coefs : ndarray (n_alphas, n_features)
    intercepts : ndarray (n_alphas,)
    n_fitted : int
        Penalties actually fitted; after a saturated fit (deviance explained >= 0.999) or
        one past ``max_nonzero`` the remaining ones repeat it.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = X.shape
    pen = np.ones(p, dtype=bool) if penalised is None else np.asarray(penalised, dtype=bool)
    ybar = y.mean()
    if not 0 < ybar < 1:
        raise SelectionError(f"needs both classes in y, got a mean of {ybar}",
                             step="PenalisedLogistic")
    b0, beta = float(np.log(ybar / (1 - ybar))), np.zeros(p)
    null_dev = _mean_logloss(np.full(n, b0), y)
    coefs, intercepts = np.zeros((len(alphas), p)), np.zeros(len(alphas))
    grad = -(X.T @ (y - ybar)) / n
    for k, alpha in enumerate(alphas):
        alpha = float(alpha)
        # Working set (glmnet's sequential strong rule): the unpenalised and non-zero
        # columns and those whose gradient reaches l1_ratio * (2 alpha - alpha_prev). The
        # optimality check below runs on every column, and a violating one joins the set
        # and the penalty is solved again: the answer is exact, only the work shrinks.
        if l1_ratio > 0:
            prev = float(alphas[k - 1]) if k else alpha
            work = ~pen | (beta != 0) | (np.abs(grad) >= l1_ratio * (2 * alpha - prev))
        else:
            work = np.ones(p, dtype=bool)
        for _ in range(p + 1):
            b0, sub = _newton(X[:, work], y, pen[work], alpha, float(l1_ratio), b0,
                              beta[work], tol=tol, max_newton=max_newton, max_iter=max_iter)
            beta = np.zeros(p)
            beta[work] = sub
            grad = -(X.T @ (y - expit(b0 + X @ beta))) / n
            violating = pen & ~work & (np.abs(grad) > l1_ratio * alpha * (1 + 1e-3) + tol)
            if not violating.any():
                break
            work |= violating
        coefs[k], intercepts[k] = beta, b0
        dense = max_nonzero is not None and np.count_nonzero(beta[pen]) > max_nonzero
        if dense or (null_dev > 0
                     and 1 - _mean_logloss(b0 + X @ beta, y) / null_dev >= SATURATION):
            coefs[k + 1:], intercepts[k + 1:] = beta, b0
            return coefs, intercepts, k + 1
    return coefs, intercepts, len(alphas)


def alpha_max(X, y, penalised, l1_ratio, *, tol=1e-6) -> float:
    """Smallest penalty that keeps every penalised coefficient at zero (for ``l1_ratio``
    > 0; ridge uses glmnet's convention ``l1_ratio = 1e-3``), after fitting the unpenalised
    columns."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pen = np.asarray(penalised, dtype=bool)
    ybar = y.mean()
    b0, beta = float(np.log(ybar / (1 - ybar))), np.zeros(X.shape[1])
    if (~pen).any():  # the unpenalised model: an infinite penalty on the rest
        b0, beta = _newton(X, y, pen, 1e12, 1.0, b0, beta, tol=tol, max_newton=50,
                           max_iter=1000)
    resid = y - expit(b0 + X @ beta)
    top = float(np.max(np.abs(X[:, pen].T @ resid)) / len(y)) if pen.any() else 1.0
    return max(top, 1e-12) / max(l1_ratio, RIDGE_L1)


class PenalisedLogistic(ClassifierMixin, BaseEstimator):
    """Elastic-net logistic regression, clinical covariates unpenalised, penalty by inner CV.

    Parameters
    ----------
    l1_ratios : float or tuple of float, default=(1.0,)
        Mix of L1 (1.0: lasso) and L2 (0.0: ridge) penalties; with several, the pair
        (alpha, l1_ratio) with the best inner-CV score is chosen. Each in [0, 1].
    n_alphas : int, default=30
        Penalties per path, log-spaced from the smallest that zeroes every penalised
        coefficient (for the L1 part; ``1 / 1e-3`` times the lasso's for a ridge) down to
        ``alpha_min_ratio`` times the lasso's. >= 2.
    alpha_min_ratio : float, default=0.01
        In (0, 1).
    cv : int, default=5
        Inner stratified folds (fewer when a class is smaller; with fewer than 2 patients
        in a class no CV is possible and the middle of the grid is used, said in
        ``cv_note_``). >= 2.
    scoring : {"deviance", "auc"}, default="deviance"
        Inner-CV criterion: mean held-out log-loss (lower is better; favours calibrated
        probabilities) or AUC.
    unpenalised : tuple of str or None, default=("clin__*",)
        Columns not penalised: exact names or fnmatch patterns (needs named input). Name
        the established clinical predictors here; sparse dummies (a race category with five
        patients) left unpenalised invite quasi-separation and overconfident probabilities.
    random_state : int, default=0
        Inner fold assignment.
    tol : float, default=1e-6

    Attributes
    ----------
    coef_ : ndarray (n_features_in_,)
        On the input scale; ``coef_std_`` on the standardised scale.
    intercept_ : float
    alpha_, l1_ratio_ : float
        The chosen penalty.
    cv_results_ : DataFrame
        l1_ratio, alpha, mean_score, std_score, n_nonzero, chosen.
    unpenalised_ : ndarray of bool
    support_ : ndarray of bool
        Non-zero coefficients (unpenalised columns count when non-zero).
    classes_, n_features_in_, feature_names_in_
    """

    def __init__(self, l1_ratios=(1.0,), n_alphas=30, alpha_min_ratio=0.01, cv=5,
                 scoring="deviance", unpenalised=("clin__*",), random_state=0, tol=1e-6):
        self.l1_ratios = l1_ratios
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.cv = cv
        self.scoring = scoring
        self.unpenalised = unpenalised
        self.random_state = random_state
        self.tol = tol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    def _check_params(self) -> tuple[float, ...]:
        def bad(name, allowed, value):
            return SelectionError(f"parameter {name} must be {allowed}, got {value!r}",
                                  step="PenalisedLogistic")

        ratios = (self.l1_ratios if isinstance(self.l1_ratios, (tuple, list, np.ndarray))
                  else (self.l1_ratios,))
        if not len(ratios) or not all(isinstance(r, numbers.Real) and 0 <= r <= 1
                                      for r in ratios):
            raise bad("l1_ratios", "floats in [0, 1]", self.l1_ratios)
        if not isinstance(self.n_alphas, numbers.Integral) or self.n_alphas < 2:
            raise bad("n_alphas", "an int >= 2", self.n_alphas)
        if not isinstance(self.alpha_min_ratio, numbers.Real) or not 0 < self.alpha_min_ratio < 1:
            raise bad("alpha_min_ratio", "a float in (0, 1)", self.alpha_min_ratio)
        if not isinstance(self.cv, numbers.Integral) or self.cv < 2:
            raise bad("cv", "an int >= 2", self.cv)
        if self.scoring not in SCORINGS:
            raise bad("scoring", f"one of {SCORINGS}", self.scoring)
        return tuple(float(r) for r in ratios)

    def fit(self, X, y):
        """Standardise, choose the penalty by inner CV, refit on all of X."""
        check_has_features(X, step="PenalisedLogistic")
        X, y = validate_data(self, X, y, dtype=np.float64)
        ratios = self._check_params()
        if type_of_target(y) == "multiclass":
            raise SelectionError(f"Only binary classification is supported (pCR 0/1); y has "
                                 f"{len(np.unique(y))} classes", step="PenalisedLogistic")
        y01, self.classes_ = check_binary_target(y, step="PenalisedLogistic")
        self.unpenalised_ = unpenalised_mask(feature_names(self), self.unpenalised)
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale < 1e-12] = 1.0  # constant column: stays at zero, harmless
        Xs = (X - mean) / scale
        pen = ~self.unpenalised_
        smallest = int(np.bincount(y01, minlength=2).min())
        n_splits = min(self.cv, smallest)
        rows, best = [], None
        lasso_top = alpha_max(Xs, y01, pen, 1.0, tol=self.tol)
        for ratio in ratios:
            # from the penalty that zeroes everything (for this mix) down to the lasso
            # grid's lower end: a ridge path then spans the light penalties too (glmnet's
            # ratio-scaled top alone would leave a ridge heavily shrunk everywhere)
            top = lasso_top / max(ratio, RIDGE_L1)
            grid = np.logspace(np.log10(top), np.log10(lasso_top * self.alpha_min_ratio),
                               self.n_alphas)
            full = penalised_logistic_path(Xs, y01, grid, l1_ratio=ratio, penalised=pen,
                                           tol=self.tol)
            if n_splits >= 2:
                scores = self._inner_cv(Xs, y01, grid, ratio, pen, n_splits)
                mean_s, std_s = scores.mean(axis=0), scores.std(axis=0)
            else:
                mean_s = std_s = np.full(len(grid), np.nan)
            for k, alpha in enumerate(grid):
                rows.append({"l1_ratio": ratio, "alpha": alpha, "mean_score": mean_s[k],
                             "std_score": std_s[k],
                             "n_nonzero": int(np.count_nonzero(full[0][k][pen]))})
            # lower is better: deviance as it is, AUC negated (ties: the smallest deviance's
            # strongest penalty, the best AUC's weakest); no CV -> the grid's middle
            loss = mean_s if self.scoring == "deviance" else -mean_s
            if not np.isfinite(loss).any():
                k = len(grid) // 2
            elif self.scoring == "deviance":
                k = int(np.nanargmin(loss))
            else:
                k = len(grid) - 1 - int(np.nanargmin(loss[::-1]))
            if best is None or loss[k] < best[0]:
                best = (loss[k], ratio, grid[k], full[0][k], full[1][k])
        _, self.l1_ratio_, self.alpha_, coef_std, b0 = best
        self.cv_note_ = (None if n_splits >= 2 else
                         f"no inner CV (smallest class has {smallest} patients): middle "
                         "penalty of the grid used")
        res = pd.DataFrame(rows)
        res["chosen"] = (np.isclose(res["alpha"], self.alpha_, rtol=1e-12, atol=0)
                         & (res["l1_ratio"] == self.l1_ratio_))
        self.cv_results_ = res
        self.coef_std_ = coef_std
        self.coef_ = coef_std / scale
        self.intercept_ = float(b0 - (coef_std / scale) @ mean)
        self.support_ = coef_std != 0
        return self

    def _inner_cv(self, Xs, y01, grid, ratio, pen, n_splits) -> np.ndarray:
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        scores = np.zeros((n_splits, len(grid)))
        for f, (tr, te) in enumerate(skf.split(Xs, y01)):
            coefs, b0s, _ = penalised_logistic_path(Xs[tr], y01[tr], grid, l1_ratio=ratio,
                                                    penalised=pen, tol=self.tol)
            eta = b0s[None, :] + Xs[te] @ coefs.T  # (n_te, n_alphas)
            if self.scoring == "deviance":
                yt = y01[te][:, None]
                scores[f] = np.mean(np.logaddexp(0.0, eta) - yt * eta, axis=0)
            else:
                scores[f] = column_auc(y01[te], eta) if len(np.unique(y01[te])) == 2 else 0.5
        return scores

    def decision_function(self, X):
        """Linear predictor (log-odds of ``classes_[1]``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
