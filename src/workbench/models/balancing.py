"""Class balancing for classifiers that have no ``class_weight``.

:class:`ClassBalanced` wraps an estimator and, at ``fit`` time only (so it lives inside every
CV fold), either passes balanced ``sample_weight`` (AdaBoost, XGBoost, CatBoost can use them)
or randomly oversamples the minority class to parity (kNN and MLP, whose ``fit`` takes no
weights). Prediction is the wrapped estimator's, unchanged.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted

METHODS = ("sample_weight", "oversample", "scale_pos_weight")


class ClassBalanced(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` with balanced classes.

    Parameters
    ----------
    estimator
        Any classifier.
    method
        ``"sample_weight"``: balanced weights n / (k · n_class) passed to ``fit``;
        ``"oversample"``: minority rows drawn with replacement until classes are equal;
        ``"scale_pos_weight"``: XGBoost's ``scale_pos_weight = n_negative / n_positive``.
    random_state
        Seed for oversampling.
    """

    def __init__(self, estimator, method: str = "sample_weight", random_state: int | None = 0):
        self.estimator = estimator
        self.method = method
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)  # input handling is the wrapped estimator's
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags

    def fit(self, X, y):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        check_consistent_length(X, y)
        y_arr = np.asarray(y)
        check_classification_targets(y_arr)
        self.classes_ = np.unique(y_arr)
        est = clone(self.estimator)
        if self.method == "sample_weight":
            est.fit(X, y, sample_weight=compute_sample_weight("balanced", y_arr))
        elif self.method == "scale_pos_weight":
            pos = float((y_arr == self.classes_[-1]).sum())
            neg = float(len(y_arr) - pos)
            est.set_params(scale_pos_weight=neg / pos if pos else 1.0)
            est.fit(X, y)
        else:
            idx = _oversample_index(y_arr, self.random_state)
            if not hasattr(X, "iloc"):  # a DataFrame keeps its column names for est
                X = check_array(X, accept_sparse="csr", dtype=None, ensure_all_finite=False)
            Xs = _safe_indexing(X, idx)
            ys = _safe_indexing(y if hasattr(y, "iloc") else y_arr, idx)
            est.fit(Xs, ys)
        self.estimator_ = est
        if hasattr(est, "n_features_in_"):
            self.n_features_in_ = est.n_features_in_
        if hasattr(est, "feature_names_in_"):
            self.feature_names_in_ = est.feature_names_in_
        return self

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)


def _oversample_index(y: np.ndarray, random_state: int | None) -> np.ndarray:
    rng = np.random.default_rng(random_state)
    classes, counts = np.unique(y, return_counts=True)
    target = counts.max()
    parts = []
    for cls, count in zip(classes, counts, strict=True):
        idx = np.flatnonzero(y == cls)
        parts.append(idx)
        if count < target:
            parts.append(rng.choice(idx, size=target - count, replace=True))
    return np.sort(np.concatenate(parts))
