"""RobustnessFilter: keep the features that reproduce under image perturbations."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import validate_data

from workbench.selection._variance import (
    PandasSelectorMixin,
    SelectionError,
    SelectionWarning,
    check_has_features,
    feature_names,
)

STEP = "RobustnessFilter"


def _icc_lookup(icc) -> dict[str, float]:
    """Feature name -> ICC from a mapping, a Series, or an ICC table (feature, icc)."""
    if icc is None:
        return {}
    if isinstance(icc, pd.DataFrame):
        if not {"feature", "icc"} <= set(icc.columns):
            raise SelectionError("parameter icc as a DataFrame needs columns 'feature' and "
                                 f"'icc' (workbench.features.robustness.icc_table), got "
                                 f"{list(icc.columns)}", step=STEP)
        icc = pd.Series(icc["icc"].to_numpy(), index=icc["feature"])
    if not isinstance(icc, Mapping | pd.Series):
        raise SelectionError("parameter icc must be a mapping or Series feature name -> ICC, "
                             f"got {type(icc).__name__}", step=STEP)
    out = {}
    for name, value in icc.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError) as exc:
            raise SelectionError(f"parameter icc: the ICC of feature {name!r} is not a number "
                                 f"({value!r})", step=STEP) from exc
    return out


class RobustnessFilter(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Keep features whose ICC under perturbation reaches a threshold.

    The ICC of each feature comes from a perturbation study
    (:func:`workbench.features.robustness.icc_table`: ICC(3,1) of the feature across the
    original image and perturbed copies). A column is

    * kept when its ICC is ``>= threshold``;
    * dropped when its ICC is below ``threshold``;
    * dropped when its ICC is NaN: the feature was constant, or missing for most patients,
      in the perturbation study, so nothing shows that it reproduces (and a constant one
      carries no information anyway);
    * kept when it has no ICC at all: clinical, kinetic and deep columns were not part of
      the perturbation study, and this filter judges only what was studied.

    Label-free: ``fit`` ignores ``y``. Its only input is how each feature reproduces under
    perturbations that use no label (rotation, noise, contour changes), and the ICC is
    computed without the pCR outcome, so the filter may be fitted on all patients, or on
    the training split inside a Pipeline, without leaking the label. With ``icc=None`` every
    column is kept.

    Parameters
    ----------
    icc : Mapping[str, float] or pandas.Series or pandas.DataFrame, default=None
        Feature name -> ICC; a DataFrame must have columns ``feature`` and ``icc``
        (:func:`~workbench.features.robustness.icc_table`'s output).
    threshold : float, default=0.75
        Minimum ICC to keep a scored feature; range [0, 1] (0.75: "good" reliability,
        Koo & Li 2016; 0.9: "excellent").

    Attributes
    ----------
    icc_ : ndarray of shape (n_features_in_,)
        ICC of each input column (NaN when it has none or it is NaN).
    scored_ : ndarray of bool
        Columns that have an entry in ``icc``.
    support_ : ndarray of bool
        Kept columns.
    dropped_ : dict
        Dropped feature name -> reason (iterating it gives the names).
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    def __init__(self, icc=None, threshold=0.75):
        self.icc = icc
        self.threshold = threshold

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        """Find the columns to keep; y is ignored."""
        check_has_features(X, step=STEP)
        validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        t = self.threshold
        if (not isinstance(t, numbers.Real) or isinstance(t, bool) or not math.isfinite(t)
                or not 0 <= t <= 1):
            raise SelectionError(f"parameter threshold must be a float in [0, 1], got {t!r}",
                                 step=STEP)
        lookup = _icc_lookup(self.icc)
        names = feature_names(self)
        scored = np.array([str(n) in lookup for n in names], dtype=bool)
        icc = np.array([lookup.get(str(n), np.nan) for n in names], dtype=float)
        keep = np.ones(len(names), dtype=bool)
        dropped: dict[str, str] = {}
        for j, name in enumerate(names):
            if not scored[j]:
                continue
            if np.isnan(icc[j]):
                keep[j] = False
                dropped[name] = "ICC undefined (NaN) in the perturbation study"
            elif icc[j] < t:
                keep[j] = False
                dropped[name] = f"ICC {icc[j]:.3f} < threshold={t}"
        if not keep.any():
            warnings.warn(f"RobustnessFilter: all {len(names)} features were dropped (ICC "
                          f"below {t} or undefined); see dropped_", SelectionWarning,
                          stacklevel=2)
        self.icc_ = icc
        self.scored_ = scored
        self.support_ = keep
        self.dropped_ = dropped
        return self

    def _get_support_mask(self):
        return self.support_
