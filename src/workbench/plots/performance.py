"""Discrimination and calibration figures: ROC with DeLong CIs, calibration curve, AUC
heatmap, confusion matrix.

Every function takes the run directory's tidy tables (``models/predictions.parquet``,
``models/metrics.parquet``), computes only cheap summaries through
:mod:`workbench.evaluation` (never refits), and returns a HoloViews object.
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from workbench.evaluation.calibration import brier_score, reliability_curve
from workbench.evaluation.delong import delong_auc_ci
from workbench.evaluation.metrics import confusion_frame
from workbench.plots._common import (
    PALETTE,
    PlotInputError,
    eval_predictions,
    figure_title,
    model_keys,
    model_name,
    plain,
    require_columns,
    select_rows,
    uses_deep,
)

__all__ = ["auc_heatmap", "calibration_curve", "confusion_matrix_plot", "roc_curves",
           "roc_label"]


def roc_label(feature_set: str, classifier: str, auc: float, lo: float, hi: float) -> str:
    """Legend label ``"<feature set> / <classifier>: AUC 0.xx (0.xx–0.xx)"``."""
    ci = f" ({lo:.2f}–{hi:.2f})" if np.isfinite(lo) and np.isfinite(hi) else " (CI n/a)"
    return f"{model_name(feature_set, classifier)}: AUC {auc:.2f}{ci}"


def _y_p(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return group["label"].to_numpy(dtype=int), group["probability"].to_numpy(dtype=float)


def roc_curves(predictions: pd.DataFrame, *, protocol: str = "honest", split: str = "test",
               models: Sequence[tuple[str, str]] | None = None,
               weights_label: str | None = None, alpha: float = 0.05) -> hv.Overlay:
    """ROC curves of several models, each labelled with its AUC and DeLong CI.

    Parameters
    ----------
    predictions
        ``models/predictions.parquet``.
    protocol, split
        Which predictions: ``honest`` | ``paper``; ``test`` | ``cv`` (first repeat).
    models
        ``(feature_set, classifier)`` pairs to overlay; default every model present.
    weights_label
        The deep-weights label (``run_manifest.json`` → ``deep_weights.label``), shown in the
        title when a drawn model uses deep features.
    alpha
        1 − confidence level of the DeLong intervals.

    Returns
    -------
    holoviews.Overlay
        One curve per model, legend ``"<feature set> / <classifier>: AUC 0.xx (lo–hi)"``,
        plus the chance diagonal.
    """
    part = eval_predictions(predictions, protocol, split)
    keys = model_keys(part, models)
    curves = []
    n = n_pos = 0
    for i, (fs, clf) in enumerate(keys):
        group = part[(part["feature_set"] == fs) & (part["classifier"] == clf)]
        y, p = _y_p(group)
        n, n_pos = len(y), int(y.sum())
        ci = delong_auc_ci(y, p, alpha=alpha)
        fpr, tpr, _ = roc_curve(y, p)
        frame = pd.DataFrame({"fpr": fpr, "tpr": tpr})
        curves.append(hv.Curve(frame, "fpr", "tpr", label=roc_label(fs, clf, *ci[:3]))
                      .opts(color=PALETTE[i % len(PALETTE)], line_width=2))
    chance = hv.Curve(([0, 1], [0, 1]), "fpr", "tpr", label="chance").opts(
        color="grey", line_dash="dashed", line_width=1)
    title = figure_title(f"ROC — {protocol} protocol, {split} split (n={n}, pCR={n_pos})",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(fs for fs, _ in keys), width_px=640)
    return hv.Overlay([*curves, chance]).opts(
        hv.opts.Curve(tools=["hover"]),
        hv.opts.Overlay(title=title, xlabel="1 − specificity", ylabel="sensitivity",
                        legend_position="bottom_right", width=640, height=520,
                        xlim=(-0.01, 1.01), ylim=(-0.01, 1.01)))


def calibration_curve(predictions: pd.DataFrame, *, protocol: str = "honest",
                      feature_set: str, classifier: str, split: str = "test",
                      n_bins: int = 5, strategy: str = "quantile",
                      weights_label: str | None = None) -> hv.Overlay:
    """Binned reliability curve (observed pCR rate vs mean predicted probability) with Wilson
    intervals per bin and the diagonal of perfect calibration.

    Parameters
    ----------
    predictions
        ``models/predictions.parquet``.
    protocol, feature_set, classifier, split
        The model and the predictions to bin.
    n_bins, strategy
        See :func:`workbench.evaluation.calibration.reliability_curve`.
    weights_label
        Shown in the title when ``feature_set`` uses deep features.
    """
    part = eval_predictions(predictions, protocol, split)
    group = select_rows(part, what="prediction", step="calibration plot",
                        feature_set=feature_set, classifier=classifier)
    y, p = _y_p(group)
    rel = reliability_curve(y, p, n_bins=n_bins, strategy=strategy)
    rel = rel.assign(err_lo=rel["observed"] - rel["observed_lo"],
                     err_hi=rel["observed_hi"] - rel["observed"])
    name = model_name(feature_set, classifier)
    label = f"{name} (Brier {brier_score(y, p):.3f})"
    points = hv.Scatter(rel, "mean_predicted", ["observed", "n", "n_events"], label=label)
    line = hv.Curve(rel, "mean_predicted", "observed", label=label)
    bars = hv.ErrorBars(rel, "mean_predicted", ["observed", "err_lo", "err_hi"])
    diagonal = hv.Curve(([0, 1], [0, 1]), "mean_predicted", "observed",
                        label="perfect calibration").opts(color="grey", line_dash="dashed")
    title = figure_title(f"Calibration — {name}, {protocol} protocol, {split} split "
                         f"({len(rel)} {strategy} bins, n={len(y)})",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(feature_set), width_px=560)
    return (bars * line * points * diagonal).opts(
        hv.opts.Scatter(size=8, color=PALETTE[0], tools=["hover"]),
        hv.opts.Curve(color=PALETTE[0]),
        hv.opts.ErrorBars(color=PALETTE[0]),
        hv.opts.Overlay(title=title, xlabel="mean predicted probability",
                        ylabel="observed pCR rate (95% Wilson CI)", width=560, height=480,
                        xlim=(-0.02, 1.02), ylim=(-0.02, 1.02),
                        legend_position="top_left"))


def auc_heatmap(metrics: pd.DataFrame, *, protocol: str = "honest", split: str = "test",
                metric: str = "auc", weights_label: str | None = None) -> hv.Overlay:
    """Classifier × feature set heatmap of a metric (default the AUC), values printed.

    Parameters
    ----------
    metrics
        ``models/metrics.parquet``.
    protocol, split, metric
        Which rows; ``metric`` is a name of the metrics table (``auc``, ``f1``, ``brier``...).
    weights_label
        Shown in the title when a feature set uses deep features.
    """
    require_columns(metrics, ["protocol", "feature_set", "classifier", "split", "metric",
                              "value", "lo", "hi"], what="metrics table", step="heatmap")
    rows = select_rows(metrics, what="metrics", step="heatmap", protocol=protocol,
                       split=split, metric=metric)
    rows = rows[["classifier", "feature_set", "value", "lo", "hi"]].copy()
    rows["classifier"] = rows["classifier"].astype(str)
    rows["feature_set"] = rows["feature_set"].astype(str)
    rows["text"] = [f"{v:.2f}" if np.isfinite(v) else "n/a" for v in rows["value"]]
    rows = plain(rows)
    heat = hv.HeatMap(rows, ["classifier", "feature_set"], ["value", "lo", "hi"])
    labels = hv.Labels(rows, ["classifier", "feature_set"], "text")
    centred = metric in ("auc", "accuracy", "sensitivity", "specificity", "precision",
                         "npv", "f1")
    width = 120 + 90 * rows["classifier"].nunique()
    title = figure_title(f"{metric.upper() if metric == 'auc' else metric} — "
                         f"{protocol} protocol, {split} split",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(rows["feature_set"]), width_px=width)
    return (heat * labels).opts(
        hv.opts.HeatMap(cmap="RdBu_r", colorbar=True, tools=["hover"],
                        clim=(0.0, 1.0) if centred else (np.nan, np.nan)),
        hv.opts.Labels(text_font_size="11pt", text_color="black"),
        hv.opts.Overlay(title=title, width=width,
                        height=140 + 50 * rows["feature_set"].nunique(), xrotation=30))


_OUTCOMES = {"tp": "true positive", "fp": "false positive", "tn": "true negative",
             "fn": "false negative"}


def confusion_matrix_plot(predictions: pd.DataFrame, *, protocol: str = "honest",
                          feature_set: str, classifier: str, split: str = "test",
                          threshold: float = 0.5,
                          weights_label: str | None = None) -> hv.Overlay:
    """Confusion matrix of one model at ``threshold`` (``p >= threshold`` predicts pCR)."""
    part = eval_predictions(predictions, protocol, split)
    group = select_rows(part, what="prediction", step="confusion matrix",
                        feature_set=feature_set, classifier=classifier)
    y, p = _y_p(group)
    if not 0 <= threshold <= 1:
        raise PlotInputError(f"threshold must lie in [0, 1], got {threshold}",
                             step="confusion matrix")
    frame = confusion_frame(y, p, threshold)
    names = {1: "pCR", 0: "non-pCR"}
    frame = frame.assign(actual=frame["actual"].map(names),
                         predicted=frame["predicted"].map(names),
                         outcome=frame["outcome"].map(_OUTCOMES))
    frame["text"] = [f"{c}\n{o}" for c, o in zip(frame["count"], frame["outcome"], strict=True)]
    frame = plain(frame)
    heat = hv.HeatMap(frame, ["predicted", "actual"], ["count", "outcome"])
    labels = hv.Labels(frame, ["predicted", "actual"], "text")
    title = figure_title(f"Confusion matrix — {model_name(feature_set, classifier)}, "
                         f"{protocol}, {split}, threshold {threshold:.2f}",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(feature_set), width_px=460)
    return (heat * labels).opts(
        hv.opts.HeatMap(cmap="Blues", tools=["hover"], colorbar=False),
        hv.opts.Labels(text_font_size="12pt", text_color="black"),
        hv.opts.Overlay(title=title, width=460, height=380, xlabel="predicted",
                        ylabel="actual"))
