"""Metrics per model from a predictions table, and the one-line headline of a run.

Both read the tidy ``predictions`` / ``metrics`` tables of a run directory (see
:mod:`workbench.rundir`); every row keeps its ``protocol``, and rows of the study's ``paper``
protocol carry the leakage warning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from workbench.evaluation.calibration import calibration_table
from workbench.evaluation.metrics import metrics_table, youden_threshold
from workbench.names import LEAKAGE_WARNING

__all__ = ["CALIBRATION_SLOPE_RANGE", "calibration_warnings", "evaluate", "headline",
           "repeated_cv_rows"]

#: Calibration slopes outside this range get a warning line in the run summary.
CALIBRATION_SLOPE_RANGE = (0.7, 1.3)
#: Per-repeat measures of repeated CV: metric name -> function of (y, p).
_REPEATED = ("auc", "calibration_slope", "calibration_intercept", "brier")


def repeated_cv_rows(cv: pd.DataFrame, base: dict) -> list[dict]:
    """``<metric>_repeated`` rows from out-of-fold predictions of several CV repeats.

    Each repeat's out-of-fold predictions cover every development patient once; the metric is
    computed per repeat and reported as the mean (``value``), the range over repeats
    (``lo``, ``hi``) and the SD (``sd`` in ``method``, and an ``auc_repeated_sd`` row), so
    the spread a single split hides is on the table.
    """
    per: dict[str, list[float]] = {m: [] for m in _REPEATED}
    n = n_pos = 0
    for _, part in cv.groupby("repeat", sort=True):
        y, p = part["label"].to_numpy(), part["probability"].to_numpy()
        n, n_pos = len(y), int(y.sum())
        if len(np.unique(y)) < 2:
            continue
        per["auc"].append(float(roc_auc_score(y, p)))
        cal = calibration_table(y, p).set_index("metric")["value"]
        for m in _REPEATED[1:]:
            per[m].append(float(cal[m]))
    rows = []
    repeats = len(per["auc"])
    if not repeats:
        return rows
    for m, values in per.items():
        v = np.asarray(values, dtype=float)
        rows.append({**base, "metric": f"{m}_repeated", "value": float(np.nanmean(v)),
                     "lo": float(np.nanmin(v)), "hi": float(np.nanmax(v)), "n": n,
                     "n_pos": n_pos,
                     "method": f"mean of {repeats} repeats of k-fold CV (lo-hi: range over "
                               f"repeats; SD {np.nanstd(v, ddof=1):.3f})"})
    auc = np.asarray(per["auc"])
    rows.append({**base, "metric": "auc_repeated_sd", "value": float(np.std(auc, ddof=1)),
                 "lo": np.nan, "hi": np.nan, "n": n, "n_pos": n_pos,
                 "method": f"SD of the per-repeat AUC over {repeats} repeats"})
    return rows


def evaluate(predictions: pd.DataFrame, *, threshold_rule: str = "fixed",
             fixed_threshold: float = 0.5, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Metrics with CIs per (protocol, feature_set, classifier, split).

    With ``threshold_rule="youden"`` the threshold of each model is chosen on its training
    out-of-fold (``cv``) predictions and applied unchanged to the test patients.
    """
    rows = []
    keys = ["protocol", "feature_set", "classifier"]
    for key, group in predictions.groupby(keys, sort=False):
        cv = group[(group["split"] == "cv") & (group["repeat"] == 0)]
        thr = fixed_threshold
        if threshold_rule == "youden" and cv["label"].nunique() == 2:
            thr = float(youden_threshold(cv["label"].to_numpy(), cv["probability"].to_numpy()))
        for split in ("cv", "test"):
            part = group[group["split"] == split]
            if split == "cv":
                part = part[part["repeat"] == 0]
            y, p = part["label"].to_numpy(), part["probability"].to_numpy()
            base = dict(zip(keys, key, strict=True), split=split, threshold=thr, n=len(y),
                        n_pos=int(y.sum()))
            if len(np.unique(y)) < 2:
                rows.append({**base, "metric": "auc", "value": np.nan,
                             "warning": ("no predictions (the model could not be fitted; "
                                         "see models/skipped.csv)" if not len(y) else
                                         "one class only: metrics undefined")})
                continue
            table = pd.concat([metrics_table(y, p, thr, n_boot, seed),
                               calibration_table(y, p)], ignore_index=True)
            for _, r in table.iterrows():
                rows.append({**base, **r.to_dict()})
        cv_all = group[group["split"] == "cv"]
        if cv_all["repeat"].nunique() > 1:
            base = dict(zip(keys, key, strict=True), split="cv", threshold=thr)
            rows += repeated_cv_rows(cv_all, base)
    out = pd.DataFrame(rows)
    out["warning"] = out.get("warning", pd.Series(index=out.index, dtype=object))
    out.loc[out["protocol"] == "paper", "warning"] = LEAKAGE_WARNING
    return out


def headline(metrics: pd.DataFrame, feature_set: str, classifier: str = "lr") -> list[str]:
    """One line per protocol: test AUC with its DeLong CI, protocol stated beside it."""
    lines = []
    sel = metrics[(metrics["feature_set"] == feature_set) & (metrics["classifier"] == classifier)
                  & (metrics["metric"] == "auc")]
    for _, r in sel.iterrows():
        tag = " [LEAKS: selection saw the test patients]" if r["protocol"] == "paper" else ""
        start = f"{r['protocol']:6s} {feature_set}/{classifier} {r['split']:4s} AUC"
        if pd.isna(r["value"]):  # withheld or undefined: say why instead of printing nan
            lines.append(f"{start} - ({r.get('warning') or 'undefined'}; n={r['n']})")
            continue
        lines.append(f"{start} {r['value']:.3f} (95% CI {r['lo']:.3f}-{r['hi']:.3f}, "
                     f"n={r['n']}){tag}")
    rep = metrics[(metrics["feature_set"] == feature_set)
                  & (metrics["classifier"] == classifier)
                  & (metrics["metric"] == "auc_repeated")]
    for _, r in rep.iterrows():
        lines.append(f"{r['protocol']:6s} {feature_set}/{classifier} repeated CV AUC "
                     f"{r['value']:.3f} (range {r['lo']:.3f}-{r['hi']:.3f}; {r['method']})")
    return lines


def calibration_warnings(metrics: pd.DataFrame, models: list[tuple[str, str]]) -> list[str]:
    """A warning line per honest headline model whose calibration slope (repeated CV when
    there is one, else the CV) lies outside :data:`CALIBRATION_SLOPE_RANGE`."""
    lo, hi = CALIBRATION_SLOPE_RANGE
    lines = []
    for fs, clf in models:
        sel = metrics[(metrics["protocol"] == "honest") & (metrics["feature_set"] == fs)
                      & (metrics["classifier"] == clf) & (metrics["split"] == "cv")]
        for name in ("calibration_slope_repeated", "calibration_slope"):
            row = sel[sel["metric"] == name]
            if row.empty or pd.isna(row["value"].iat[0]):
                continue
            slope = float(row["value"].iat[0])
            if not lo <= slope <= hi:
                where = "repeated CV" if name.endswith("_repeated") else "CV"
                lines.append(f"WARNING calibration: honest {fs}/{clf} has a {where} "
                             f"calibration slope of {slope:.2f}, outside {lo}-{hi}: its "
                             "probabilities are " + ("too extreme (overfitted)" if slope < lo
                                                     else "too timid") +
                             "; read them as rankings, or recalibrate "
                             "(protocol.recalibration)")
            break
    return lines
