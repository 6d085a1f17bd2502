"""SHAP figures: beeswarm (one point per patient and feature) and mean |SHAP| bars.

Input is ``models/shap.parquet`` (protocol, feature_set, classifier, patient_id, feature,
shap, feature_value, output_space): SHAP values of the final models on the test patients.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd

from workbench.plots._common import (
    PALETTE,
    figure_title,
    model_name,
    plain,
    require_columns,
    select_rows,
    uses_deep,
)

__all__ = ["beeswarm_offsets", "shap_beeswarm", "shap_importance"]

_SHAP_COLUMNS = ("protocol", "feature_set", "classifier", "patient_id", "feature", "shap",
                 "feature_value")


def _model_rows(shap: pd.DataFrame, protocol: str, feature_set: str, classifier: str,
                step: str) -> pd.DataFrame:
    require_columns(shap, _SHAP_COLUMNS, what="SHAP table", step=step)
    return select_rows(shap, what="SHAP", step=step, protocol=protocol,
                       feature_set=feature_set, classifier=classifier)


def _ranked_features(rows: pd.DataFrame, max_features: int) -> pd.Series:
    """Mean |SHAP| per feature, largest first, at most ``max_features``."""
    imp = rows.assign(abs_shap=rows["shap"].abs()).groupby("feature")["abs_shap"].mean()
    return imp.sort_values(ascending=False).head(max_features)


def _space(rows: pd.DataFrame) -> str:
    if "output_space" not in rows.columns or rows["output_space"].isna().all():
        return "model output"
    return str(rows["output_space"].dropna().iloc[0]).replace("_", "-")


def beeswarm_offsets(values: np.ndarray, *, bins: int = 40, width: float = 0.4) -> np.ndarray:
    """Vertical offsets that spread points of similar value apart (a simple beeswarm).

    Values are binned; within a bin points alternate above and below the centre line,
    and offsets are scaled so that the most crowded bin spans ``±width``.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    span = np.nanmax(v) - np.nanmin(v)
    which = (np.zeros(v.size, int) if not np.isfinite(span) or span == 0 else
             np.minimum(((v - np.nanmin(v)) / span * bins).astype(int), bins - 1))
    offsets = np.zeros(v.size)
    order = np.argsort(v, kind="stable")
    slot: dict[int, int] = {}
    for i in order:
        k = slot.get(which[i], 0)
        slot[which[i]] = k + 1
        offsets[i] = ((k + 1) // 2) * (1 if k % 2 else -1)
    peak = max(np.abs(offsets).max(), 1.0)
    return offsets / peak * width


def shap_beeswarm(shap: pd.DataFrame, *, protocol: str = "honest", feature_set: str,
                  classifier: str, max_features: int = 20,
                  weights_label: str | None = None) -> hv.Points:
    """SHAP beeswarm: x = SHAP value, y = feature (most important on top, points spread
    vertically), colour = the feature's value normalised to [0, 1] within the feature.

    Hover shows patient_id, feature, feature value and SHAP. One point per (patient,
    feature) of the ``max_features`` most important features.
    """
    rows = _model_rows(shap, protocol, feature_set, classifier, "SHAP beeswarm")
    ranked = _ranked_features(rows, max_features)
    rows = rows[rows["feature"].isin(ranked.index)].copy()
    position = {f: len(ranked) - 1 - i for i, f in enumerate(ranked.index)}  # top = largest
    rows["row"] = rows["feature"].map(position).astype(float)
    rows["y"] = rows["row"]
    for _feature, idx in rows.groupby("feature").groups.items():
        rows.loc[idx, "y"] += beeswarm_offsets(rows.loc[idx, "shap"].to_numpy())
    value = rows["feature_value"].astype(float)
    grouped = value.groupby(rows["feature"])
    lo, hi = grouped.transform("min"), grouped.transform("max")
    rows["value_scaled"] = np.where(hi > lo, (value - lo) / (hi - lo).where(hi > lo, 1), 0.5)
    rows["patient_id"] = rows["patient_id"].astype(str)
    rows["feature"] = rows["feature"].astype(str)
    vdims = ["value_scaled", "patient_id", "feature", "feature_value"]
    title = figure_title(f"SHAP beeswarm — {model_name(feature_set, classifier)}, "
                         f"{protocol} protocol, test patients ({_space(rows)})",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(feature_set), width_px=700)
    ticks = [(float(pos), str(f)) for f, pos in position.items()]
    return hv.Points(plain(rows[["shap", "y", *vdims]]), ["shap", "y"], vdims).opts(
        color="value_scaled", cmap="coolwarm", clim=(0, 1), colorbar=True, size=6,
        alpha=0.8, tools=["hover"], yticks=ticks, title=title, width=700,
        height=200 + 28 * len(ranked), xlabel=f"SHAP value ({_space(rows)})",
        ylabel="", colorbar_opts={"title": "feature value (low → high)"},
        hover_tooltips=[("patient", "@{patient_id}"), ("feature", "@{feature}"),
                        ("value", "@{feature_value}"), ("SHAP", "@{shap}")])


def shap_importance(shap: pd.DataFrame, *, protocol: str = "honest", feature_set: str,
                    classifier: str, max_features: int = 20,
                    weights_label: str | None = None) -> hv.Bars:
    """Mean |SHAP| per feature over the test patients, largest on top."""
    rows = _model_rows(shap, protocol, feature_set, classifier, "SHAP importance")
    ranked = _ranked_features(rows, max_features)
    frame = pd.DataFrame({"feature": ranked.index.astype(str)[::-1],
                          "mean_abs_shap": ranked.to_numpy()[::-1]})
    title = figure_title(f"Mean |SHAP| — {model_name(feature_set, classifier)}, "
                         f"{protocol} protocol ({_space(rows)})",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(feature_set), width_px=640)
    return hv.Bars(plain(frame), "feature", "mean_abs_shap").opts(
        invert_axes=True, color=PALETTE[0], tools=["hover"], title=title, width=640,
        height=160 + 24 * len(frame), ylabel=f"mean |SHAP| ({_space(rows)})", xlabel="")
