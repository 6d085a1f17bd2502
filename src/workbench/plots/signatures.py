"""Feature selection and signatures: the selection funnel, LASSO coefficients, univariate
p-values and signature boxplots (pCR vs non-pCR).

Inputs are ``models/selection.parquet`` (the trace of every fitted selection pipeline:
stages ``variance`` → ``univariate`` → ``lasso`` → ``signature``, see
:func:`workbench.selection.selection_trace`) and ``models/signatures.parquet``. By default
the figures show the final fit (``repeat == fold == -1``: the training split, or for the
``paper`` protocol the whole cohort).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from workbench.plots._common import (
    PALETTE,
    PlotInputError,
    figure_title,
    plain,
    require_columns,
    select_rows,
    uses_deep,
)

__all__ = ["FUNNEL_STEPS", "funnel_counts", "lasso_coefficients", "selection_funnel",
           "signature_boxplots", "univariate_pvalues"]

#: Steps of the funnel, in order: what was extracted, then what each stage kept.
FUNNEL_STEPS = ("extracted", "variance", "univariate", "lasso")
_SELECTION_COLUMNS = ("protocol", "block", "stage", "feature", "kept", "repeat", "fold")


def _final_fit(selection: pd.DataFrame, protocol: str, repeat: int, fold: int,
               step: str) -> pd.DataFrame:
    require_columns(selection, _SELECTION_COLUMNS, what="selection table", step=step)
    return select_rows(selection, what="selection", step=step, protocol=protocol,
                       repeat=repeat, fold=fold)


def funnel_counts(selection: pd.DataFrame, *, protocol: str = "honest", repeat: int = -1,
                  fold: int = -1) -> pd.DataFrame:
    """Feature counts through selection per block.

    Returns
    -------
    pandas.DataFrame
        ``block, step, features`` with ``step`` in :data:`FUNNEL_STEPS` order:
        ``extracted`` (features entering the variance filter) and the number each stage kept.
    """
    rows = _final_fit(selection, protocol, repeat, fold, "selection funnel")
    out = []
    for block, group in rows.groupby("block", sort=False):
        kept = group.groupby("stage")["kept"].sum()
        entered = int((group["stage"] == "variance").sum())
        counts = {"extracted": entered, **{s: int(kept.get(s, 0)) for s in FUNNEL_STEPS[1:]}}
        out += [{"block": str(block), "step": s, "features": counts[s]} for s in FUNNEL_STEPS]
    return pd.DataFrame(out, columns=["block", "step", "features"])


def selection_funnel(selection: pd.DataFrame, *, protocol: str = "honest", repeat: int = -1,
                     fold: int = -1, weights_label: str | None = None) -> hv.Bars:
    """Grouped bars: features extracted → kept by variance → univariate → LASSO, per block."""
    counts = funnel_counts(selection, protocol=protocol, repeat=repeat, fold=fold)
    where = "final fit" if repeat == -1 else f"repeat {repeat}, fold {fold}"
    width = 160 + 140 * counts["block"].nunique()
    title = figure_title(f"Features through selection — {protocol} protocol, {where}",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(counts["block"].unique()), width_px=width)
    step = hv.Dimension("step", values=list(FUNNEL_STEPS))  # pipeline order, not A-Z
    return hv.Bars(plain(counts), ["block", step], "features").opts(
        title=title, tools=["hover"], logy=False, width=width,
        height=420, xrotation=30, color="step", cmap=list(PALETTE[:len(FUNNEL_STEPS)]),
        show_legend=False, ylabel="number of features")


def lasso_coefficients(selection: pd.DataFrame, *, protocol: str = "honest",
                       block: str = "radiomics", stage: str = "lasso", repeat: int = -1,
                       fold: int = -1, weights_label: str | None = None) -> hv.Bars:
    """Non-zero coefficients of the ``lasso`` (standardised scale) or ``signature`` stage,
    sorted by magnitude, as horizontal bars."""
    rows = _final_fit(selection, protocol, repeat, fold, "lasso coefficients")
    rows = select_rows(rows, what="selection", step="lasso coefficients", block=block,
                       stage=stage)
    rows = rows[rows["kept"].astype(bool) & rows["coefficient"].fillna(0).ne(0)]
    if rows.empty:
        raise PlotInputError(f"no non-zero {stage} coefficient for block {block!r} "
                             f"({protocol})", step="lasso coefficients")
    rows = rows.assign(magnitude=rows["coefficient"].abs()).sort_values("magnitude")
    rows = rows.assign(sign=np.where(rows["coefficient"] > 0, "favours pCR",
                                     "favours non-pCR"))
    scale = "standardised scale" if stage == "lasso" else "signature weight"
    title = figure_title(f"{stage} coefficients — block {block}, {protocol} protocol "
                         f"({len(rows)} features, {scale})",
                         paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(block), width_px=640)
    return hv.Bars(plain(rows[["feature", "coefficient", "sign"]]), "feature",
                   ["coefficient", "sign"]).opts(
        invert_axes=True, title=title, tools=["hover"], color="sign",
        cmap={"favours pCR": PALETTE[0], "favours non-pCR": PALETTE[1]},
        width=640, height=160 + 22 * len(rows), show_legend=True)


def lasso_cv_curve(lasso_cv: pd.DataFrame, *, protocol: str = "honest",
                   block: str = "radiomics", repeat: int = -1, fold: int = -1,
                   weights_label: str | None = None) -> hv.Overlay:
    """Mean CV score (± 1 s.e.) of the LASSO over log10 alpha, the chosen alpha marked.

    ``lasso_cv`` is the run's ``models/lasso_cv.parquet``; ``repeat=-1, fold=-1`` is the
    final fit (on the training 70 % for ``honest``, on everyone for ``paper``).
    """
    require_columns(lasso_cv, ["protocol", "block", "repeat", "fold", "alpha", "mean_score",
                               "sem_score", "n_nonzero", "chosen"], what="lasso_cv",
                    step="lasso CV curve")
    rows = select_rows(lasso_cv, what="lasso_cv", step="lasso CV curve", protocol=protocol,
                       block=block, repeat=repeat, fold=fold).sort_values("alpha")
    rows = rows.assign(log10_alpha=np.log10(rows["alpha"].to_numpy(dtype=float)),
                       lo=rows["mean_score"] - rows["sem_score"],
                       hi=rows["mean_score"] + rows["sem_score"])
    scoring = str(rows["scoring"].iloc[0]) if "scoring" in rows else "score"
    chosen = rows[rows["chosen"].astype(bool)]
    band = hv.Area(plain(rows[["log10_alpha", "lo", "hi"]]), "log10_alpha",
                   ["lo", "hi"]).opts(alpha=0.2, color=PALETTE[0], line_alpha=0)
    curve = hv.Curve(plain(rows[["log10_alpha", "mean_score", "n_nonzero", "alpha"]]),
                     "log10_alpha", ["mean_score", "n_nonzero", "alpha"]).opts(
        color=PALETTE[0], tools=["hover"], line_width=2)
    overlay = band * curve
    where = "final fit" if repeat == -1 else f"repeat {repeat}, fold {fold}"
    label = ""
    if not chosen.empty:
        a = float(chosen["alpha"].iloc[0])
        overlay = overlay * hv.VLine(np.log10(a)).opts(color=PALETTE[1], line_dash="dashed")
        label = f"; chosen α = {a:.3g}, {int(chosen['n_nonzero'].iloc[0])} features"
    title = figure_title(f"LASSO {scoring} by 10-fold CV — block {block}, {protocol} "
                         f"protocol, {where}{label}", paper=protocol == "paper",
                         weights_label=weights_label, deep=uses_deep(block), width_px=640)
    return overlay.opts(hv.opts.Overlay(title=title, xlabel="log10 α (weaker penalty →)",
                                        ylabel=f"mean CV {scoring} ± 1 s.e.", width=640,
                                        height=420, invert_xaxis=True))


def univariate_pvalues(selection: pd.DataFrame, *, protocol: str = "honest",
                       block: str = "radiomics", alpha: float = 0.05, repeat: int = -1,
                       fold: int = -1, max_features: int = 60,
                       weights_label: str | None = None) -> hv.Overlay:
    """−log10 p of the univariate filter, features sorted by p, with the α line."""
    rows = _final_fit(selection, protocol, repeat, fold, "univariate p-values")
    rows = select_rows(rows, what="selection", step="univariate p-values", block=block,
                       stage="univariate")
    rows = rows[rows["p"].notna()]
    if rows.empty:
        raise PlotInputError(f"no univariate p-value for block {block!r} ({protocol})",
                             step="univariate p-values")
    rows = rows.sort_values("p").head(max_features).copy()
    rows["neg_log10_p"] = -np.log10(np.clip(rows["p"].to_numpy(dtype=float), 1e-300, 1))
    rows["rank"] = np.arange(1, len(rows) + 1)
    rows["status"] = np.where(rows["kept"].astype(bool), "kept", "dropped")
    rows["test"] = rows["test"].astype(str) if "test" in rows else ""
    vdims = ["neg_log10_p", "feature", "p", "test", "status"]
    points = hv.Scatter(plain(rows[["rank", *vdims]]), "rank", vdims).opts(
        color="status", cmap={"kept": PALETTE[0], "dropped": "lightgrey"}, size=7,
        tools=["hover"], show_legend=True)
    line = hv.HLine(-np.log10(alpha)).opts(color=PALETTE[1], line_dash="dashed")
    title = figure_title(f"Univariate filter — block {block}, {protocol} protocol "
                         f"(α = {alpha:g} dashed; {int((rows['status'] == 'kept').sum())} "
                         "kept)", paper=protocol == "paper", weights_label=weights_label,
                         deep=uses_deep(block), width_px=640)
    return (points * line).opts(hv.opts.Overlay(
        title=title, xlabel="features sorted by p", ylabel="−log10 p", width=640,
        height=420))


def _signature_rows(signatures: pd.DataFrame, protocol: str, split: str) -> pd.DataFrame:
    require_columns(signatures, ["patient_id", "protocol", "block", "value", "repeat",
                                 "split"], what="signatures table", step="signature boxplot")
    rows = select_rows(signatures, what="signature", step="signature boxplot",
                       protocol=protocol, split=split)
    if split == "cv":
        return rows[rows["repeat"] == rows["repeat"].min()]
    return rows[rows["repeat"] == -1] if (rows["repeat"] == -1).any() else rows


def signature_boxplots(signatures: pd.DataFrame, labels: pd.Series | None = None, *,
                       protocol: str = "honest", split: str = "test",
                       weights_label: str | None = None) -> hv.Layout:
    """Signature values of pCR vs non-pCR patients per block, Mann-Whitney p in each title.

    Parameters
    ----------
    signatures
        ``models/signatures.parquet``.
    labels
        pCR (0/1) indexed by patient id (e.g. from the cohort); default the table's
        ``label`` column.
    protocol, split
        ``test`` (final model on the test patients), ``cv`` (out-of-fold, first repeat) or
        ``fit`` (the final fit's own patients: optimistic by construction).
    weights_label
        Shown on the panels of deep-feature blocks.
    """
    rows = _signature_rows(signatures, protocol, split).copy()
    if labels is not None:
        lab = pd.Series(labels)
        lab.index = lab.index.astype(str)
        rows["label"] = rows["patient_id"].astype(str).map(lab)
    elif "label" not in rows.columns:
        raise PlotInputError("signature boxplots need pCR labels: pass labels= (patient id "
                             "→ 0/1)", step="signature boxplot")
    rows = rows[rows["label"].notna()]
    rows["outcome"] = np.where(rows["label"].astype(int) == 1, "pCR", "non-pCR")
    rows["patient_id"] = rows["patient_id"].astype(str)
    panels = []
    for block, group in rows.groupby("block", sort=False):
        pos = group.loc[group["outcome"] == "pCR", "value"]
        neg = group.loc[group["outcome"] == "non-pCR", "value"]
        p = (mannwhitneyu(pos, neg, alternative="two-sided").pvalue
             if len(pos) and len(neg) else np.nan)
        p_text = "n/a" if not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")
        title = figure_title(f"sig__{block} — {protocol}, {split} split\n"
                             f"Mann-Whitney p = {p_text} (pCR {len(pos)}, non-pCR {len(neg)})",
                             paper=protocol == "paper", weights_label=weights_label,
                             deep=uses_deep(str(block)), width_px=520)
        data = plain(group[["outcome", "value", "patient_id"]])
        box = hv.BoxWhisker(data, "outcome", "value").opts(
            box_fill_color="outcome", cmap={"pCR": PALETTE[0], "non-pCR": PALETTE[1]},
            box_alpha=0.4)
        dots = hv.Scatter(data, "outcome", ["value", "patient_id"]).opts(
            jitter=0.3, size=5, color="black", alpha=0.6, tools=["hover"])
        panels.append((box * dots).opts(hv.opts.Overlay(
            title=title, width=520, height=420, ylabel=f"sig__{block}", xlabel="")))
    if not panels:
        raise PlotInputError(f"no labelled signature values for {protocol}/{split}",
                             step="signature boxplot")
    return hv.Layout(panels).cols(2)
