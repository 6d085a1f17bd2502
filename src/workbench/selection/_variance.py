"""VarianceFilter: drop near-constant, all-missing and duplicate features.

Also home of what every selection step shares: :class:`SelectionError`,
:class:`SelectionWarning`, :class:`PandasSelectorMixin` (DataFrame in, DataFrame out) and
:func:`feature_names`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.errors import WorkbenchError


class SelectionError(WorkbenchError, ValueError):
    """A selection step cannot run on this data (labels, class sizes, parameters).

    Derives from :class:`ValueError` too, so scikit-learn tooling sees the usual type.
    """


class SelectionWarning(UserWarning):
    """A selection step kept fewer features than asked, or fell back to a default."""


def feature_names(est) -> np.ndarray:
    """The fitted estimator's input names: ``feature_names_in_`` or ``x0, x1, ...``."""
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        names = np.array([f"x{i}" for i in range(est.n_features_in_)], dtype=object)
    return np.asarray(names, dtype=object)


def check_has_features(X, *, step: str) -> None:
    """Raise a :class:`SelectionError` naming the cause when X has no column at all.

    The message keeps scikit-learn's wording ("0 feature(s) ... while a minimum of 1 is
    required") so generic tooling recognises it.
    """
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2 and shape[1] == 0:
        raise SelectionError(
            f"found array with 0 feature(s) (shape=({shape[0]}, 0)) while a minimum of 1 is "
            "required: an earlier step kept no feature (see its dropped_ / results_). "
            "Use UnivariateFilter(keep_at_least=1) or lower VarianceFilter.threshold.",
            step=step)


class PandasSelectorMixin:
    """``transform`` that returns a DataFrame (kept columns, same index) for DataFrame input.

    Goes before :class:`sklearn.feature_selection.SelectorMixin` in the bases; numpy input
    takes SelectorMixin's path, so ``get_support``, ``get_feature_names_out`` and
    ``inverse_transform`` come from scikit-learn unchanged.
    """

    def transform(self, X):
        """Keep the selected columns of X (a DataFrame stays a DataFrame)."""
        if not isinstance(X, pd.DataFrame):
            return super().transform(X)
        check_is_fitted(self)
        # validates the column count/names and the values; the original frame is returned
        validate_data(self, X, reset=False, dtype="numeric",
                      ensure_all_finite="allow-nan" if self.__sklearn_tags__().input_tags.allow_nan
                      else True, ensure_min_features=0)
        return X.iloc[:, np.flatnonzero(self.get_support())]


class VarianceFilter(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Drop features that are all-missing, near-constant, or exact duplicates of another.

    The spread is the population standard deviation (``ddof=0``) of the non-missing values
    of each feature (``numpy.nanstd``). Rules, in order:

    1. a feature with no non-missing value is dropped ("all values missing");
    2. a feature with ``std < threshold`` is dropped ("near-constant");
    3. among the remaining features, a column identical to an earlier one (same values,
       NaN in the same places) is dropped as a duplicate of the first occurrence.

    No label is used, so the step can be fitted on any split without leakage.

    Parameters
    ----------
    threshold : float, default=1e-8
        Minimum population standard deviation to keep a feature. Range >= 0.

    Attributes
    ----------
    std_ : ndarray of shape (n_features_in_,)
        Population standard deviation ignoring NaN (NaN for all-missing features).
    dropped_ : dict
        Dropped feature name -> reason.
    duplicates_ : dict
        Dropped duplicate name -> name of the kept feature it duplicates.
    support_ : ndarray of bool
        Kept features.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    def __init__(self, threshold=1e-8):
        self.threshold = threshold

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        """Find the features to keep; y is ignored."""
        check_has_features(X, step="VarianceFilter")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        if (not isinstance(self.threshold, numbers.Real) or isinstance(self.threshold, bool)
                or not self.threshold >= 0):
            raise SelectionError(f"parameter threshold must be a float >= 0, got "
                                 f"{self.threshold!r}", step="VarianceFilter")
        names = feature_names(self)
        missing = np.isnan(X)
        all_missing = missing.all(axis=0)
        std = np.full(X.shape[1], np.nan)
        if (~all_missing).any():
            std[~all_missing] = np.nanstd(X[:, ~all_missing], axis=0)
        keep = np.ones(X.shape[1], dtype=bool)
        dropped: dict[str, str] = {}
        duplicates: dict[str, str] = {}
        first_seen: dict[bytes, int] = {}
        # canonical bytes: one NaN payload, +0.0 for -0.0, so equal columns hash equal
        canon = np.where(missing, np.nan, X + 0.0).T.copy()
        for j, name in enumerate(names):
            if all_missing[j]:
                keep[j] = False
                dropped[name] = "all values missing (NaN-only column)"
            elif std[j] < self.threshold:
                keep[j] = False
                dropped[name] = (f"near-constant: population std {std[j]:.3g} < "
                                 f"threshold={self.threshold}")
            else:
                key = canon[j].tobytes()
                if key in first_seen:
                    keep[j] = False
                    original = names[first_seen[key]]
                    duplicates[name] = original
                    dropped[name] = f"duplicate of {original}"
                else:
                    first_seen[key] = j
        if not keep.any():
            warnings.warn(f"VarianceFilter: all {X.shape[1]} features were dropped "
                          f"({len(duplicates)} duplicates, the rest missing or constant); "
                          "see dropped_", SelectionWarning, stacklevel=2)
        self.std_ = std
        self.support_ = keep
        self.dropped_ = dropped
        self.duplicates_ = duplicates
        return self

    def _get_support_mask(self):
        return self.support_
