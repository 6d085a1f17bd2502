"""What the report and the dashboard show first, from a run's tidy tables: pure table logic.

* :func:`headline_model` — the one model drawn where a single model is shown.
* :func:`format_ci` — a value with its confidence interval, as text.
* :func:`default_selection` — the models a dashboard draws first (clinical reference and
  each family's best feature set, chosen on honest cross-validated AUC).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.names import FEATURE_SETS, NETWORK_NAMES

__all__ = ["HEADLINE_FEATURE_SETS", "default_selection", "feature_set_family",
           "format_ci", "headline_model"]

#: Feature sets in order of preference for the headline model: the richest present wins.
HEADLINE_FEATURE_SETS: tuple[str, ...] = (
    "fusion_clinical_kinetic", "fusion_clinical", "fusion", "deep", "resnet50", "radiomics",
    "kinetic", "clinical")


def headline_model(metrics: pd.DataFrame) -> tuple[str, str]:
    """``(feature_set, classifier)`` shown where one model is drawn: the richest feature set
    present (:data:`HEADLINE_FEATURE_SETS`, else the last one modelled), logistic regression
    when it ran on that set (else its first classifier).

    Parameters
    ----------
    metrics
        A run's ``metrics`` table (columns ``feature_set`` and ``classifier``).
    """
    sets = list(dict.fromkeys(metrics["feature_set"].astype(str)))
    fs = next((s for s in HEADLINE_FEATURE_SETS if s in sets), sets[-1])
    clfs = list(dict.fromkeys(metrics.loc[metrics["feature_set"].astype(str) == fs,
                                          "classifier"].astype(str)))
    return fs, ("lr" if "lr" in clfs else clfs[0])


def format_ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"0.72 (0.55–0.88)"``; ``"n/a"`` for a missing value, no interval when absent."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def feature_set_family(feature_set: str) -> str:
    """``clinical`` (no image block), ``radiomics``, ``kinetic``, ``deep`` (CNN blocks only)
    or ``fusion`` (several kinds of block); an unknown name is its own family."""
    spec = FEATURE_SETS.get(str(feature_set))
    if spec is None:
        return str(feature_set)
    kinds = {"deep" if b in NETWORK_NAMES else b for b in spec.blocks}
    if not kinds:
        return "clinical"
    return kinds.pop() if len(kinds) == 1 else "fusion"


def default_selection(metrics: pd.DataFrame) -> tuple[list[str], list[str], str]:
    """The models a dashboard draws first: the clinical reference and each family's best
    feature set, under one classifier — chosen on the honest protocol's cross-validated AUC
    (training patients only; the test split never chooses).

    Returns
    -------
    feature_sets, classifiers, how
        ``how`` says in words how they were chosen (shown beside the widgets).
    """
    m = metrics.assign(**{c: metrics[c].astype(str) for c in
                          ("protocol", "split", "metric", "feature_set", "classifier")})
    sets = list(dict.fromkeys(m["feature_set"]))
    clfs = list(dict.fromkeys(m["classifier"]))
    auc = m[(m["protocol"] == "honest") & (m["split"] == "cv") & (m["metric"] == "auc")]
    auc = auc[np.isfinite(auc["value"].astype(float))]
    if auc.empty:
        fs, clf = headline_model(metrics)
        chosen = [next(s for s in sets if feature_set_family(s) == fam)
                  for fam in dict.fromkeys(map(feature_set_family, sets))]
        return (chosen, [clf], "first feature set of each family with "
                f"{clf} (this run has no honest cross-validated AUC to choose by)")
    # compare classifiers (and strategies, which may run on fewer sets) on the feature sets
    # every one of them has, so a classifier is not favoured by an easier set of sets
    sets_of = auc.groupby("classifier", sort=False)["feature_set"].agg(set)
    common = set.intersection(*sets_of) if len(sets_of) else set()
    fair = auc[auc["feature_set"].isin(common)] if common else auc
    mean = fair.groupby("classifier", sort=False)["value"].mean()
    clf = str(mean.idxmax())
    by_set = auc[auc["classifier"] == clf].set_index("feature_set")["value"]
    chosen = []
    for fam in dict.fromkeys(map(feature_set_family, sets)):
        members = [s for s in sets if feature_set_family(s) == fam and s in by_set.index]
        if fam == "clinical":
            chosen += members
        elif members:
            chosen.append(max(members, key=lambda s: by_set[s]))
    chosen = [s for s in sets if s in chosen]
    return (chosen, [clf] if clf in clfs else clfs[:1],
            f"clinical reference and each family's best feature set with {clf}, the "
            "classifier of best mean AUC — all by honest cross-validated AUC (training "
            "patients only)")
