"""Metrics per model from a predictions table, and the one-line headline of a run.

Both read the tidy ``predictions`` / ``metrics`` tables of a run directory (see
:mod:`workbench.rundir`); every row keeps its ``protocol``, and rows of the study's ``paper``
protocol carry the leakage warning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.evaluation.calibration import calibration_table
from workbench.evaluation.metrics import metrics_table, youden_threshold
from workbench.names import LEAKAGE_WARNING

__all__ = ["evaluate", "headline"]


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
                             "warning": "one class only: metrics undefined"})
                continue
            table = pd.concat([metrics_table(y, p, thr, n_boot, seed),
                               calibration_table(y, p)], ignore_index=True)
            for _, r in table.iterrows():
                rows.append({**base, **r.to_dict()})
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
    return lines
