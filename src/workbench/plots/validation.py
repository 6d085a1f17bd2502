"""External-validation figures: reliability diagram, decision curves, ROC of the external
cohort, the case mix's standardised differences, and the predicted-probability histogram of a
predict-only cohort.

Inputs are the tables of a validation folder (``workbench validate``; see
:data:`workbench.rundir.VALIDATION_FILES`): ``reliability.csv``, ``decision_curve.csv``,
``predictions.csv``, ``case_mix.csv``. Nothing is refitted; the ROC and the histogram only
sort the stored probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from workbench.evaluation.delong import delong_auc_ci
from workbench.evaluation.validation_display import SMD_FLAG, label_of
from workbench.plots._common import (
    PALETTE,
    PlotInputError,
    figure_title,
    plain,
    require_columns,
)

__all__ = ["case_mix_smd", "validation_decision_curves", "validation_histogram",
           "validation_reliability", "validation_roc"]

#: Colour of each variant (the original first, as in every other figure).
VARIANT_COLOURS = {"original": PALETTE[0], "recalibrated_intercept": PALETTE[2],
                   "recalibrated_logistic": PALETTE[3]}
_STEP = "validation plot"


def _colour(variant: str, i: int) -> str:
    return VARIANT_COLOURS.get(variant, PALETTE[i % len(PALETTE)])


def _variants(table: pd.DataFrame, variants: Sequence[str] | None) -> list[str]:
    have = list(dict.fromkeys(table["variant"].astype(str)))
    if variants is None:
        return have
    missing = [v for v in variants if v not in have]
    if missing:
        raise PlotInputError(f"variants {missing} have no rows; available: {have}", step=_STEP)
    return list(variants)


def _labelled(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    require_columns(predictions, ["label", "probability"], what="predictions.csv", step=_STEP)
    rows = predictions[predictions["label"].notna() & predictions["probability"].notna()]
    y = rows["label"].to_numpy(dtype=int)
    if rows.empty or y.min() == y.max():
        raise PlotInputError("the ROC needs labelled patients of both classes; this cohort "
                             f"has {len(rows)} labelled ({int(y.sum()) if len(y) else 0} "
                             "pCR)", step=_STEP)
    return y, rows["probability"].to_numpy(dtype=float)


def validation_reliability(reliability: pd.DataFrame, *,
                           variants: Sequence[str] | None = None,
                           title: str = "Calibration on the external cohort") -> hv.Overlay:
    """Reliability diagram of each variant: observed pCR rate against the mean predicted
    probability per bin, Wilson 95 % CI error bars, the diagonal of perfect calibration.

    Parameters
    ----------
    reliability
        ``reliability.csv``: ``variant, bin, n, mean_predicted, observed, ci_low, ci_high``.
    variants
        Variants to draw (default all, in table order).
    title
        First title line; the number of patients is appended.
    """
    require_columns(reliability, ["variant", "bin", "n", "mean_predicted", "observed",
                                  "ci_low", "ci_high"], what="reliability.csv", step=_STEP)
    if reliability.empty:
        raise PlotInputError("reliability.csv has no rows (an unlabelled cohort has no "
                             "calibration)", step=_STEP)
    table = plain(reliability.assign(variant=reliability["variant"].astype(str)))
    elements = []
    n = 0
    for i, variant in enumerate(_variants(table, variants)):
        rows = table[table["variant"] == variant].sort_values("mean_predicted")
        n = max(n, int(rows["n"].sum()))
        rows = rows.assign(err_lo=rows["observed"] - rows["ci_low"],
                           err_hi=rows["ci_high"] - rows["observed"])
        colour, label = _colour(variant, i), label_of(variant)
        elements += [
            hv.ErrorBars(rows, "mean_predicted", ["observed", "err_lo", "err_hi"])
            .opts(color=colour, alpha=0.7),
            hv.Curve(rows, "mean_predicted", "observed", label=label)
            .opts(color=colour, line_width=2),
            hv.Scatter(rows, "mean_predicted", ["observed", "n", "ci_low", "ci_high"],
                       label=label).opts(color=colour, size=7, tools=["hover"])]
    elements.append(hv.Curve(([0, 1], [0, 1]), "mean_predicted", "observed",
                             label="perfect calibration").opts(color="grey",
                                                               line_dash="dashed"))
    return hv.Overlay(elements).opts(hv.opts.Overlay(
        title=figure_title(f"{title} (n={n}; bins of equal size)", width_px=600),
        xlabel="mean predicted probability", ylabel="observed pCR rate (95% Wilson CI)",
        width=600, height=500, xlim=(-0.02, 1.02), ylim=(-0.02, 1.02),
        legend_position="top_left"))


def validation_decision_curves(decision_curve: pd.DataFrame, *,
                               variants: Sequence[str] | None = None,
                               threshold: float | None = None) -> hv.Overlay:
    """Net benefit of each variant against the threshold probability, with *treat all*
    (dashed) and *treat none* (dotted), and the model's stored threshold marked.

    Parameters
    ----------
    decision_curve
        ``decision_curve.csv``: ``variant, threshold, net_benefit`` (variants plus
        ``treat_all`` and ``treat_none``).
    variants
        Model variants to draw (default all except the references).
    threshold
        The model's decision threshold (``None``: no marker).
    """
    require_columns(decision_curve, ["variant", "threshold", "net_benefit"],
                    what="decision_curve.csv", step=_STEP)
    if decision_curve.empty:
        raise PlotInputError("decision_curve.csv has no rows (an unlabelled cohort has no "
                             "decision curve)", step=_STEP)
    table = plain(decision_curve.assign(variant=decision_curve["variant"].astype(str)))
    refs = {"treat_all": ("black", "dashed"), "treat_none": ("grey", "dotted")}
    models = [v for v in _variants(table, variants) if v not in refs]
    elements = []
    for i, variant in enumerate(models):
        rows = table[table["variant"] == variant].sort_values("threshold")
        elements.append(hv.Curve(rows, "threshold", "net_benefit", label=label_of(variant))
                        .opts(color=_colour(variant, i), line_width=2))
    for ref, (colour, dash) in refs.items():
        rows = table[table["variant"] == ref].sort_values("threshold")
        if len(rows):
            elements.append(hv.Curve(rows, "threshold", "net_benefit", label=label_of(ref))
                            .opts(color=colour, line_dash=dash, line_width=1.5))
    if threshold is not None:
        elements.append(hv.VLine(float(threshold)).opts(color="grey", line_width=1,
                                                        line_dash="dotdash"))
    top = float(np.nanmax(table["net_benefit"])) + 0.05  # treat all at the lowest threshold
    title = "Decision curves on the external cohort" + (
        f" (stored threshold {threshold:.2f})" if threshold is not None else "")
    return hv.Overlay(elements).opts(
        hv.opts.Curve(tools=["hover"]),
        hv.opts.Overlay(title=figure_title(title, width_px=600), xlabel="threshold probability",
                        ylabel="net benefit", xlim=(0, float(table["threshold"].max())),
                        ylim=(-0.05, top), width=600, height=460,
                        legend_position="top_right"))


def validation_roc(predictions: pd.DataFrame, *, alpha: float = 0.05) -> hv.Overlay:
    """ROC of the model on the external cohort's labelled patients, with the AUC and its
    DeLong CI in the legend (recalibration is monotone: one curve serves every variant).

    Parameters
    ----------
    predictions
        ``predictions.csv``: ``patient_id, label, probability, ...``.
    alpha
        1 − confidence level of the DeLong interval.
    """
    y, p = _labelled(predictions)
    ci = delong_auc_ci(y, p, alpha=alpha)
    fpr, tpr, thr = roc_curve(y, p)
    frame = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.clip(thr, 0, 1)})
    label = (f"AUC {ci.auc:.2f} ({ci.lo:.2f}–{ci.hi:.2f})" if np.isfinite(ci.lo)
             else f"AUC {ci.auc:.2f}")
    curve = hv.Curve(frame, "fpr", ["tpr", "threshold"], label=label).opts(
        color=PALETTE[0], line_width=2, tools=["hover"])
    chance = hv.Curve(([0, 1], [0, 1]), "fpr", "tpr", label="chance").opts(
        color="grey", line_dash="dashed", line_width=1)
    title = f"ROC on the external cohort (n={len(y)}, pCR={int(y.sum())})"
    return (curve * chance).opts(hv.opts.Overlay(
        title=figure_title(title, width_px=520), xlabel="1 − specificity",
        ylabel="sensitivity", legend_position="bottom_right", width=520, height=480,
        xlim=(-0.01, 1.01), ylim=(-0.01, 1.01)))


def case_mix_smd(case_mix: pd.DataFrame, *, flag: float = SMD_FLAG) -> hv.Overlay:
    """Standardised difference (external − development) of each case-mix variable, sorted
    by |SMD|, with reference lines at 0 and ± ``flag``; imbalanced variables in red.

    Parameters
    ----------
    case_mix
        ``case_mix.csv``: ``variable, level, kind, development, external, smd, ...``.
    flag
        |SMD| from which a variable counts as imbalanced (0.1 by convention).
    """
    require_columns(case_mix, ["variable", "level", "smd", "development", "external"],
                    what="case_mix.csv", step=_STEP)
    if case_mix.empty:
        raise PlotInputError("case_mix.csv has no rows", step=_STEP)
    t = case_mix.assign(abs_smd=case_mix["smd"].astype(float).abs())
    t = t.sort_values("abs_smd", kind="stable")  # largest at the top of the axis
    level = t["level"].fillna("").astype(str)
    t = plain(pd.DataFrame({
        "variable": [f"{v}: {lv}" if lv else str(v)
                     for v, lv in zip(t["variable"].astype(str), level, strict=True)],
        "smd": t["smd"].astype(float).to_numpy(),
        "development": t["development"].astype(str).to_numpy(),
        "external": t["external"].astype(str).to_numpy(),
        "imbalanced": np.where(t["abs_smd"].to_numpy() >= flag, f"|SMD| ≥ {flag:g}",
                               f"|SMD| < {flag:g}")}))
    width = max(0.5, float(t["smd"].abs().max()) * 1.15)
    elements = [hv.VLine(0.0).opts(color="black", line_width=1)]
    elements += [hv.VLine(x).opts(color="grey", line_dash="dashed", line_width=1)
                 for x in (-flag, flag)]
    for name, colour in ((f"|SMD| < {flag:g}", PALETTE[0]), (f"|SMD| ≥ {flag:g}", PALETTE[1])):
        rows = t[t["imbalanced"] == name]
        if len(rows):
            elements.append(hv.Points(rows, ["smd", "variable"],
                                      ["development", "external"], label=name)
                            .opts(color=colour, size=9, tools=["hover"]))
    return hv.Overlay(elements).opts(hv.opts.Overlay(
        title=figure_title("Case mix: standardised difference, external − development "
                           f"(dashed: ±{flag:g})", width_px=620),
        xlabel="standardised mean difference", ylabel="", width=620,
        height=140 + 26 * len(t), xlim=(-width, width), legend_position="bottom_right"))


def validation_histogram(predictions: pd.DataFrame, *, bins: int = 20) -> hv.Overlay:
    """Histogram of the predicted probabilities (a predict-only cohort's one figure), the
    mean marked."""
    require_columns(predictions, ["probability"], what="predictions.csv", step=_STEP)
    p = predictions["probability"].dropna().to_numpy(dtype=float)
    if p.size == 0:
        raise PlotInputError("predictions.csv holds no probability", step=_STEP)
    counts, edges = np.histogram(p, bins=int(bins), range=(0.0, 1.0))
    hist = hv.Histogram((edges, counts), kdims=["predicted probability"], vdims=["patients"]).opts(
        color=PALETTE[0], alpha=0.8, tools=["hover"])
    mean = hv.VLine(float(p.mean())).opts(color=PALETTE[1], line_dash="dashed")
    return (hist * mean).opts(hv.opts.Overlay(
        title=figure_title(f"Predicted probabilities (n={p.size}; dashed: mean "
                           f"{p.mean():.2f})", width_px=560), width=560, height=360))
