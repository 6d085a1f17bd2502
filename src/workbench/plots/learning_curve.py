"""Learning-curve figure: honest AUC against cohort size, one line per strategy x feature set,
with the clinical reference, the oracle and the learnable bound drawn beside them.

Takes the tidy learning-curve table (``learning_curve.csv``, written by
:func:`workbench.pipeline.learning_curve.learning_curve`) and returns a HoloViews overlay;
nothing here reads a file or fits a model.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd

from workbench.plots._common import (
    PALETTE,
    PlotInputError,
    figure_title,
    plain,
    require_columns,
    uses_deep,
)

__all__ = ["LEARNING_CURVE_STYLES", "learning_curve_plot"]

#: Line style per row kind: (colour or None for the palette, dash, width). The references
#: are grey or black so the models' colours stay readable.
LEARNING_CURVE_STYLES: dict[str, tuple[str | None, str, float]] = {
    "model": (None, "solid", 2.0),
    "clinical_reference": ("#000000", "solid", 3.0),
    "learnable_bound": ("#555555", "dashed", 2.0),
    "oracle": ("#999999", "dotted", 2.5),
}
_COLUMNS = {"cv": ("auc_cv_mean", "auc_cv_min", "auc_cv_max"),
            "test": ("auc_test", "auc_test_lo", "auc_test_hi")}
_WIDTH, _HEIGHT = 980, 480
#: Sideways offset between neighbouring lines, as a fraction of the size range.
DODGE = 0.006


def _label(kind: str, feature_set: str, classifier: str) -> str:
    if kind == "model":
        return f"{feature_set} / {classifier}"
    if kind == "clinical_reference":
        return f"clinical reference ({feature_set} / {classifier})"
    return {"oracle": "oracle (true probability)",
            "learnable_bound": "learnable bound (true latents + subtype)"}.get(kind, kind)


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def learning_curve_plot(table: pd.DataFrame, *, split: str = "cv",
                        weights_label: str | None = None) -> hv.Overlay:
    """AUC against cohort size ``n``: one line per (kind, feature set, classifier).

    Parameters
    ----------
    table
        The learning-curve table: ``n, kind`` (model | clinical_reference | oracle |
        learnable_bound), ``feature_set, classifier`` and the AUC columns of ``split``.
    split
        ``cv``: the mean over the CV repeats on the development split, error bars from the
        lowest to the highest repeat; ``test``: the single test split's AUC, error bars its
        DeLong 95 % CI.
    weights_label
        Shown in the title when a feature set uses deep features.

    Raises
    ------
    PlotInputError
        An unknown ``split``, a missing column, or no finite AUC to draw.
    """
    if split not in _COLUMNS:
        raise PlotInputError(f"split must be one of {sorted(_COLUMNS)}, got {split!r}",
                             step="learning curve plot")
    value, lo, hi = _COLUMNS[split]
    require_columns(table, ["n", "kind", "feature_set", "classifier", value, lo, hi],
                    what="learning-curve table", step="learning curve plot")
    rows = plain(table)
    rows = rows[np.isfinite(pd.to_numeric(rows[value], errors="coerce"))].copy()
    if rows.empty:
        raise PlotInputError(f"the learning-curve table has no finite {value} to draw",
                             step="learning curve plot")
    rows["feature_set"], rows["classifier"] = (rows["feature_set"].map(_text),
                                               rows["classifier"].map(_text))
    lines = [(kind, fs, clf) for kind in LEARNING_CURVE_STYLES
             for fs, clf in dict.fromkeys(zip(rows.loc[rows["kind"] == kind, "feature_set"],
                                              rows.loc[rows["kind"] == kind, "classifier"],
                                              strict=True))]
    sizes = sorted(rows["n"].astype(int).unique())
    # lines at the same sizes are spread a little sideways so their bars stay readable
    step = DODGE * (sizes[-1] - sizes[0] if len(sizes) > 1 else sizes[0])
    elements, colour = [], 0
    for i, (kind, fs, clf) in enumerate(lines):
        line = rows[(rows["kind"] == kind) & (rows["feature_set"] == fs)
                    & (rows["classifier"] == clf)].sort_values("n")
        fixed, dash, width = LEARNING_CURVE_STYLES[kind]
        if fixed is None:
            color, colour = PALETTE[colour % len(PALETTE)], colour + 1
        else:
            color = fixed
        n = line["n"].to_numpy(dtype=float) + (i - (len(lines) - 1) / 2) * step
        v = line[value].to_numpy(dtype=float)
        elements.append(hv.Curve((n, v), "n", "AUC", label=_label(kind, fs, clf)).opts(
            color=color, line_dash=dash, line_width=width))
        elements.append(hv.Scatter((n, v), "n", "AUC").opts(color=color, size=6))
        low = line[lo].to_numpy(dtype=float)
        high = line[hi].to_numpy(dtype=float)
        bars = np.isfinite(low) & np.isfinite(high)
        if bars.any():
            elements.append(hv.ErrorBars(
                (n[bars], v[bars], (v - low)[bars], (high - v)[bars]), kdims=["n"],
                vdims=["AUC", "below", "above"]).opts(color=color, line_width=1.2))
    elements.append(hv.HLine(0.5).opts(color="#bbbbbb", line_dash="dotted", line_width=1))
    what = ("honest repeated-CV AUC (development split) against cohort size; bars: lowest "
            "to highest repeat" if split == "cv" else
            "honest test-split AUC against cohort size; bars: DeLong 95% CI")
    deep = uses_deep(rows["feature_set"].tolist())
    title = figure_title(f"Learning curve — {what}", deep=deep, weights_label=weights_label,
                         width_px=_WIDTH - 250)
    return hv.Overlay(elements).opts(hv.opts.Overlay(
        title=title, xlabel="cohort size n (patients)", ylabel="AUC", width=_WIDTH,
        height=_HEIGHT, legend_position="right", show_grid=True, padding=0.08,
        xticks=[(s, str(s)) for s in sizes]))
