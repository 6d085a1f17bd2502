"""Radiomics-rigour figures: negative-control AUCs, ICC distributions, ComBat harmonisation.

Each function takes one of the tables the controls, robustness and harmonisation stages write
(``controls/control_auc.csv``, ``robustness/icc.csv`` + ``selected.csv``,
``harmonisation/harmonisation_auc.csv`` + ``site_features.parquet``) and returns a HoloViews
object; nothing here reads a file. Every AUC figure names its protocol in the title, and the
whole-cohort ComBat variants are marked leaky (:data:`LEAKY_VARIANTS`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import holoviews as hv
import numpy as np
import pandas as pd

from workbench.evaluation.rigour_display import CONTROL_ORDER, FAMILY_ORDER, LEAKY_VARIANTS
from workbench.plots._common import PALETTE, figure_title, plain, require_columns, select_rows

__all__ = ["HARMONISATION_VARIANTS", "LEAKY_VARIANTS", "control_auc_chart",
           "harmonisation_auc_chart", "icc_histogram", "radiomics_family",
           "site_feature_boxes", "variant_label"]

#: The harmonisation variants in display order (``harmonisation/harmonisation_auc.csv``).
HARMONISATION_VARIANTS = ("none", "combat_in_fold", "combat_whole_cohort",
                          "combat_whole_cohort_pcr")
_SPLITS = (("cv", "CV (training)", PALETTE[0], -0.15), ("test", "test split", PALETTE[1], 0.15))
# The same rule as workbench.features.robustness.feature_family (plots may not import
# features; a test checks that the two agree).
_RADIOMICS = re.compile(r"^rad__.+?__[^_]+_(?P<family>[^_]+)_.+$")


def radiomics_family(name: str) -> str:
    """Feature class (``firstorder``, ``glcm``, ``shape``...) of a ``rad__`` column name,
    ``other`` for anything else."""
    match = _RADIOMICS.match(str(name))
    return match["family"] if match else "other"


def variant_label(variant: str) -> str:
    """``variant`` with ``(LEAKY)`` appended for a whole-cohort ComBat variant."""
    return f"{variant} (LEAKY)" if str(variant) in LEAKY_VARIANTS else str(variant)


def _ordered(values: pd.Series, order: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(values.astype(str)))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def _auc_points(rows: pd.DataFrame, categories: list[str], column: str) -> list:
    """Points with CI whiskers, CV left and test right of each category; 0.5 dashed."""
    elements = []
    for split, label, color, offset in _SPLITS:
        part = rows[rows["split"].astype(str) == split]
        if part.empty:
            continue
        pos = {c: i for i, c in enumerate(categories)}
        x = part[column].astype(str).map(pos).to_numpy(dtype=float) + offset
        auc = part["auc"].to_numpy(dtype=float)
        lo = part["auc_low"].to_numpy(dtype=float) if "auc_low" in part else auc
        hi = part["auc_high"].to_numpy(dtype=float) if "auc_high" in part else auc
        lo, hi = np.where(np.isfinite(lo), lo, auc), np.where(np.isfinite(hi), hi, auc)
        elements.append(hv.ErrorBars((x, auc, auc - lo, hi - auc), kdims=["position"],
                                     vdims=["AUC", "below", "above"]).opts(color=color))
        elements.append(hv.Scatter((x, auc), kdims=["position"], vdims=["AUC"],
                                   label=label).opts(color=color, size=9))
    elements.append(hv.HLine(0.5).opts(color="black", line_dash="dashed", line_width=1.5))
    return elements


def control_auc_chart(control_auc: pd.DataFrame, *, protocol: str = "honest") -> hv.Layout:
    """AUC with 95 % CI of the real images and each negative control, one panel per feature
    family (first order, texture, shape, volume alone), CV and test side by side, chance
    (0.5) dashed.

    Parameters
    ----------
    control_auc
        ``controls/control_auc.csv`` (control, family, split, auc, auc_low, auc_high).
    protocol
        The protocol the AUCs were estimated under (``controls/summary.json``), shown in the
        titles.
    """
    require_columns(control_auc, ["control", "family", "split", "auc"],
                    what="control AUC table", step="negative-control plot")
    panels = []
    for family in _ordered(control_auc["family"], FAMILY_ORDER):
        rows = select_rows(control_auc, what="control AUC", step="negative-control plot",
                           family=family)
        controls = _ordered(rows["control"], CONTROL_ORDER)
        title = figure_title(f"Negative controls — {family} features, {protocol} protocol: "
                             "AUC (95% CI); chance = 0.5 (dashed)", width_px=520)
        panels.append(hv.Overlay(_auc_points(rows, controls, "control")).opts(hv.opts.Overlay(
            title=title, xlabel="image", ylabel="AUC", ylim=(0, 1),
            xticks=list(enumerate(controls)), xlim=(-0.6, len(controls) - 0.4),
            width=520, height=380, legend_position="bottom_right")))
    return hv.Layout(panels).cols(2)


def icc_histogram(icc: pd.DataFrame, selected: pd.DataFrame | None = None, *,
                  thresholds: Sequence[float] = (0.75, 0.9), bins: int = 20,
                  protocol: str | None = None) -> hv.Overlay:
    """Histograms of ICC(3,1) per radiomics family on shared bins, the robustness thresholds
    marked, and the models' selected features as a rug of ticks under the bars.

    Parameters
    ----------
    icc
        ``robustness/icc.csv`` (feature, icc).
    selected
        ``robustness/selected.csv`` (protocol, feature, final, icc): the final refit's
        features are marked (of ``protocol``, default every protocol present).
    thresholds
        ICC thresholds drawn as vertical lines.
    bins
        Number of bins over [0, 1] (ICCs below 0 fall in the first).
    """
    require_columns(icc, ["feature", "icc"], what="ICC table", step="ICC plot")
    table = icc.assign(family=icc["feature"].map(radiomics_family),
                       icc=pd.to_numeric(icc["icc"], errors="coerce"))
    edges = np.linspace(0, 1, int(bins) + 1)
    elements = []
    for i, (family, group) in enumerate(table.groupby("family", sort=True)):
        values = np.clip(group["icc"].dropna().to_numpy(dtype=float), 0, 1)
        counts, _ = np.histogram(values, bins=edges)
        elements.append(hv.Histogram((edges, counts), kdims=["ICC"], vdims=["features"],
                                     label=f"{family} ({len(group)})").opts(
            color=PALETTE[i % len(PALETTE)], alpha=0.45, line_color=None))
    for t, dash in zip(thresholds, ("dashed", "dotted", "dashdot"), strict=False):
        elements.append(hv.VLine(float(t)).opts(color="black", line_dash=dash, line_width=1.5))
    marked = ""
    if selected is not None and len(selected) and {"feature", "icc"} <= set(selected.columns):
        sel = selected
        if protocol is not None and "protocol" in sel.columns:
            sel = sel[sel["protocol"].astype(str) == protocol]
        if "final" in sel.columns:
            sel = sel[sel["final"].astype(str).str.lower().isin(("true", "1"))]
        sel = sel.drop_duplicates("feature")
        x = np.clip(pd.to_numeric(sel["icc"], errors="coerce").to_numpy(dtype=float), 0, 1)
        if len(x):
            elements.append(hv.Scatter(
                plain(pd.DataFrame({"ICC": x, "features": -0.5,
                                    "feature": sel["feature"].astype(str).to_numpy()})),
                kdims=["ICC"], vdims=["features", "feature"],
                label=f"selected ({len(x)})").opts(color="black", marker="dash", angle=np.pi / 2,
                                                   size=14, tools=["hover"]))
            marked = f"; ticks below: the {len(x)} features the final models selected"
    lines = " / ".join(f"{float(t):g}" for t in thresholds)
    title = figure_title(f"Perturbation robustness — ICC(3,1) per radiomics family; "
                         f"thresholds {lines} (vertical lines){marked}", width_px=700)
    return hv.Overlay(elements).opts(hv.opts.Overlay(
        title=title, xlabel="ICC(3,1) (values below 0 shown at 0)", ylabel="features",
        xlim=(0, 1), width=700, height=420, legend_position="top_left"))


def harmonisation_auc_chart(harmonisation_auc: pd.DataFrame) -> hv.Overlay:
    """AUC (95 % CI) of each harmonisation variant, CV and test side by side, with the null
    audit's mean ± SD (permuted labels) as a grey bar beside each point; the whole-cohort
    variants are labelled ``(LEAKY)``.

    Parameters
    ----------
    harmonisation_auc
        ``harmonisation/harmonisation_auc.csv`` (variant, protocol, split, auc, auc_low,
        auc_high, null_mean, null_sd).
    """
    require_columns(harmonisation_auc, ["variant", "split", "auc"],
                    what="harmonisation AUC table", step="harmonisation plot")
    rows = harmonisation_auc.assign(variant=harmonisation_auc["variant"].astype(str))
    variants = _ordered(rows["variant"], HARMONISATION_VARIANTS)
    elements = _auc_points(rows, variants, "variant")
    if {"null_mean", "null_sd"} <= set(rows.columns):
        pos = {v: i for i, v in enumerate(variants)}
        for split, _, _, offset in _SPLITS:
            part = rows[(rows["split"].astype(str) == split) & rows["null_mean"].notna()]
            if part.empty:
                continue
            x = part["variant"].map(pos).to_numpy(dtype=float) + offset + 0.08
            mean = part["null_mean"].to_numpy(dtype=float)
            sd = np.nan_to_num(part["null_sd"].to_numpy(dtype=float))
            elements.append(hv.ErrorBars((x, mean, sd, sd), kdims=["position"],
                                         vdims=["AUC", "below", "above"]).opts(color="grey"))
            elements.append(hv.Scatter((x, mean), kdims=["position"], vdims=["AUC"],
                                       label=f"null mean ± SD ({split})").opts(
                color="grey", marker="square", size=6))
    protocols = sorted(map(str, rows["protocol"].unique())) if "protocol" in rows else ["?"]
    what = ", ".join(f"{c} {sorted(map(str, rows[c].unique()))}" for c in
                     ("feature_set", "classifier") if c in rows.columns)
    title = figure_title(f"Harmonisation — AUC (95% CI) by ComBat variant, {'/'.join(protocols)}"
                         f" protocol ({what}); grey: null audit mean ± SD\n⚠ whole-cohort "
                         "variants (LEAKY): ComBat saw the test patients before the split",
                         width_px=760)
    return hv.Overlay(elements).opts(hv.opts.Overlay(
        title=title, xlabel="variant", ylabel="AUC", ylim=(0, 1),
        xticks=[(i, variant_label(v)) for i, v in enumerate(variants)],
        xlim=(-0.6, len(variants) - 0.4), width=760, height=420,
        legend_position="bottom_left"))


def site_feature_boxes(site_features: pd.DataFrame, *, features: Sequence[str] | None = None,
                       max_features: int = 6) -> hv.Layout:
    """Box plots of each shown feature per site, before and after ComBat, one panel per
    feature (the features most affected by site first).

    Parameters
    ----------
    site_features
        ``harmonisation/site_features.parquet`` (patient_id, feature, value, stage, site,
        smd_before).
    features
        Features to draw (default: the ``max_features`` largest ``smd_before``).
    """
    require_columns(site_features, ["feature", "value", "stage", "site"],
                    what="site-feature table", step="site-feature plot")
    table = plain(site_features.assign(site=site_features["site"].astype(str),
                                       stage=site_features["stage"].astype(str)))
    if features is None:
        if "smd_before" in table.columns:
            order = (table.groupby("feature")["smd_before"].max()
                     .sort_values(ascending=False).index)
        else:
            order = pd.Index(dict.fromkeys(table["feature"]))
        features = list(order[:max_features])
    stages = [s for s in ("before", "after") if s in set(table["stage"])]
    panels = []
    for feature in features:
        part = select_rows(table, what="site-feature", step="site-feature plot",
                           feature=feature)
        part = part.assign(stage=pd.Categorical(part["stage"], stages, ordered=True)
                           ).sort_values(["stage", "site"])
        part = plain(part.assign(stage=part["stage"].astype(str)))
        smd = (f" (SMD before {float(part['smd_before'].iloc[0]):.2f})"
               if "smd_before" in part.columns else "")
        panels.append(hv.BoxWhisker(part, kdims=["stage", "site"], vdims=["value"]).opts(
            title=figure_title(f"{feature}{smd}", width_px=380), box_fill_color="site",
            cmap=list(PALETTE), width=380, height=300, xlabel="ComBat: before / after, site",
            ylabel="value", xrotation=0))
    return hv.Layout(panels).cols(3).opts(
        hv.opts.Layout(title="Per-site feature distributions before and after ComBat on the "
                             "whole cohort (a picture, not an estimate)"))
