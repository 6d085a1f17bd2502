"""ComBat: remove site (scanner) effects from features, fitted on training patients only.

Johnson, Li & Rabinovic (2007), *Biostatistics* 8:118-127, in the formulation of neuroComBat
(Fortin et al. 2017, *NeuroImage* 161:149-170; 2018, *NeuroImage* 167:104-120): per feature,
an OLS fit on site indicators + protected covariates, standardisation by the pooled residual
variance, per-site location (gamma) and scale (delta) estimates shrunk towards their
across-feature priors by parametric empirical Bayes. The estimates are kept, so patients held
out of the fit are harmonised with the training sites' parameters and their own covariates.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.selection._variance import SelectionError, check_has_features, feature_names

logger = logging.getLogger(__name__)

STEP = "ComBat"
CONV = 1e-4  # neuroCombat it_sol's relative-change tolerance
MAX_ITER = 10_000  # it_sol has no cap; converges in tens of iterations on real data


def _some(ids, limit: int = 5) -> str:
    ids = [str(i) for i in ids]
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


class ComBat(TransformerMixin, BaseEstimator):
    """ComBat site harmonisation that can be fitted inside a cross-validation fold.

    The model per feature ``g`` for patient ``i`` at site ``s`` is
    ``x_ig = alpha_g + C_i beta_g + gamma_sg + delta_sg * e_ig``. ``fit`` estimates
    ``alpha`` (the sample-weighted mean of the site intercepts), ``beta`` (effects of the
    protected covariates), the pooled residual variance, and the empirical-Bayes site
    parameters ``gamma*`` and ``delta*``; ``transform`` maps each row to
    ``alpha + C beta + (x - alpha - C beta - sqrt(var_pooled) gamma*_s) / sqrt(delta*_s)``,
    i.e. neuroCombat's ``adjust_data_final`` applied to new rows. On the fit rows
    ``fit_transform`` equals ``neuroCombat.neuroCombat(...)["data"].T``.

    Features with a missing value among the fit rows, or with variance <= ``eps`` (raw, or
    residual after the design), pass through unchanged and do not enter the priors.

    The label ``y`` is ignored on purpose: protecting pCR as a covariate would need each
    held-out patient's pCR to harmonise them, which leaks the outcome into the test fold.

    Parameters
    ----------
    batch : pandas.Series, array-like or None, default=None
        Site / scanner label of each patient. A Series is indexed by patient ID and looked up
        by the index of X (a DataFrame), so the same object serves any fold. Any other 1-D
        array-like is aligned with the rows of X by position (numpy input; every call must
        then pass those same rows). None: no site information; fit only validates X and
        ``transform`` is the identity (this is also what lets scikit-learn's estimator checks
        run).
    covariates : pandas.DataFrame, array-like or None, default=None
        Biological covariates whose effects are protected (subtype, age...), numeric only:
        categorical ones must already be one-hot / 0-1 coded (drop one level, since the site
        indicators carry the intercept). Indexed by patient ID when ``batch`` is a Series,
        otherwise aligned with the rows of X by position.
    parametric : bool, default=True
        Parametric empirical Bayes (neuroCombat's ``it_sol``). Only True is implemented.
    mean_only : bool, default=False
        Adjust site means only (``delta* = 1``), as ``neuroCombat(mean_only=True)``.
    eps : float, default=1e-8
        Features whose variance (in their own units) is <= eps pass through. Range >= 0.

    Attributes
    ----------
    batches_ : ndarray of str
        Sorted site labels seen in fit.
    harmonised_ : ndarray of bool of shape (n_features_in_,)
        Features that are harmonised; the others pass through.
    passthrough_ : dict
        Feature name -> why it passes through unchanged.
    grand_mean_, var_pooled_ : ndarray of shape (n_harmonised,)
        ``alpha`` and the pooled residual variance (divided by n, as neuroCombat).
    beta_ : ndarray of shape (n_covariates, n_harmonised)
        Covariate coefficients, in the order of ``covariate_columns_``.
    gamma_star_, delta_star_ : ndarray of shape (n_batches, n_harmonised)
        Empirical-Bayes site location and scale, in the order of ``batches_``.
    covariate_columns_ : list of str
        Covariate names (``c0, c1, ...`` for array input).
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Examples
    --------
    >>> combat = ComBat(batch=cohort["site"],  # doctest: +SKIP
    ...                 covariates=cohort[["subtype_her2", "age"]])
    >>> cross_val_score(make_pipeline(combat, LogisticRegression()),  # doctest: +SKIP
    ...                 features, pcr, scoring="roc_auc")
    """

    def __init__(self, batch=None, covariates=None, *, parametric=True, mean_only=False,
                 eps=1e-8):
        self.batch = batch
        self.covariates = covariates
        self.parametric = parametric
        self.mean_only = mean_only
        self.eps = eps

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN columns pass through in fit and NaN stays NaN in transform
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        """Estimate the site parameters on the rows of X; y is ignored (see the class notes).

        Parameters
        ----------
        X : DataFrame indexed by patient ID, or array aligned with ``batch``
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        check_has_features(X, step=STEP)
        raw = X
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        names = feature_names(self)
        n, m = X.shape
        self.harmonised_ = np.zeros(m, dtype=bool)
        self.passthrough_ = {}
        self.batches_ = np.array([], dtype=str)
        self.covariate_columns_ = []
        if self.batch is None:
            self.passthrough_ = {name: "batch=None: no site to harmonise" for name in names}
            self._store(np.zeros((0, 0)), np.zeros(0), np.zeros(0), np.zeros((0, 0)),
                        np.zeros((0, 0)))
            return self
        sites, covs = self._rows(raw, n)
        self.covariate_columns_ = self._covariate_names(covs.shape[1])
        self.batches_, codes = np.unique(sites, return_inverse=True)
        self._check_sites(raw, sites, codes)
        design = np.hstack([np.eye(len(self.batches_))[codes], covs])
        self._check_design(design)

        with np.errstate(invalid="ignore"):  # all-NaN columns: NaN variance, reported below
            nan_cols = np.isnan(X).any(axis=0)
            raw_var = np.where(nan_cols, np.nan, np.var(np.where(nan_cols, 0.0, X), axis=0))
        ok = ~nan_cols & (raw_var > self.eps)
        coef = np.linalg.solve(design.T @ design, design.T @ X[:, ok])
        var_pooled = ((X[:, ok] - design @ coef) ** 2).mean(axis=0)
        # a feature the design explains fully has no residual to rescale by
        flat_resid = var_pooled <= self.eps
        keep = np.flatnonzero(ok)[~flat_resid]
        coef, var_pooled = coef[:, ~flat_resid], var_pooled[~flat_resid]
        self.harmonised_[keep] = True
        for j in np.flatnonzero(~self.harmonised_):
            self.passthrough_[names[j]] = (
                "missing value among the fit rows" if nan_cols[j]
                else f"variance {raw_var[j]:.3g} <= eps={self.eps}" if raw_var[j] <= self.eps
                else f"residual variance after site + covariates <= eps={self.eps}")
        if self.passthrough_:
            n_nan = int(nan_cols.sum())
            # constant features are expected (the variance filter drops them next) and would
            # repeat in every fold: said at INFO; a missing value is worth a warning
            logger.log(logging.WARNING if n_nan else logging.INFO,
                       "ComBat: %d of %d features pass through unharmonised (%d with a "
                       "missing value among the %d fit rows, %d with variance <= eps=%g); "
                       "see passthrough_", len(self.passthrough_), m, n_nan, n,
                       len(self.passthrough_) - n_nan, self.eps)
        if len(keep) == 0:
            self._store(np.zeros(0), np.zeros(0), np.zeros((covs.shape[1], 0)),
                        np.zeros((len(self.batches_), 0)), np.zeros((len(self.batches_), 0)))
            return self
        if len(keep) == 1:
            raise SelectionError(
                f"only one feature ({names[keep[0]]}) can be harmonised: the empirical-Bayes "
                "priors pool site effects across features and need at least 2", step=STEP)

        n_batch = len(self.batches_)
        counts = np.bincount(codes, minlength=n_batch)
        grand_mean = (counts / n) @ coef[:n_batch]
        beta = coef[n_batch:]
        gamma_star, delta_star = _site_parameters(
            X[:, keep], covs, codes, grand_mean, beta, var_pooled, mean_only=self.mean_only)
        self._store(grand_mean, var_pooled, beta, gamma_star, delta_star)
        return self

    def transform(self, X):
        """Harmonise the rows of X with the fitted site parameters.

        Parameters
        ----------
        X : DataFrame indexed by patient ID, or array aligned with ``batch``
            Patients from sites seen in fit; their covariates are looked up as in fit.

        Returns
        -------
        DataFrame (same index and columns) for DataFrame input, else ndarray.
        """
        check_is_fitted(self)
        raw = X
        X = validate_data(self, X, reset=False, dtype=np.float64,
                          ensure_all_finite="allow-nan", copy=True)
        if self.harmonised_.any():
            sites, covs = self._rows(raw, X.shape[0])
            codes = np.searchsorted(self.batches_, sites)
            codes[codes == len(self.batches_)] = 0
            unseen = self.batches_[codes] != sites
            if unseen.any():
                ids = self._ids(raw, X.shape[0])
                groups = pd.Series(ids[unseen]).groupby(sites[unseen])
                detail = "; ".join(f"site '{site}': {_some(g)}" for site, g in groups)
                raise SelectionError(
                    f"{unseen.sum()} patient(s) come from a site not seen in fit ({detail}; "
                    f"fitted sites: {', '.join(map(str, self.batches_))}): a harmonised model cannot "
                    "place a site it was not fitted on. Stratify the folds by site, or drop "
                    "these patients.", step=STEP)
            mu = self.grand_mean_ + covs @ self.beta_
            sd = np.sqrt(self.var_pooled_)
            h = self.harmonised_
            # adjust_data_final, simplified: standardise, remove gamma*, divide by delta*,
            # scale back -> mu + (x - mu - sd*gamma*) / sqrt(delta*)
            X[:, h] = mu + (X[:, h] - mu - sd * self.gamma_star_[codes]) / np.sqrt(
                self.delta_star_[codes])
        if isinstance(raw, pd.DataFrame):
            return pd.DataFrame(X, index=raw.index, columns=raw.columns)
        return X

    def get_feature_names_out(self, input_features=None):
        """Output names: the input names, unchanged."""
        check_is_fitted(self)
        return feature_names(self)

    # -- helpers -------------------------------------------------------------------------

    def _check_params(self) -> None:
        def bad(name, allowed, value):
            raise SelectionError(f"parameter {name} must be {allowed}, got {value!r}", step=STEP)

        for name in ("parametric", "mean_only"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                bad(name, "a bool", getattr(self, name))
        if not self.parametric:
            bad("parametric", "True (non-parametric empirical Bayes is not implemented; use "
                "parametric=True, optionally with mean_only=True)", self.parametric)
        if (not isinstance(self.eps, numbers.Real) or isinstance(self.eps, bool)
                or not self.eps >= 0):
            bad("eps", "a float >= 0", self.eps)
        if isinstance(self.batch, pd.DataFrame):
            bad("batch", "a Series (patient ID -> site), a 1-D array-like or None",
                "a DataFrame")
        if isinstance(self.batch, pd.Series) and not self.batch.index.is_unique:
            dup = self.batch.index[self.batch.index.duplicated()].unique()
            bad("batch", "a Series with one site per patient ID", f"duplicates for {_some(dup)}")

    def _ids(self, raw, n: int) -> np.ndarray:
        if isinstance(raw, pd.DataFrame):
            return np.asarray(raw.index.astype(str), dtype=object)
        return np.array([f"row {i}" for i in range(n)], dtype=object)

    def _rows(self, raw, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Site label (str) and covariate row of every row of X, or a SelectionError."""
        ids = self._ids(raw, n)
        by_id = isinstance(self.batch, pd.Series)
        if by_id:
            if not isinstance(raw, pd.DataFrame):
                raise SelectionError(
                    "batch is a Series indexed by patient ID, so X must be a DataFrame indexed "
                    f"by patient ID (got {type(raw).__name__}); pass batch as an array aligned "
                    "with the rows for array input", step=STEP)
            sites = self.batch.reindex(raw.index)
            missing = sites.isna().to_numpy()
            if missing.any():
                raise SelectionError(
                    f"{missing.sum()} patient(s) have no site in batch: {_some(ids[missing])}. "
                    "Add their site (scanner) to the batch Series.", step=STEP)
            sites = sites.to_numpy()
        else:
            sites = np.asarray(self.batch, dtype=object)
            if sites.ndim != 1 or len(sites) != n:
                raise SelectionError(
                    f"batch given as an array has shape {sites.shape} but X has {n} rows: an "
                    "array is aligned with the rows by position, so every call must pass those "
                    "same rows; for held-out patients pass batch as a Series indexed by "
                    "patient ID", step=STEP)
            if pd.isna(sites).any():
                missing = pd.isna(sites)
                raise SelectionError(f"{missing.sum()} row(s) have no site in batch: "
                                     f"{_some(ids[missing])}", step=STEP)
        return sites.astype(str), self._covariate_rows(raw, ids, n, by_id)

    def _covariate_rows(self, raw, ids, n: int, by_id: bool) -> np.ndarray:
        cov = self.covariates
        if cov is None:
            return np.zeros((n, 0))
        if by_id:
            if not isinstance(cov, pd.DataFrame):
                raise SelectionError("covariates must be a DataFrame indexed by patient ID when "
                                     f"batch is a Series, got {type(cov).__name__}", step=STEP)
            absent = ~raw.index.isin(cov.index)
            if absent.any():
                raise SelectionError(
                    f"{absent.sum()} patient(s) are missing from covariates: "
                    f"{_some(ids[absent])}", step=STEP)
            cov = cov.loc[raw.index]
        frame = pd.DataFrame(cov) if not isinstance(cov, pd.DataFrame) else cov
        text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if text:
            raise SelectionError(
                f"covariates must be numeric; columns {_some(text)} are not: one-hot / 0-1 "
                "code categorical covariates (dropping one level) first", step=STEP)
        values = frame.to_numpy(dtype=np.float64)
        if values.ndim != 2 or len(values) != n:
            raise SelectionError(f"covariates have shape {values.shape} but X has {n} rows",
                                 step=STEP)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            raise SelectionError(f"{bad.sum()} patient(s) have a missing or infinite covariate "
                                 f"value: {_some(ids[bad])}; impute or drop them", step=STEP)
        return values

    def _covariate_names(self, p: int) -> list[str]:
        if isinstance(self.covariates, pd.DataFrame):
            return [str(c) for c in self.covariates.columns]
        return [f"c{k}" for k in range(p)]

    def _check_sites(self, raw, sites: np.ndarray, codes: np.ndarray) -> None:
        if len(self.batches_) < 2:
            raise SelectionError(
                f"ComBat needs two sites, but all {len(sites)} fit rows come from site "
                f"'{self.batches_[0]}'. Stratify the folds by site so that every training fold "
                "holds each site, or leave ComBat out for a single-site cohort.", step=STEP)
        counts = np.bincount(codes)
        if counts.min() < 2:
            ids = self._ids(raw, len(sites))
            lone = [f"'{self.batches_[b]}' ({_some(ids[codes == b])})"
                    for b in np.flatnonzero(counts < 2)]
            raise SelectionError(
                f"every site needs at least 2 patients in the fit rows (ComBat estimates a "
                f"per-site variance); site(s) with one: {'; '.join(lone)}", step=STEP)

    def _check_design(self, design: np.ndarray) -> None:
        n_batch = len(self.batches_)
        if np.linalg.matrix_rank(design) == design.shape[1]:
            return
        # name the first covariate that adds nothing to the site indicators + earlier ones
        for k in range(n_batch, design.shape[1]):
            if np.linalg.matrix_rank(design[:, :k + 1]) <= k:
                culprit = self.covariate_columns_[k - n_batch]
                break
        raise SelectionError(
            f"the design (site indicators + covariates) is rank-deficient in the fit rows: "
            f"covariate '{culprit}' is constant, or a combination of the sites and the earlier "
            "covariates. Drop it, or stratify the folds so it varies within the training rows.",
            step=STEP)

    def _store(self, grand_mean, var_pooled, beta, gamma_star, delta_star) -> None:
        self.grand_mean_ = grand_mean
        self.var_pooled_ = var_pooled
        self.beta_ = beta.reshape(len(self.covariate_columns_), len(var_pooled))
        self.gamma_star_ = gamma_star
        self.delta_star_ = delta_star


def _site_parameters(Y, covs, codes, grand_mean, beta, var_pooled, *, mean_only):
    """Empirical-Bayes gamma* and delta* of each site (neuroCombat's fit_LS_model_and_find_priors
    and find_parametric_adjustments), each of shape (n_batches, n_features)."""
    s = (Y - grand_mean - covs @ beta) / np.sqrt(var_pooled)
    n_batch = codes.max() + 1
    gamma_hat = np.vstack([s[codes == b].mean(axis=0) for b in range(n_batch)])
    gamma_bar = gamma_hat.mean(axis=1)
    t2 = gamma_hat.var(axis=1, ddof=1)
    if mean_only:
        # neuroCombat / sva: postmean with n = 1 and d* = 1
        gamma_star = _postmean(gamma_hat, gamma_bar[:, None], 1, 1, t2[:, None])
        return gamma_star, np.ones_like(gamma_star)
    gamma_star, delta_star = [], []
    for b in range(n_batch):
        sb = s[codes == b]
        delta_hat = sb.var(axis=0, ddof=1)
        delta_hat[delta_hat == 0] = 1  # neuroCombat's convert_zeroes
        m, v = delta_hat.mean(), delta_hat.var(ddof=1)
        a_prior, b_prior = (2 * v + m**2) / v, (m * v + m**3) / v
        g, d = _it_sol(sb, gamma_hat[b], delta_hat, gamma_bar[b], t2[b], a_prior, b_prior)
        gamma_star.append(g)
        delta_star.append(d)
    return np.vstack(gamma_star), np.vstack(delta_star)


def _postmean(g_hat, g_bar, n, d_star, t2):
    return (t2 * n * g_hat + d_star * g_bar) / (t2 * n + d_star)


def _it_sol(sdat, g_hat, d_hat, g_bar, t2, a, b):
    """Alternate the posterior mean of gamma and variance of delta until the largest relative
    change is below CONV (neuroCombat's it_sol; sdat is NaN-free here)."""
    n = sdat.shape[0]
    g_old, d_old = g_hat.copy(), d_hat.copy()
    for _ in range(MAX_ITER):
        g_new = _postmean(g_hat, g_bar, n, d_old, t2)
        sum2 = ((sdat - g_new) ** 2).sum(axis=0)
        d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
        # an exactly-zero gamma gives inf/NaN here as in neuroCombat: NaN ends the loop
        with np.errstate(divide="ignore", invalid="ignore"):
            change = max((abs(g_new - g_old) / g_old).max(), (abs(d_new - d_old) / d_old).max())
        g_old, d_old = g_new, d_new
        if not change > CONV:
            return g_new, d_new
    logger.warning("ComBat: empirical Bayes did not converge in %d iterations (relative "
                   "change %.3g > %g); using the last estimate", MAX_ITER, change, CONV)
    return g_new, d_new
