"""Clinical utility: decision curves (net benefit) with treat-all / treat-none references."""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd

from workbench.evaluation.decision_curve import decision_curve
from workbench.plots._common import (
    PALETTE,
    PlotInputError,
    eval_predictions,
    figure_title,
    model_keys,
    model_name,
    uses_deep,
)

__all__ = ["decision_curves"]


def decision_curves(predictions: pd.DataFrame, *, protocol: str = "honest",
                    split: str = "test", models: Sequence[tuple[str, str]] | None = None,
                    threshold: float | None = 0.5, thresholds=None,
                    weights_label: str | None = None) -> hv.Overlay:
    """Net benefit of several models across threshold probabilities (Vickers & Elkin).

    Parameters
    ----------
    predictions
        ``models/predictions.parquet``.
    protocol, split
        Which predictions (``cv``: first repeat).
    models
        ``(feature_set, classifier)`` pairs; default every model present.
    threshold
        Decision threshold marked by a vertical line (``None``: no marker).
    thresholds
        Threshold grid, see :func:`workbench.evaluation.decision_curve.decision_curve`.
    weights_label
        Shown in the title when a drawn model uses deep features.

    Returns
    -------
    holoviews.Overlay
        One curve per model, *treat all* (dashed), *treat none* (dotted), the threshold
        marker.
    """
    part = eval_predictions(predictions, protocol, split)
    keys = model_keys(part, models)
    names = {k: model_name(*k) for k in keys}
    part = part.assign(model=[names.get(k) for k in zip(part["feature_set"].astype(str),
                                                        part["classifier"].astype(str),
                                                        strict=True)])
    part = part[part["model"].notna()]
    wide = part.pivot_table(index="patient_id", columns="model", values="probability",
                            aggfunc="mean")
    labels = part.groupby("patient_id")["label"].first().reindex(wide.index)
    wide = wide.dropna()  # every model scored on the same patients
    if wide.empty:
        raise PlotInputError("the models share no patient; a decision curve compares models "
                             "on the same patients", step="decision curve")
    y = labels.loc[wide.index].to_numpy(dtype=int)
    curve = decision_curve(y, {m: wide[m].to_numpy() for m in names.values()}, thresholds)
    prevalence = float(y.mean())
    elements = []
    for i, name in enumerate(names.values()):
        sub = curve[curve["strategy"] == name]
        elements.append(hv.Curve(sub, "threshold", "net_benefit", label=name).opts(
            color=PALETTE[i % len(PALETTE)], line_width=2))
    styles = {"treat all": ("black", "dashed"), "treat none": ("grey", "dotted")}
    for ref, (color, dash) in styles.items():
        sub = curve[curve["strategy"] == ref]
        elements.append(hv.Curve(sub, "threshold", "net_benefit", label=ref).opts(
            color=color, line_dash=dash, line_width=1.5))
    if threshold is not None:
        elements.append(hv.VLine(float(threshold)).opts(color="grey", line_width=1,
                                                        line_dash="dotdash"))
    title = figure_title(f"Decision curves — {protocol} protocol, {split} split "
                         f"(n={len(y)}, prevalence {prevalence:.2f})"
                         + (f", threshold {threshold:.2f}" if threshold is not None else ""),
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(fs for fs, _ in keys), width_px=640)
    top = max(prevalence, float(np.nanmax(curve["net_benefit"]))) + 0.05
    return hv.Overlay(elements).opts(
        hv.opts.Curve(tools=["hover"]),
        hv.opts.Overlay(title=title, xlabel="threshold probability", ylabel="net benefit",
                        ylim=(-0.05, top), xlim=(0, 1), width=640, height=480,
                        legend_position="top_right"))
