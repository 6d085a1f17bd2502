"""``ModelEval``: what the dashboard shows about one model, computed once.

The Brier score, a :class:`~workbench.evaluation.metrics.ThresholdSweep` and a stratified
bootstrap resample are prepared when the model is first needed (its ROC curve and AUC come
from the run's tables, ``models/curves.parquet`` and ``models/metrics.parquet``);
:meth:`ModelEval.at` then recounts a threshold's confusion matrix and bootstrap intervals in
well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from workbench.evaluation.calibration import brier_score
from workbench.evaluation.metrics import (
    ThresholdSweep,
    bootstrap_indices,
    check_labels_scores,
    rates_from_counts,
)
from workbench.plots import model_name

__all__ = ["LIVE_METRICS", "ModelEval", "ModelKey"]

#: Threshold metrics shown live, in order, with their display names.
LIVE_METRICS = {"sensitivity": "Sensitivity", "specificity": "Specificity",
                "precision": "PPV", "npv": "NPV", "accuracy": "Accuracy", "f1": "F1"}


class ModelKey(NamedTuple):
    """One model's predictions: protocol, split, feature set and classifier."""

    protocol: str
    split: str
    feature_set: str
    classifier: str

    @property
    def name(self) -> str:
        """``"<feature set> / <classifier>"`` (as in every legend)."""
        return model_name(self.feature_set, self.classifier)


class ModelEval:
    """Everything the dashboard shows about one model, computed once.

    Parameters
    ----------
    key
        Which model and predictions.
    patient_ids, y, p
        The evaluated patients, their labels (0/1) and predicted probabilities.
    n_boot, seed
        Stratified bootstrap replicates kept for the threshold metrics' intervals.
    """

    def __init__(self, key: ModelKey, patient_ids: Sequence[str], y, p, *, n_boot: int = 1000,
                 seed: int = 0) -> None:
        self.key = key
        self.patient_ids = np.asarray([str(i) for i in patient_ids], dtype=object)
        self.y, self.p = check_labels_scores(y, p, step="dashboard", need_both_classes=False)
        self.n, self.n_pos = int(self.y.size), int(self.y.sum())
        self.brier = brier_score(self.y, self.p)
        self.sweep = ThresholdSweep(self.y, self.p)
        idx = bootstrap_indices(self.y, n_boot, seed=seed)
        self._boot_pos = self.y[idx] == 1
        self._boot_p = self.p[idx]

    def at(self, threshold: float, alpha: float = 0.05) -> dict[str, Any]:
        """Counts and threshold metrics at ``threshold`` with percentile bootstrap CIs.

        Returns
        -------
        dict
            ``threshold, tp, fp, tn, fn`` and, for each of :data:`LIVE_METRICS`, the value
            and ``<metric>_lo`` / ``<metric>_hi`` (NaN where undefined).
        """
        t = float(threshold)
        counts = {k: int(v[0]) for k, v in self.sweep.counts([t]).items()}
        point = rates_from_counts(**counts)
        pred, pos = self._boot_p >= t, self._boot_pos
        reps = rates_from_counts(tp=(pred & pos).sum(1), fp=(pred & ~pos).sum(1),
                                 tn=(~pred & ~pos).sum(1), fn=(~pred & pos).sum(1))
        out: dict[str, Any] = {"threshold": t, **counts}
        for name in LIVE_METRICS:
            values = reps[name][np.isfinite(reps[name])]
            lo, hi = (np.quantile(values, [alpha / 2, 1 - alpha / 2]) if values.size
                      else (np.nan, np.nan))
            out.update({name: float(point[name]), f"{name}_lo": float(lo),
                        f"{name}_hi": float(hi)})
        return out
