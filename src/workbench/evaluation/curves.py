"""Every model's ROC and decision curve, computed once from a run's predictions.

The model stage writes :func:`model_curves` of its predictions to ``models/curves.parquet``;
the dashboard draws from it (a view then only selects rows, it never recomputes a curve) and
computes it itself only for a run written before the file existed.

The table is long: one row per point, ``protocol, split, feature_set, classifier, curve, x,
y`` with ``curve`` one of

* ``roc`` — ``x`` = 1 − specificity, ``y`` = sensitivity (``sklearn.metrics.roc_curve``);
* ``net_benefit`` — ``x`` = threshold probability, ``y`` = net benefit
  (:func:`~workbench.evaluation.decision_curve.net_benefit`);
* ``treat_all`` — the *treat all* reference of the protocol and split (``feature_set`` and
  ``classifier`` empty), from the labels of every patient evaluated there.

The ``cv`` split is the first repeat's out-of-fold predictions (each training patient once), as
in the metrics table. Rows without a probability (a withheld estimate) are left out; a model
with no scored patient, or with one class only, has no ROC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from workbench.evaluation.decision_curve import (
    DEFAULT_THRESHOLDS,
    net_benefit,
    treat_all_net_benefit,
)
from workbench.evaluation.inputs import MetricInputError

__all__ = ["CURVE_COLUMNS", "CURVE_KINDS", "evaluated_rows", "model_curves"]

#: Columns of ``models/curves.parquet``.
CURVE_COLUMNS = ("protocol", "split", "feature_set", "classifier", "curve", "x", "y")
#: The kinds of curve in the table.
CURVE_KINDS = ("roc", "net_benefit", "treat_all")

_NEEDED = ("patient_id", "protocol", "split", "feature_set", "classifier", "probability",
           "label")


def evaluated_rows(predictions: pd.DataFrame) -> pd.DataFrame:
    """The predictions the metrics evaluate: test rows, and the first repeat of the CV rows;
    rows without a probability are dropped. String columns come back as plain ``str``."""
    missing = [c for c in _NEEDED if c not in predictions.columns]
    if missing:
        raise MetricInputError(f"predictions table lacks column(s) {missing}; got "
                               f"{list(predictions.columns)}", step="curves")
    part = predictions[predictions["probability"].notna() & predictions["label"].notna()]
    if "repeat" in part.columns:
        cv = part["split"].astype(str) == "cv"
        first = part.loc[cv, "repeat"].min() if cv.any() else None
        part = part[~cv | (part["repeat"] == first)]
    return part.assign(**{c: part[c].astype(str) for c in
                          ("patient_id", "protocol", "split", "feature_set", "classifier")})


def _rows(protocol: str, split: str, fs: str, clf: str, curve: str, x, y) -> pd.DataFrame:
    n = len(x)
    return pd.DataFrame({"protocol": [protocol] * n, "split": [split] * n,
                         "feature_set": [fs] * n, "classifier": [clf] * n,
                         "curve": [curve] * n, "x": np.asarray(x, dtype=float),
                         "y": np.asarray(y, dtype=float)})


def model_curves(predictions: pd.DataFrame, thresholds=None) -> pd.DataFrame:
    """ROC and net-benefit curve of every model, and the *treat all* reference of every
    protocol and split.

    Parameters
    ----------
    predictions
        ``models/predictions.parquet`` (``patient_id, protocol, split, feature_set,
        classifier, probability, label`` and, for CV rows, ``repeat``).
    thresholds
        Threshold probabilities of the decision curves; default
        :data:`~workbench.evaluation.decision_curve.DEFAULT_THRESHOLDS`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CURVE_COLUMNS` (see the module docstring), ordered as the models
        appear in ``predictions``.
    """
    t = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=float)
    part = evaluated_rows(predictions)
    frames = []
    for (protocol, split), rows in part.groupby(["protocol", "split"], sort=False):
        labels = rows.groupby("patient_id", sort=False)["label"].first().to_numpy(dtype=int)
        frames.append(_rows(protocol, split, "", "", "treat_all", t,
                            treat_all_net_benefit(labels, t)))
        for (fs, clf), g in rows.groupby(["feature_set", "classifier"], sort=False):
            y = g["label"].to_numpy(dtype=int)
            p = g["probability"].to_numpy(dtype=float)
            if 0 < y.sum() < y.size:
                fpr, tpr, _ = roc_curve(y, p)
                frames.append(_rows(protocol, split, fs, clf, "roc", fpr, tpr))
            frames.append(_rows(protocol, split, fs, clf, "net_benefit", t,
                                net_benefit(y, p, t)))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("x", "y") else object)
                             for c in CURVE_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(CURVE_COLUMNS)]
