"""UnivariateFilter: per-feature two-sample test chosen by normality and variance checks.

Also home of :func:`check_binary_target`, shared by the supervised selection steps.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import ClassifierTags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

from workbench.selection._variance import (
    PandasSelectorMixin,
    SelectionError,
    SelectionWarning,
    check_has_features,
    feature_names,
)

SHAPIRO_MIN_N = 4
SHAPIRO_MAX_N = 5000  # scipy: the p-value may be inaccurate above 5000


def check_binary_target(y, *, step: str, min_per_class: int = 1):
    """Encode a binary target as 0/1, or raise a :class:`SelectionError` saying why not.

    Parameters
    ----------
    y
        Labels (any two distinct values; the larger sorted value becomes 1).
    step
        Estimator name, for the message.
    min_per_class
        Smallest acceptable class size.

    Returns
    -------
    y01 : ndarray of int, classes : ndarray
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise SelectionError(f"needs a 1-D binary target, got shape {y.shape}", step=step)
    kind = type_of_target(y)
    if kind == "unknown":
        raise SelectionError(f"Unknown label type {y.dtype}: needs a binary target (pCR 0/1)",
                             step=step)
    counts = pd.Series(y).value_counts(dropna=False).sort_index()
    if pd.Series(y).isna().any():
        raise SelectionError(f"the target has missing values (class counts {counts.to_dict()}); "
                             "drop unlabelled patients first", step=step)
    if len(counts) < 2:
        raise SelectionError(f"needs a binary target but y has one class only (class counts "
                             f"{counts.to_dict()}); a selection step cannot compare classes",
                             step=step)
    if kind != "binary":
        raise SelectionError(f"needs a binary target (pCR 0/1), got a {kind} target with "
                             f"{len(counts)} distinct values", step=step)
    if counts.min() < min_per_class:
        raise SelectionError(f"each class needs at least min_per_class={min_per_class} samples, "
                             f"got class counts {counts.to_dict()}", step=step)
    classes = np.asarray(counts.index)
    return (y == classes[1]).astype(int), classes


def _check_params(est) -> None:
    def bad(name, allowed, value):
        raise SelectionError(f"parameter {name} must be {allowed}, got {value!r}",
                             step=type(est).__name__)

    if not isinstance(est.alpha, numbers.Real) or not 0 < est.alpha <= 1:
        bad("alpha", "a float in (0, 1]", est.alpha)
    if not isinstance(est.assumption_alpha, numbers.Real) or not 0 < est.assumption_alpha < 1:
        bad("assumption_alpha", "a float in (0, 1)", est.assumption_alpha)
    if (not isinstance(est.min_per_class, numbers.Integral) or isinstance(est.min_per_class, bool)
            or est.min_per_class < 2):
        bad("min_per_class", "an int >= 2", est.min_per_class)
    if (not isinstance(est.keep_at_least, numbers.Integral) or isinstance(est.keep_at_least, bool)
            or est.keep_at_least < 0):
        bad("keep_at_least", "an int >= 0", est.keep_at_least)
    if est.levene_center not in ("mean", "median"):
        bad("levene_center", "'mean' or 'median'", est.levene_center)


def _shapiro_normal(a: np.ndarray, alpha: float) -> np.ndarray:
    """Shapiro-Wilk per column of a NaN-free block; False where the test is not applicable."""
    n, p = a.shape
    normal = np.zeros(p, dtype=bool)
    if not SHAPIRO_MIN_N <= n <= SHAPIRO_MAX_N or p == 0:
        return normal
    varies = np.ptp(a, axis=0) > 0  # a constant class is not "normal": scipy warns, p=1
    if varies.any():
        normal[varies] = stats.shapiro(a[:, varies], axis=0).pvalue >= alpha
    return normal


def _test_block(a: np.ndarray, b: np.ndarray, alpha: float, center: str) -> dict:
    """Run the decision tree on NaN-free blocks a (class 0) and b (class 1), column-wise."""
    p = a.shape[1]
    normal_0 = _shapiro_normal(a, alpha)
    normal_1 = _shapiro_normal(b, alpha)
    both = normal_0 & normal_1
    levene_p = np.full(p, np.nan)
    test = np.full(p, "mannwhitney", dtype=object)
    pval = np.full(p, np.nan)
    if both.any():
        levene_p[both] = stats.levene(a[:, both], b[:, both], center=center, axis=0).pvalue
        equal = both & (levene_p >= alpha)
        welch = both & ~equal
        test[equal], test[welch] = "t", "welch"
        if equal.any():
            pval[equal] = stats.ttest_ind(a[:, equal], b[:, equal], axis=0).pvalue
        if welch.any():
            pval[welch] = stats.ttest_ind(a[:, welch], b[:, welch], axis=0,
                                          equal_var=False).pvalue
    mw = ~both
    if mw.any():
        pval[mw] = stats.mannwhitneyu(a[:, mw], b[:, mw], axis=0,
                                      alternative="two-sided").pvalue
    return {"test": test, "p": pval, "normal_0": normal_0, "normal_1": normal_1,
            "levene_p": levene_p}


class UnivariateFilter(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Keep features whose distribution differs between the two classes.

    Per feature: Shapiro-Wilk in each class (run only when the class has 4 to 5000
    non-missing values; outside that range, or when the class is constant, the class is
    treated as non-normal). If both classes are normal, Levene's test decides between
    Student's t (equal variances) and Welch's t; otherwise the two-sided Mann-Whitney U
    test is used. Assumption tests use ``assumption_alpha``; a feature is kept when its
    p-value is below ``alpha`` (no multiplicity correction: this is a screening filter
    that LASSO follows). All tests are scipy's, vectorised over features with ``axis=0``;
    p-values equal direct scipy calls.

    Missing values are dropped per feature and class (features with the same non-missing
    counts per class are tested together, so scattered NaNs cost little). A feature with
    fewer than ``min_per_class`` non-missing values in a class is skipped (not kept).

    Parameters
    ----------
    alpha : float, default=0.05
        Keep a feature when p < alpha. Range (0, 1].
    min_per_class : int, default=3
        Minimum non-missing samples per class for a feature to be tested, and minimum class
        size for ``fit`` to run at all. Range >= 2.
    assumption_alpha : float, default=0.05
        Level of the Shapiro-Wilk and Levene tests (normal / equal variances when p >= it).
    levene_center : {"mean", "median"}, default="mean"
        Levene's test is only reached when both classes look normal, so the classic
        mean-centred Levene test (more powerful under normality) is the default;
        "median" is the Brown-Forsythe variant (scipy's default).
    keep_at_least : int, default=0
        If fewer features pass, keep the ones with the smallest p-values up to this number
        (with a :class:`SelectionWarning`). With 0, a filter that passes nothing returns an
        empty selection with a warning; :func:`selection_pipeline` uses 1.

    Attributes
    ----------
    results_ : pandas.DataFrame
        One row per input feature: feature, test ('t' | 'welch' | 'mannwhitney' | 'skipped'),
        p, normal_0, normal_1, levene_p, n_0, n_1, kept, reason.
    support_ : ndarray of bool
    classes_ : ndarray
        The two labels; ``classes_[1]`` is "class 1" in ``results_``.
    n_features_in_, feature_names_in_
    """

    def __init__(self, alpha=0.05, min_per_class=3, assumption_alpha=0.05,
                 levene_center="mean", keep_at_least=0):
        self.alpha = alpha
        self.min_per_class = min_per_class
        self.assumption_alpha = assumption_alpha
        self.levene_center = levene_center
        self.keep_at_least = keep_at_least

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        # Binary labels only: declaring it lets sklearn's checks send two-class targets.
        tags.classifier_tags = ClassifierTags(multi_class=False)
        return tags

    def fit(self, X, y):
        """Test every feature of X against the binary label y.

        Raises
        ------
        SelectionError
            When y is not binary or a class has fewer than ``min_per_class`` samples.
        """
        check_has_features(X, step="UnivariateFilter")
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        _check_params(self)
        step = type(self).__name__
        y01, self.classes_ = check_binary_target(y, step=step, min_per_class=self.min_per_class)
        names = feature_names(self)
        a_all, b_all = X[y01 == 0], X[y01 == 1]
        n_0 = (~np.isnan(a_all)).sum(axis=0)
        n_1 = (~np.isnan(b_all)).sum(axis=0)
        p = X.shape[1]
        out = {"test": np.full(p, "skipped", dtype=object), "p": np.full(p, np.nan),
               "normal_0": np.zeros(p, bool), "normal_1": np.zeros(p, bool),
               "levene_p": np.full(p, np.nan)}
        testable = (n_0 >= self.min_per_class) & (n_1 >= self.min_per_class)
        # Every test here ignores the order of values within a class, so sorting each class
        # column-wise (NaN sorts last) turns the columns that share non-missing counts
        # (n_0, n_1) into NaN-free blocks that are tested together, whatever the NaN layout.
        if np.isnan(X).any():
            a_all, b_all = np.sort(a_all, axis=0), np.sort(b_all, axis=0)
        groups: dict[tuple[int, int], list[int]] = {}
        for j in np.flatnonzero(testable):
            groups.setdefault((int(n_0[j]), int(n_1[j])), []).append(j)
        with warnings.catch_warnings():
            # degenerate columns (ties, zero variance) give NaN p-values, handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            for (c0, c1), idx in groups.items():
                block = _test_block(a_all[:c0, idx], b_all[:c1, idx],
                                    self.assumption_alpha, self.levene_center)
                for key, values in block.items():
                    out[key][idx] = values
        kept = testable & (out["p"] < self.alpha)
        reason = np.empty(p, dtype=object)
        for j in range(p):
            if not testable[j]:
                cls, n = (0, n_0[j]) if n_0[j] < self.min_per_class else (1, n_1[j])
                reason[j] = (f"skipped: class {self.classes_.tolist()[cls]!r} has {n} non-missing "
                             f"values < min_per_class={self.min_per_class}")
            elif np.isnan(out["p"][j]):
                reason[j] = "dropped: p-value undefined (no variation to test)"
            elif kept[j]:
                reason[j] = f"kept: p={out['p'][j]:.3g} < alpha={self.alpha}"
            else:
                reason[j] = f"dropped: p={out['p'][j]:.3g} >= alpha={self.alpha}"
        n_kept = int(kept.sum())
        if n_kept < self.keep_at_least:
            order = np.argsort(np.where(testable & ~kept & np.isfinite(out["p"]),
                                        out["p"], np.inf), kind="stable")
            extra = [j for j in order[: self.keep_at_least - n_kept]
                     if np.isfinite(out["p"][j]) and testable[j] and not kept[j]]
            for j in extra:
                kept[j] = True
                reason[j] = (f"kept by keep_at_least={self.keep_at_least} fallback: "
                             f"smallest p={out['p'][j]:.3g} although >= alpha={self.alpha}")
            warnings.warn(f"{step}: {n_kept} feature(s) had p < alpha={self.alpha}; kept "
                          f"{len(extra)} more with the smallest p-values "
                          f"(keep_at_least={self.keep_at_least})", SelectionWarning,
                          stacklevel=2)
        if not kept.any():
            warnings.warn(f"{step}: no feature has p < alpha={self.alpha} "
                          f"({int(testable.sum())} of {p} testable); the selection is empty. "
                          "Set keep_at_least=1 to keep the best feature instead.",
                          SelectionWarning, stacklevel=2)
        self.support_ = kept
        self.results_ = pd.DataFrame({
            "feature": names, "test": out["test"], "p": out["p"],
            "normal_0": out["normal_0"], "normal_1": out["normal_1"],
            "levene_p": out["levene_p"], "n_0": n_0, "n_1": n_1, "kept": kept,
            "reason": reason})
        return self

    def _get_support_mask(self):
        return self.support_
