"""Null-audit figure: test AUCs on permuted labels, honest vs paper, chance marked."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd

from workbench.plots._common import (
    PALETTE,
    figure_title,
    require_columns,
    select_rows,
    uses_deep,
)

__all__ = ["null_audit_histogram"]


def null_audit_histogram(audit: pd.DataFrame, *, split: str = "test",
                         bins: int = 20, weights_label: str | None = None) -> hv.Overlay:
    """Histograms of null AUCs per protocol on shared bins, with AUC 0.5 marked.

    Parameters
    ----------
    audit
        ``audit/null_audit.parquet`` (permutation, protocol, feature_set, classifier, split,
        auc, n).
    split
        ``test`` or ``cv``.
    bins
        Number of bins over [0, 1].
    weights_label
        Shown when the audited feature set uses deep features.
    """
    require_columns(audit, ["protocol", "split", "auc"], what="null-audit table",
                    step="null audit plot")
    rows = select_rows(audit, what="null-audit", step="null audit plot", split=split)
    edges = np.linspace(0, 1, int(bins) + 1)
    colors = {"honest": PALETTE[0], "paper": PALETTE[1]}
    elements = []
    # one histogram per protocol, or per protocol x model when several models were audited
    by_model = "classifier" in rows.columns and rows["classifier"].nunique() > 1
    keys = ["protocol", "classifier"] if by_model else ["protocol"]
    for i, (key, group) in enumerate(rows.groupby(keys, sort=True)):
        protocol = key[0] if isinstance(key, tuple) else key
        name = f"{protocol} / {key[1]}" if by_model else str(protocol)
        counts, _ = np.histogram(group["auc"].to_numpy(dtype=float), bins=edges)
        label = (f"{name}: mean AUC {group['auc'].mean():.2f} "
                 f"({len(group)} permutations)")
        color = (PALETTE[i % len(PALETTE)] if by_model
                 else colors.get(str(protocol), PALETTE[(i + 2) % len(PALETTE)]))
        elements.append(hv.Histogram((edges, counts), kdims=["auc"], vdims=["runs"],
                                     label=label).opts(color=color, alpha=0.5,
                                                       line_color=None))
    elements.append(hv.VLine(0.5).opts(color="black", line_dash="dashed", line_width=1.5))
    what = ", ".join(f"{c} {sorted(map(str, rows[c].unique()))}" for c in
                     ("feature_set", "classifier") if c in rows.columns)
    deep = "feature_set" in rows.columns and uses_deep(rows["feature_set"].astype(str))
    title = figure_title(f"Null audit — {split} AUC on permuted labels ({what}); "
                         "chance = 0.5 (dashed)",
                         paper=bool((rows["protocol"] == "paper").any()),
                         weights_label=weights_label, deep=deep, width_px=640)
    return hv.Overlay(elements).opts(hv.opts.Overlay(
        title=title, xlabel="AUC with permuted labels", ylabel="permutations",
        xlim=(0, 1), width=640, height=420, legend_position="top_left"))
