"""StabilitySelector: features an L1 logistic model picks again and again on half-samples.

Stability selection (Meinshausen & Buehlmann 2010, with the complementary pairs of Shah &
Samworth 2013): the L1 path is fitted on ``n_subsamples`` random halves of the data (drawn as
complementary pairs, stratified by class), and a feature is kept when it is selected in at
least a fraction ``threshold`` of them somewhere in the penalty region Lambda. Lambda is
chosen by the Meinshausen-Buehlmann bound: with ``q`` features selected on average per
half-sample, the expected number of falsely selected features is at most
``q**2 / ((2 * threshold - 1) * p)``; Lambda runs from the strongest penalty down to where the
average number selected reaches ``q = sqrt(expected_false * (2 * threshold - 1) * p)``.

Unpenalised columns (``unpenalised``: the clinical covariates) enter every fit without
penalty and are always kept.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.selection._penalised import alpha_max, penalised_logistic_path, unpenalised_mask
from workbench.selection._univariate import check_binary_target
from workbench.selection._variance import (
    PandasSelectorMixin,
    SelectionError,
    check_has_features,
    feature_names,
)


class StabilitySelector(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Keep features selected by L1 logistic fits on at least ``threshold`` of half-samples.

    Parameters
    ----------
    threshold : float, default=0.75
        Selection frequency needed, in (0.5, 1].
    expected_false : float, default=1.0
        Bound on the expected number of falsely selected features, which sets the penalty
        region (see module docstring). > 0.
    n_subsamples : int, default=50
        Half-samples (an even number: complementary pairs). >= 2.
    n_alphas : int, default=20
        Penalties per path, from the smallest that selects nothing down to 1 % of it.
    unpenalised : tuple of str or None, default=("clin__*",)
        Names or patterns of columns fitted without penalty (and always kept).
    random_state : int, default=0

    Attributes
    ----------
    frequencies_ : DataFrame
        feature, frequency (max over Lambda), kept.
    q_ : float
        Average number selected allowed per half-sample.
    support_ : ndarray of bool
        Stable features plus the unpenalised columns.
    n_features_in_, feature_names_in_
    """

    def __init__(self, threshold=0.75, expected_false=1.0, n_subsamples=50, n_alphas=20,
                 unpenalised=("clin__*",), random_state=0):
        self.threshold = threshold
        self.expected_false = expected_false
        self.n_subsamples = n_subsamples
        self.n_alphas = n_alphas
        self.unpenalised = unpenalised
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.classifier_tags = ClassifierTags(multi_class=False)  # binary labels only
        return tags

    def _check_params(self) -> None:
        def bad(name, allowed, value):
            return SelectionError(f"parameter {name} must be {allowed}, got {value!r}",
                                  step="StabilitySelector")

        if not isinstance(self.threshold, numbers.Real) or not 0.5 < self.threshold <= 1:
            raise bad("threshold", "a float in (0.5, 1]", self.threshold)
        if not isinstance(self.expected_false, numbers.Real) or not self.expected_false > 0:
            raise bad("expected_false", "a float > 0", self.expected_false)
        if not isinstance(self.n_subsamples, numbers.Integral) or self.n_subsamples < 2:
            raise bad("n_subsamples", "an int >= 2", self.n_subsamples)
        if not isinstance(self.n_alphas, numbers.Integral) or self.n_alphas < 2:
            raise bad("n_alphas", "an int >= 2", self.n_alphas)

    def fit(self, X, y):
        """Selection frequencies over complementary half-samples; y is the binary label."""
        check_has_features(X, step="StabilitySelector")
        X, y = validate_data(self, X, y, dtype=np.float64)
        self._check_params()
        y01, _ = check_binary_target(y, step="StabilitySelector")
        names = feature_names(self)
        unpen = unpenalised_mask(names, self.unpenalised)
        pen = ~unpen
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0
        Xs = (X - X.mean(axis=0)) / scale
        n_pen = int(pen.sum())
        q = float(np.sqrt(self.expected_false * (2 * self.threshold - 1) * max(n_pen, 1)))
        top = alpha_max(Xs, y01, pen, 1.0)
        grid = np.logspace(np.log10(top), np.log10(top * 0.01), self.n_alphas)
        halves = self._halves(y01)
        chosen = np.zeros((len(halves), len(grid), X.shape[1]), dtype=bool)
        for b, idx in enumerate(halves):
            if len(np.unique(y01[idx])) < 2:
                continue
            coefs, _, _ = penalised_logistic_path(Xs[idx], y01[idx], grid, l1_ratio=1.0,
                                                  penalised=pen,
                                                  max_nonzero=int(np.ceil(3 * q)))
            chosen[b] = (coefs != 0) & pen
        mean_selected = chosen.sum(axis=2).mean(axis=0)  # per penalty
        region = mean_selected <= q
        region[0] = True  # the strongest penalty always belongs (it selects least)
        freq = chosen[:, region, :].mean(axis=0).max(axis=0)
        stable = pen & (freq >= self.threshold)
        self.q_ = q
        self.alphas_ = grid[region]
        self.support_ = stable | unpen
        self.frequencies_ = pd.DataFrame({"feature": names, "frequency": np.where(pen, freq,
                                                                                  np.nan),
                                          "kept": self.support_})
        if not self.support_.any():
            raise SelectionError(
                f"stability selection kept no feature: the highest selection frequency is "
                f"{freq.max(initial=0.0):.2f} < threshold={self.threshold} (q={q:.1f} "
                f"features per half-sample, {len(halves)} half-samples)",
                step="StabilitySelector")
        return self

    def _halves(self, y01: np.ndarray) -> list[np.ndarray]:
        """Complementary pairs of stratified half-samples."""
        rng = np.random.default_rng(self.random_state)
        out = []
        for _ in range(self.n_subsamples // 2 + self.n_subsamples % 2):
            seed = int(rng.integers(2**31 - 1))
            if np.bincount(y01, minlength=2).min() >= 2:
                a, b = next(StratifiedKFold(2, shuffle=True, random_state=seed)
                            .split(np.zeros(len(y01)), y01))
            else:
                perm = np.random.default_rng(seed).permutation(len(y01))
                a, b = perm[: len(y01) // 2], perm[len(y01) // 2:]
            out += [np.sort(a), np.sort(b)]
        return out[: self.n_subsamples]

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_
