"""Performance tab: ROC overlay, metrics with CIs, AUC heatmap, live threshold metrics,
confusion matrix and DeLong tests against the reference model."""

from __future__ import annotations

import pandas as pd
import param

from workbench.app.store import LIVE_METRICS
from workbench.app.views._common import (
    View,
    e,
    fmt,
    fmt_ci,
    html_table,
    note_html,
    safe_figure,
    safe_html,
)
from workbench.app.views._curves import CurveFigure, curves_title, drawn_curves
from workbench.app.views._heatmap import HeatmapFigure

__all__ = ["PerformanceView"]

_MODEL_DEPS = ("state.protocol", "state.evaluation", "state.feature_sets", "state.classifiers")
_RECORDED = {"accuracy": "Accuracy", "sensitivity": "Sensitivity",
             "specificity": "Specificity", "precision": "PPV", "npv": "NPV", "f1": "F1"}


class PerformanceView(View):
    """Discrimination of the drawn models, and what the threshold does to them."""

    @param.depends(*_MODEL_DEPS)
    def header(self) -> str:
        """Protocol line, leakage warning (paper), weights label (random deep weights)."""
        return self.banner("Performance")

    _roc: CurveFigure | None = None
    _heatmap: HeatmapFigure | None = None

    @param.depends("state")
    @safe_figure
    def roc(self):
        """ROC curves of exactly the drawn models (protocol × evaluation × feature sets ×
        classifiers); legend and hover: model, AUC with its DeLong 95 % CI (as recorded in
        ``models/metrics.parquet``), protocol and evaluation.

        One Bokeh figure per session, drawn from ``models/curves.parquet``; a change of
        choice replaces its curve data in place (:meth:`_sync_roc`)."""
        if self._roc is None:  # this session's figure
            self._roc = CurveFigure(
                title="ROC", x_label="1 − specificity", y_label="sensitivity",
                x_range=(-0.01, 1.01), y_range=(-0.01, 1.01),
                references={"chance": ([0, 1], [0, 1], "grey", "dashed")})
        self._sync_roc()
        return self._roc.pane

    @param.depends(*_MODEL_DEPS, watch=True)
    def _sync_roc(self) -> None:
        if self._roc is not None:
            curves, missing = drawn_curves(self.state, "roc")
            self._roc.show(curves, title=self._roc_title(missing))

    def _roc_title(self, missing: list[str]) -> str:
        s = self.state
        counts = ""
        if s.models:
            m = self.store.summary(s.protocol, s.evaluation, *s.models[0])
            counts = f"(n={m['n']}, pCR={m['n_pos']})" if m["n"] is not None else ""
        else:
            counts = "— no model drawn"
        return curves_title("ROC", s, counts, missing)

    def roc_legend(self) -> list[str]:
        """Legend labels of the ROC as currently shown (``roc()`` first)."""
        if self._roc is None:
            self.roc()
        return self._roc.legend_labels()

    @param.depends(*_MODEL_DEPS)
    @safe_html
    def metrics_table(self) -> str:
        """Recorded metrics (``models/metrics.parquet``) of the drawn models with CIs."""
        s = self.state
        recorded = self.store.recorded(s.protocol, s.evaluation)
        nan = (float("nan"),) * 3
        out = []
        for fs, clf in s.models:
            m = recorded.get((fs, clf))
            if m is None:
                continue
            row = {"Model": f"{fs} / {clf}", "Protocol": s.protocol,
                   "n (pCR)": f"{m['n']} ({m['n_pos']})", "Threshold": fmt(m["threshold"]),
                   "AUC (DeLong 95% CI)": fmt_ci(*m.get("auc", nan))}
            row.update({label: fmt_ci(*m.get(name, nan)) for name, label in _RECORDED.items()})
            row["Brier"] = fmt(m.get("brier", nan)[0], 3)
            out.append(row)
        if not out:
            return note_html("No model drawn: choose at least one feature set and classifier.")
        caption = (f"{s.protocol} protocol, {s.evaluation} split — as recorded by the run, at "
                   "its threshold; AUC: DeLong CI, others: percentile bootstrap CI")
        return html_table(pd.DataFrame(out), caption=caption)

    @param.depends("state")
    @safe_figure
    def heatmap(self):
        """AUC of every classifier × feature set of the run (not only the drawn ones), with
        its DeLong CI in the hover: one Bokeh figure per session whose cells follow the
        protocol and the evaluation (:meth:`_sync_heatmap`)."""
        if self._heatmap is None:  # this session's figure
            self._heatmap = HeatmapFigure(self.store.classifiers, self.store.feature_sets)
        self._sync_heatmap()
        return self._heatmap.pane

    @param.depends("state.protocol", "state.evaluation", watch=True)
    def _sync_heatmap(self) -> None:
        if self._heatmap is not None:
            s = self.state
            cells = {k: m["auc"] for k, m in self.store.recorded(s.protocol, s.evaluation)
                     .items() if "auc" in m}
            self._heatmap.show(cells, title=curves_title(
                "AUC of every model", s, "— drawn or not", []))

    @param.depends(*_MODEL_DEPS, "state.threshold", "state.reference")
    @safe_html
    def live_metrics(self) -> str:
        """Sensitivity, specificity, PPV, NPV (bootstrap CIs) of every drawn model at the
        threshold, and the DeLong test of its AUC against the reference model."""
        s = self.state
        if not s.models:
            return note_html("No model drawn.")
        ref = s.reference_model
        out = []
        for fs, clf in s.models:
            ev = self.store.model(s.protocol, s.evaluation, fs, clf)
            at = ev.at(s.threshold)
            auc = self.store.summary(s.protocol, s.evaluation, fs, clf)["auc"]
            row = {"Model": ev.key.name, "AUC (DeLong CI)": fmt_ci(*auc)}
            row.update({label: fmt_ci(at[k], at[f"{k}_lo"], at[f"{k}_hi"])
                        for k, label in list(LIVE_METRICS.items())[:4]})
            row["TP/FP/TN/FN"] = f"{at['tp']}/{at['fp']}/{at['tn']}/{at['fn']}"
            row["DeLong p vs reference"] = _delong_cell(self.store, s, (fs, clf), ref)
            out.append(row)
        caption = (f"{s.protocol} protocol, {s.evaluation} split — at threshold "
                   f"{s.threshold:.2f} (p ≥ threshold predicts pCR); reference: {s.reference}")
        return html_table(pd.DataFrame(out), caption=caption)

    @param.depends(*_MODEL_DEPS, "state.threshold", "state.reference")
    @safe_html
    def confusion(self) -> str:
        """Confusion matrix of the reference model at the threshold, with its headline
        sensitivity / specificity / PPV / NPV."""
        s = self.state
        ref = s.reference_model
        if ref is None:
            return note_html("No reference model: choose at least one model.")
        ev = self.store.model(s.protocol, s.evaluation, *ref)
        at = ev.at(s.threshold)
        cells = {k: at[k] for k in ("tp", "fp", "tn", "fn")}
        table = (
            '<table class="wb-table wb-cm"><tr><th></th><th>predicted pCR</th>'
            '<th>predicted non-pCR</th></tr>'
            f'<tr><th>actual pCR</th><td data-cell="tp">{cells["tp"]} TP</td>'
            f'<td data-cell="fn">{cells["fn"]} FN</td></tr>'
            f'<tr><th>actual non-pCR</th><td data-cell="fp">{cells["fp"]} FP</td>'
            f'<td data-cell="tn">{cells["tn"]} TN</td></tr></table>')
        numbers = " · ".join(
            f'{e(label)} <span class="wb-metric" data-metric="{e(k)}">{fmt(at[k])}</span>'
            for k, label in list(LIVE_METRICS.items())[:4])
        return (f'<div class="wb-protocol">Confusion matrix — {e(ev.key.name)}, '
                f"{e(s.protocol)} protocol, {e(s.evaluation)} split, threshold "
                f'<span data-metric="threshold">{s.threshold:.2f}</span> (n={ev.n}, '
                f"pCR={ev.n_pos})</div>{table}"
                f'<div class="wb-big">{numbers}</div>')


def _delong_cell(store, state, model: tuple[str, str], ref: tuple[str, str] | None) -> str:
    if ref is None:
        return "n/a"
    if tuple(model) == tuple(ref):
        return "reference"
    test = store.delong(state.protocol, state.evaluation, model, ref)
    if test is None:
        return "n/a (too few shared patients)"
    diff = test.auc1 - test.auc2
    p = "p < 0.001" if test.p_value < 0.001 else f"p = {test.p_value:.3f}"
    return f"ΔAUC {diff:+.2f}, {p}"
