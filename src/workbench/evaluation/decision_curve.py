"""Decision curve analysis (Vickers & Elkin 2006): net benefit across threshold probabilities.

At threshold probability ``pt`` a patient is treated as predicted pCR when ``p >= pt``, and

    NB = TP / n − FP / n · pt / (1 − pt)

Reference strategies: *treat all* (everyone positive: ``NB = prevalence − (1 − prevalence) ·
pt / (1 − pt)``) and *treat none* (``NB = 0``). Optionally, net interventions avoided per 100
patients relative to treating all: ``(NB − NB_all) / (pt / (1 − pt)) · 100``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from workbench.evaluation.counts import ThresholdSweep
from workbench.evaluation.inputs import MetricInputError, check_labels_scores

#: Default threshold grid: 0.01, 0.02, ..., 0.99.
DEFAULT_THRESHOLDS = np.arange(1, 100) / 100


def _check_thresholds(thresholds) -> np.ndarray:
    t = np.atleast_1d(np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds,
                                 dtype=float))
    if t.ndim != 1 or not np.all((t > 0) & (t < 1)):
        raise MetricInputError("threshold probabilities must lie strictly between 0 and 1, "
                               f"got range [{t.min():.4g}, {t.max():.4g}].",
                               step="decision curve")
    return t


def net_benefit(y, p, thresholds=None) -> np.ndarray:
    """Net benefit of the model at each threshold probability.

    Parameters
    ----------
    y, p
        Labels (0/1) and predicted probabilities.
    thresholds
        Threshold probabilities in (0, 1); default :data:`DEFAULT_THRESHOLDS`.

    Returns
    -------
    ndarray
        Net benefit per threshold.
    """
    t = _check_thresholds(thresholds)
    y_arr, p_arr = check_labels_scores(y, p, step="decision curve", need_both_classes=False)
    c = ThresholdSweep(y_arr, p_arr).counts(t)
    n = y_arr.size
    return c["tp"] / n - c["fp"] / n * t / (1 - t)


def treat_all_net_benefit(y, thresholds=None) -> np.ndarray:
    """Net benefit of treating every patient: ``prev − (1 − prev) · pt / (1 − pt)``."""
    t = _check_thresholds(thresholds)
    y_arr, _ = check_labels_scores(y, np.zeros(np.asarray(y).shape[0]), step="decision curve",
                                   need_both_classes=False)
    prev = float(y_arr.mean())
    return prev - (1 - prev) * t / (1 - t)


def decision_curve(y, p: np.ndarray | Mapping[str, np.ndarray], thresholds=None, *,
                   interventions_avoided: bool = False, model_name: str = "model") -> pd.DataFrame:
    """Tidy decision curve for one or several models plus *treat all* and *treat none*.

    Parameters
    ----------
    y
        Labels (0/1).
    p
        Predicted probabilities, or ``{model name: probabilities}`` for several models scored
        on the same patients.
    thresholds
        Threshold probabilities in (0, 1); default 0.01 … 0.99 in steps of 0.01.
    interventions_avoided
        Add ``interventions_avoided``: net interventions avoided per 100 patients compared with
        treating all (0 for treat all).
    model_name
        Strategy name used when ``p`` is a single array.

    Returns
    -------
    pandas.DataFrame
        Long format: ``threshold, strategy, net_benefit`` (and ``interventions_avoided``),
        the models first, then ``"treat all"`` and ``"treat none"``.
    """
    t = _check_thresholds(thresholds)
    models = dict(p) if isinstance(p, Mapping) else {model_name: p}
    clash = {"treat all", "treat none"} & set(models)
    if clash:
        raise MetricInputError(f"model names {sorted(clash)} are reserved for the reference "
                               "strategies; rename the model.", step="decision curve")
    curves = {name: net_benefit(y, scores, t) for name, scores in models.items()}
    nb_all = treat_all_net_benefit(y, t)
    curves["treat all"] = nb_all
    curves["treat none"] = np.zeros_like(t)
    frames = []
    for name, nb in curves.items():
        frame = pd.DataFrame({"threshold": t, "strategy": name, "net_benefit": nb})
        if interventions_avoided:
            frame["interventions_avoided"] = (nb - nb_all) / (t / (1 - t)) * 100
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
