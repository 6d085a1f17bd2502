"""Feature robustness under perturbation: ICC(3,1) per feature, vectorised.

Each patient's features are computed on the original image and on perturbed copies
(:mod:`workbench.imaging.perturb`); a feature is robust when the copies agree relative to the
spread between patients. The agreement is the intraclass correlation ICC(3,1) of Shrout &
Fleiss (1979), ``ICC(C,1)`` of McGraw & Wong (1996): two-way mixed effects, consistency,
single rater, with the patients as targets and the copies as raters,

    ICC = (MS_R - MS_E) / (MS_R + (k - 1) MS_E),

from the two-way ANOVA without replication (MS_R between patients, MS_E residual, k
copies). Consistency, not absolute agreement, because a perturbation may shift every
patient's value alike (one dilated layer adds volume to every tumour) without changing the
ranking a model learns from. The 95 % interval is McGraw & Wong's (1996, case 3) F-based
one. We write the formula here rather than use ``pingouin``, which would bring statsmodels,
seaborn and xarray for one formula.

Missing values: a patient with a missing (or infinite) value of a feature in any copy is
left out of that feature's ICC only (listwise deletion per feature), so one failed filter
does not remove the patient from every feature.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import WorkbenchError

#: Columns of :func:`icc_table`.
ICC_COLUMNS: tuple[str, ...] = ("feature", "icc", "icc_low", "icc_high", "n_patients",
                                "n_copies", "note")
#: Columns of :func:`robust_counts`.
COUNT_COLUMNS: tuple[str, ...] = ("threshold", "family", "robust", "total", "share")
#: Family of every feature, in :func:`robust_counts`.
ALL_FAMILIES = "all"
#: Family of a feature whose name is not ``rad__<phase>__<imagetype>_<class>_<name>``.
OTHER_FAMILY = "other"
_RADIOMICS = re.compile(r"^rad__.+?__[^_]+_(?P<family>[^_]+)_.+$")

NOTE_CONSTANT = "constant across patients and copies"
NOTE_NO_PATIENT_SPREAD = "no spread between patients or residual (values differ only by copy)"
NOTE_MISSING = "missing values: fewer than 2 patients complete in every copy"


class RobustnessError(WorkbenchError, ValueError):
    """The ICC inputs are unusable (too few copies, non-numeric values, bad shapes)."""


class ICCResult(NamedTuple):
    """ICC(3,1) with its confidence interval."""

    icc: float
    low: float
    high: float


def _icc_arrays(values: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """ICC(3,1), its interval and a note for each feature of an (n, k, p) array.

    Patients with a non-finite value in any copy are left out feature by feature, so every
    sum runs over ``w`` (1 for a complete patient of that feature, else 0).
    """
    n_all, k, p = values.shape
    finite = np.isfinite(values)
    w = finite.all(axis=1)                                    # (n, p) complete patients
    n = w.sum(axis=0).astype(float)                           # (p,)
    y = np.where(w[:, None, :], values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        row = y.mean(axis=1)                                  # (n, p) patient means
        col = y.sum(axis=0) / n                               # (k, p) copy means
        grand = col.mean(axis=0)                              # (p,)
        ss_rows = k * (w * (row - grand) ** 2).sum(axis=0)
        ss_cols = n * ((col - grand) ** 2).sum(axis=0)
        ss_total = (w[:, None, :] * (y - grand) ** 2).sum(axis=(0, 1))
        ss_err = np.maximum(ss_total - ss_rows - ss_cols, 0.0)
        df_rows, df_err = n - 1, (n - 1) * (k - 1)
        ms_rows, ms_err = ss_rows / df_rows, ss_err / df_err
        denom = ms_rows + (k - 1) * ms_err
        icc = (ms_rows - ms_err) / denom
        f_obs = ms_rows / ms_err
        q = 1 - (1 - confidence) / 2
        f_low = f_obs / stats.f.ppf(q, df_rows, df_err)
        f_high = f_obs * stats.f.ppf(q, df_err, df_rows)
        low = (f_low - 1) / (f_low + k - 1)
        high = (f_high - 1) / (f_high + k - 1)
    # no residual at all: the copies reproduce every patient exactly
    exact = (ms_err == 0) & (ms_rows > 0)
    low, high = np.where(exact, 1.0, low), np.where(exact, 1.0, high)

    used = np.where(w[:, None, :], values, np.nan)
    with warnings.catch_warnings():
        # all-NaN slices: features without a complete patient (noted as missing below)
        warnings.simplefilter("ignore", RuntimeWarning)
        constant = np.nanmax(used, axis=(0, 1)) == np.nanmin(used, axis=(0, 1))
    note = np.full(p, "", dtype=object)
    too_few = n < 2
    # round-off leaves ~1e-32 sums where the true ones are 0: compare with the total spread
    degenerate = ~too_few & ~constant & (denom <= 1e-12 * ss_total / np.maximum(n * k - 1, 1))
    note[degenerate] = NOTE_NO_PATIENT_SPREAD
    note[~too_few & constant] = NOTE_CONSTANT
    note[too_few] = NOTE_MISSING
    dropped = (n_all - n).astype(int)
    partial = (dropped > 0) & ~too_few
    note[partial & (note == "")] = [f"{d} patient(s) with missing values left out"
                                    for d in dropped[partial & (note == "")]]
    undefined = too_few | constant | degenerate
    for arr in (icc, low, high):
        arr[undefined] = np.nan
    return {"icc": icc, "low": low, "high": high, "n": n.astype(int), "note": note}


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise RobustnessError(f"confidence must be in (0, 1), got {confidence!r}",
                              step="robustness")


def icc_3_1_ci(values, *, confidence: float = 0.95) -> ICCResult:
    """ICC(3,1) of one feature with its F-based confidence interval.

    Parameters
    ----------
    values : array-like of shape (n_subjects, k_raters)
        One row per patient, one column per copy (original and perturbations). Rows with a
        missing or infinite value are left out.
    confidence : float, default=0.95
        Coverage of the interval (McGraw & Wong 1996, case 3, consistency):
        ``F = MS_R / MS_E``, ``F_L = F / F_q(n-1, (n-1)(k-1))``,
        ``F_U = F * F_q((n-1)(k-1), n-1)`` with ``q = 1 - (1 - confidence) / 2``, and
        bounds ``(F_L - 1) / (F_L + k - 1)``, ``(F_U - 1) / (F_U + k - 1)``.

    Returns
    -------
    ICCResult
        ``icc, low, high``; all NaN when the ICC is undefined (constant values, fewer than
        2 complete subjects). Use :func:`icc_table` for the reason.
    """
    _check_confidence(confidence)
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise RobustnessError(f"ICC needs an (n_subjects, k_raters) array with k >= 2, got "
                              f"shape {arr.shape}", step="robustness")
    out = _icc_arrays(arr[:, :, None], confidence)
    return ICCResult(float(out["icc"][0]), float(out["low"][0]), float(out["high"][0]))


def icc_3_1(values) -> float:
    """ICC(3,1) (Shrout & Fleiss 1979; McGraw & Wong's ICC(C,1)) of one feature.

    ``(MS_R - MS_E) / (MS_R + (k - 1) MS_E)`` of an (n_subjects, k_raters) array; rows with
    a missing value are left out. See :func:`icc_3_1_ci` for the interval.
    """
    return icc_3_1_ci(values).icc


def icc_table(copies: Mapping[str, pd.DataFrame], *, confidence: float = 0.95) -> pd.DataFrame:
    """ICC(3,1) of every feature across the copies of a feature table.

    Parameters
    ----------
    copies : Mapping[str, pandas.DataFrame]
        Copy name (``"original"``, perturbation names) -> feature frame (index
        ``patient_id``, numeric feature columns). Only patients present in every copy and
        features present in every copy are used, in the first copy's order.
    confidence : float, default=0.95
        Coverage of the interval.

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature, icc, icc_low, icc_high, n_patients`` (complete
        patients used for that feature), ``n_copies`` and ``note`` (why the ICC is NaN, or
        how many patients were left out for missing values; empty otherwise).

    Raises
    ------
    RobustnessError
        Fewer than 2 copies, duplicated patients, or non-numeric columns (naming the copy).
    """
    _check_confidence(confidence)
    if len(copies) < 2:
        raise RobustnessError(f"an ICC needs at least 2 copies (original + perturbations), "
                              f"got {list(copies)}", step="robustness")
    frames = list(copies.values())
    for name, frame in copies.items():
        if frame.index.has_duplicates:
            dup = frame.index[frame.index.duplicated()].unique()[:5].tolist()
            raise RobustnessError(f"copy {name!r} lists patients more than once: {dup}",
                                  step="robustness")
    patients = frames[0].index
    features = frames[0].columns
    for frame in frames[1:]:
        patients = patients[patients.isin(frame.index)]
        features = features[features.isin(frame.columns)]
    blocks = []
    for name, frame in copies.items():
        try:
            blocks.append(frame.loc[patients, features].to_numpy(dtype=float))
        except (TypeError, ValueError) as exc:
            raise RobustnessError(f"copy {name!r} has non-numeric feature values: {exc}",
                                  step="robustness") from exc
    if len(features) == 0:
        return pd.DataFrame(columns=list(ICC_COLUMNS))
    out = _icc_arrays(np.stack(blocks, axis=1), confidence)  # (patients, copies, features)
    return pd.DataFrame({
        "feature": np.asarray(features, dtype=object),
        "icc": out["icc"],
        "icc_low": out["low"],
        "icc_high": out["high"],
        "n_patients": out["n"],
        "n_copies": len(copies),
        "note": out["note"],
    }, columns=list(ICC_COLUMNS))


def feature_family(name: str) -> str:
    """The radiomics feature class (``firstorder``, ``glcm``, ``shape``...) of a column name.

    Names look like ``rad__<phase>__<imagetype>_<class>_<name>``, where PyRadiomics image
    types carry no underscore (``wavelet-LLH``, ``log-sigma-2-0-mm-3D``); anything else is
    :data:`OTHER_FAMILY`.
    """
    match = _RADIOMICS.match(str(name))
    return match["family"] if match else OTHER_FAMILY


def robust_counts(icc: pd.DataFrame | pd.Series,
                  thresholds: Sequence[float] = (0.75, 0.9)) -> pd.DataFrame:
    """How many features reach each ICC threshold, overall and per radiomics family.

    Parameters
    ----------
    icc : pandas.DataFrame or pandas.Series
        :func:`icc_table`'s output (columns ``feature`` and ``icc``), or a Series feature
        name -> ICC.
    thresholds : sequence of float, default=(0.75, 0.9)
        A feature is robust at ``t`` when ``icc >= t``; a NaN ICC is never robust (it still
        counts in ``total``).

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold, family, robust, total, share``: per threshold one ``"all"`` row,
        then one row per family (feature class of ``rad__`` names, ``"other"`` for the rest)
        in alphabetical order.
    """
    if isinstance(icc, pd.Series):
        names, scores = icc.index.astype(str), icc.to_numpy(dtype=float)
    else:
        missing = {"feature", "icc"} - set(icc.columns)
        if missing:
            raise RobustnessError(f"robust_counts needs columns feature and icc; missing "
                                  f"{sorted(missing)}", step="robustness")
        names, scores = icc["feature"].astype(str), icc["icc"].to_numpy(dtype=float)
    family = np.array([feature_family(n) for n in names], dtype=object)
    groups = [(ALL_FAMILIES, np.ones(len(family), dtype=bool))]
    groups += [(f, family == f) for f in sorted(set(family))]
    rows = []
    for t in thresholds:
        if not 0 <= float(t) <= 1:
            raise RobustnessError(f"thresholds must lie in [0, 1], got {t!r}",
                                  step="robustness")
        robust = scores >= float(t)  # NaN compares False: never robust
        for fam, members in groups:
            total = int(members.sum())
            hits = int((robust & members).sum())
            rows.append((float(t), fam, hits, total, hits / total if total else np.nan))
    return pd.DataFrame(rows, columns=list(COUNT_COLUMNS))
