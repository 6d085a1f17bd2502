"""What the report and the dashboard show first, from a run's tidy tables: pure table logic.

* :func:`headline_model` — the one model drawn where a single model is shown.
* :func:`format_ci` — a value with its confidence interval, as text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["HEADLINE_FEATURE_SETS", "format_ci", "headline_model"]

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
