"""CorrelationClusters: label-free reduction of correlated features to one per cluster.

Radiomics and CNN features come in large families of near-copies (the same texture at eight
wavelet bands, neighbouring channels of a network). A selection step fed with all of them
splits its choice among the copies and keeps none reliably; with one representative per
cluster of correlated features, the penalised model sees each distinct signal once.

The step uses no label, so fitting it on the training fold costs nothing in honesty; it
still sits inside the fold's pipeline (the held-out patients never shape the clusters).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from workbench.selection._variance import (
    PandasSelectorMixin,
    SelectionError,
    check_has_features,
    feature_names,
)

METHODS = ("spearman", "pearson")
LINKAGES = ("average", "complete", "single")


def feature_group(name: str) -> str:
    """The family of a feature: its name up to the first ``__`` (``rad``, ``dl_resnet50``,
    ``kin``, ``clin``), or ``""`` for a name without one."""
    head, sep, _ = str(name).partition("__")
    return head if sep else ""


def correlation_clusters(X: np.ndarray, threshold: float, *, method: str = "spearman",
                         link: str = "average") -> tuple[np.ndarray, np.ndarray]:
    """Cluster the columns of X by |correlation| and pick one representative per cluster.

    Hierarchical clustering on the distance ``1 - |rho|`` is cut at ``1 - threshold``, so
    with average linkage the members of a cluster correlate with each other by ``threshold``
    on average. The representative (medoid) is the member with the largest mean |rho| to
    the other members; ties go to the first column.

    Returns
    -------
    labels : ndarray of int (n_columns,)
        Cluster of each column, numbered 0.. in order of first appearance.
    representative : ndarray of bool (n_columns,)
    """
    p = X.shape[1]
    if p == 1:
        return np.zeros(1, dtype=int), np.ones(1, dtype=bool)
    data = rankdata(X, axis=0) if method == "spearman" else X
    rho = np.abs(np.corrcoef(data, rowvar=False))
    rho = np.nan_to_num(rho, nan=0.0)
    np.fill_diagonal(rho, 1.0)
    dist = np.clip(1.0 - rho, 0.0, None)
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method=link)
    raw = fcluster(tree, t=1.0 - threshold, criterion="distance")
    _, first = np.unique(raw, return_index=True)
    order = {raw[i]: k for k, i in enumerate(sorted(first))}
    labels = np.array([order[c] for c in raw], dtype=int)
    rep = np.zeros(p, dtype=bool)
    for c in range(labels.max() + 1):
        members = np.flatnonzero(labels == c)
        score = rho[np.ix_(members, members)].mean(axis=1)
        rep[members[int(np.argmax(score))]] = True
    return labels, rep


class CorrelationClusters(PandasSelectorMixin, SelectorMixin, BaseEstimator):
    """Keep one representative of each cluster of correlated features (no label used).

    Parameters
    ----------
    threshold : float, default=0.8
        Correlation at which features are merged: the tree of ``1 - |rho|`` is cut at
        ``1 - threshold``. In (0, 1]; 1 merges only perfectly (rank-)correlated features.
    method : {"spearman", "pearson"}, default="spearman"
    linkage : {"average", "complete", "single"}, default="average"
    by_prefix : bool, default=True
        Cluster each feature family (name up to the first ``__``: ``rad``, ``kin``,
        ``dl_resnet50``, ...) on its own: cheaper (the correlation matrix of one family, not
        of all 10,000 columns) and keeps the families apart.
    passthrough_prefix : str or None, default="clin__"
        Columns kept as they are, never clustered (the clinical covariates).

    Attributes
    ----------
    clusters_ : DataFrame
        feature, group, cluster (numbered within the group), representative, dropped reason.
    support_ : ndarray of bool
    n_clusters_ : int
    n_features_in_, feature_names_in_
    """

    def __init__(self, threshold=0.8, method="spearman", linkage="average", by_prefix=True,
                 passthrough_prefix="clin__"):
        self.threshold = threshold
        self.method = method
        self.linkage = linkage
        self.by_prefix = by_prefix
        self.passthrough_prefix = passthrough_prefix

    def fit(self, X, y=None):
        """Cluster the features of X; y is ignored."""
        check_has_features(X, step="CorrelationClusters")
        X = validate_data(self, X, dtype=np.float64)
        if (not isinstance(self.threshold, numbers.Real) or isinstance(self.threshold, bool)
                or not 0 < self.threshold <= 1):
            raise SelectionError(f"parameter threshold must be a float in (0, 1], got "
                                 f"{self.threshold!r}", step="CorrelationClusters")
        if self.method not in METHODS:
            raise SelectionError(f"parameter method must be one of {METHODS}, got "
                                 f"{self.method!r}", step="CorrelationClusters")
        if self.linkage not in LINKAGES:
            raise SelectionError(f"parameter linkage must be one of {LINKAGES}, got "
                                 f"{self.linkage!r}", step="CorrelationClusters")
        names = feature_names(self)
        passthrough = np.array([bool(self.passthrough_prefix)
                                and str(n).startswith(self.passthrough_prefix)
                                for n in names], dtype=bool)
        constant = X.std(axis=0) < 1e-12
        groups = (np.array([feature_group(n) for n in names], dtype=object) if self.by_prefix
                  else np.full(len(names), "", dtype=object))
        keep = passthrough.copy()
        cluster = np.full(len(names), -1)
        reason = np.where(passthrough, "passed through", "").astype(object)
        reason[constant & ~passthrough] = "constant"
        for group in dict.fromkeys(groups[~passthrough & ~constant]):
            cols = np.flatnonzero((groups == group) & ~passthrough & ~constant)
            labels, rep = correlation_clusters(X[:, cols], self.threshold,
                                               method=self.method, link=self.linkage)
            cluster[cols] = labels
            keep[cols[rep]] = True
            for j, lab in zip(cols, labels, strict=True):
                if not keep[j]:
                    medoid = names[cols[rep & (labels == lab)][0]]
                    reason[j] = f"represented by {medoid}"
                else:
                    reason[j] = "representative"
        self.support_ = keep
        self.clusters_ = pd.DataFrame({"feature": names, "group": groups, "cluster": cluster,
                                       "representative": keep & ~passthrough,
                                       "reason": reason})
        self.n_clusters_ = int((keep & ~passthrough).sum())
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_
