"""PrespecifiedColumns: the knowledge-driven route -- a feature list fixed before the data.

No label is used to choose features: the list (exact names or shell-style patterns such as
``rad__early_original_shape_*``) comes from the run config, chosen from prior knowledge of
the biology. Every output of a prespecified model says so; its honesty rests on the list
having been written before the labels were looked at.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.selection._variance import (
    PandasSelectorMixin,
    SelectionError,
    check_has_features,
    feature_names,
)


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def match_patterns(patterns: Iterable[str], columns: Sequence[str]) -> dict[str, list[str]]:
    """``{pattern: [matching columns, in table order]}`` (exact name or fnmatch pattern)."""
    cols = [str(c) for c in columns]
    return {p: ([c for c in cols if fnmatchcase(c, p)] if _is_pattern(p)
                else [c for c in cols if c == p]) for p in patterns}


def check_patterns(patterns: Iterable[str], columns: Sequence[str], *,
                   where: str = "the feature tables",
                   what: str = "prespecified features") -> None:
    """Refuse patterns that match no column, listing the closest column names.

    Raises
    ------
    SelectionError
        One line per unmatched pattern, e.g. ``'kin__ser_medain' matches no column of the
        feature tables; closest: kin__ser_median, kin__ser_mean``.
    """
    cols = [str(c) for c in columns]
    lines = []
    for pattern, hits in match_patterns(patterns, cols).items():
        if hits:
            continue
        stem = pattern.split("*")[0].split("?")[0].split("[")[0] if _is_pattern(pattern) \
            else pattern
        close = difflib.get_close_matches(stem, cols, n=3, cutoff=0.5)
        if not close and stem:
            close = [c for c in cols if c.startswith(stem[: max(3, len(stem) // 2)])][:3]
        lines.append(f"{pattern!r} matches no column of {where}; closest: "
                     f"{', '.join(close) if close else '(none)'}")
    if lines:
        raise SelectionError(f"{what} not found:\n  " + "\n  ".join(lines),
                             step="strategies")


class PrespecifiedColumns(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Keep the columns named (or matched) by ``features``, plus the clinical columns.

    Parameters
    ----------
    features : tuple of str, default=()
        Exact column names or fnmatch patterns.
    passthrough_prefix : str or None, default="clin__"
        Columns always kept (the clinical covariates).

    Raises
    ------
    SelectionError
        At ``fit``, when no column other than the passed-through ones matches: the strategy
        would keep no imaging feature for this feature set.

    Attributes
    ----------
    selected_ : ndarray of str
    support_ : ndarray of bool
    n_features_in_, feature_names_in_
    """

    def __init__(self, features=(), passthrough_prefix="clin__"):
        self.features = features
        self.passthrough_prefix = passthrough_prefix

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        """Match the list against X's columns; y is ignored."""
        check_has_features(X, step="PrespecifiedColumns")
        validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        if isinstance(self.features, str) or not all(isinstance(f, str)
                                                     for f in self.features):
            raise SelectionError(f"parameter features must be a list of column names or "
                                 f"patterns, got {self.features!r}",
                                 step="PrespecifiedColumns")
        names = [str(n) for n in feature_names(self)]
        hits = {c for cols in match_patterns(self.features, names).values() for c in cols}
        listed = np.array([n in hits for n in names], dtype=bool)
        passthrough = np.array([bool(self.passthrough_prefix)
                                and n.startswith(self.passthrough_prefix) for n in names])
        if not (listed & ~passthrough).any():
            raise SelectionError(
                f"prespecified strategy keeps no feature here: none of {list(self.features)} "
                f"matches a column of this feature set ({len(names)} columns, e.g. "
                f"{names[:3]})", step="PrespecifiedColumns")
        self.support_ = listed | passthrough
        self.selected_ = np.asarray([n for n, k in zip(names, listed, strict=True) if k],
                                    dtype=object)
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_
