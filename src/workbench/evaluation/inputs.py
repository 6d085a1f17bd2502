"""Validation of what every evaluation function receives: labels, scores and thresholds.

The lowest module of :mod:`workbench.evaluation`: it imports nothing from the package, and
every other module validates its inputs here, so errors read the same everywhere.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import WorkbenchError


class MetricInputError(WorkbenchError, ValueError):
    """Labels or scores handed to an evaluation function are unusable."""


def check_labels_scores(y, p, *, step: str = "metrics", need_both_classes: bool = True,
                        name: str = "p") -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and scores and return them as 1-D numpy arrays.

    Parameters
    ----------
    y
        True labels, 0/1 or boolean, one per patient.
    p
        Scores (usually probabilities), one per patient; must be finite.
    step
        Name of the calling step, used in error messages.
    need_both_classes
        Refuse labels with only one class (AUC, sensitivity/specificity CIs need both).
    name
        Name of the score argument, used in error messages.

    Returns
    -------
    y, p
        ``y`` as ``int8`` and ``p`` as ``float64``.

    Raises
    ------
    MetricInputError
        Shapes differ, labels are not binary, scores are NaN/infinite, or (when
        ``need_both_classes``) one class is absent; the message gives the class counts.
    """
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.ndim != 1 or p_arr.ndim != 1:
        raise MetricInputError(
            f"y and {name} must be 1-D, got shapes {y_arr.shape} and {p_arr.shape}.", step=step)
    if y_arr.shape[0] != p_arr.shape[0]:
        raise MetricInputError(
            f"y and {name} must have the same length, got {y_arr.shape[0]} and {p_arr.shape[0]}.",
            step=step)
    if y_arr.shape[0] == 0:
        raise MetricInputError("no patients: y is empty.", step=step)
    try:
        y_float = y_arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"labels must be 0/1, got dtype {y_arr.dtype}.", step=step) from exc
    bad = ~np.isin(y_float, (0.0, 1.0))
    if bad.any():
        raise MetricInputError(
            f"labels must be 0/1; {int(bad.sum())} value(s) are not, e.g. "
            f"{y_arr[bad][:3].tolist()} (missing labels must be dropped first).", step=step)
    bad_p = ~np.isfinite(p_arr)
    if bad_p.any():
        where = np.flatnonzero(bad_p)[:5].tolist()
        raise MetricInputError(
            f"{name} has {int(bad_p.sum())} NaN/infinite value(s) (positions {where}...). "
            "Every patient needs a prediction; check the model's output.", step=step)
    y_int = y_float.astype(np.int8)
    if need_both_classes:
        n_pos = int(y_int.sum())
        n_neg = int(y_int.size - n_pos)
        if n_pos == 0 or n_neg == 0:
            raise MetricInputError(
                f"both classes are needed, got {n_pos} positive (pCR) and {n_neg} negative "
                "patients. Evaluate on a set containing both outcomes.", step=step)
    return y_int, p_arr


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float; refused unless finite."""
    t = float(threshold)
    if not np.isfinite(t):
        raise MetricInputError(f"threshold must be a finite number, got {threshold!r}.",
                               step="metrics")
    return t
