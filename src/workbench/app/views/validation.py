"""Validation tab: one external validation of the run (``workbench validate``, stored under
``validation/<name>/``) at a time, chosen by ``state.validation``.

It shows what the HTML validation report shows (:mod:`workbench.report.validation`), with the
same formatting (:mod:`workbench.evaluation.validation_display`): the protocol of the numbers,
the warnings, the headline card, the ROC, reliability diagram, decision curves and case-mix
dot plot, the threshold, recalibration, case-mix, membership and coverage tables. The tab
exists only when the run has a validation (:func:`workbench.app.layout.tabs`), and its files
are read the first time the tab is shown (:meth:`ValidationView.content` is lazy), then kept
by the store.
"""

from __future__ import annotations

import panel as pn
import param

from workbench.app.views._common import (
    CSS,
    HTML,
    View,
    e,
    html_table,
    note_html,
    safe_figure,
    safe_html,
)
from workbench.evaluation import validation_display as D
from workbench.plots.validation import (
    case_mix_smd,
    validation_decision_curves,
    validation_histogram,
    validation_reliability,
    validation_roc,
)
from workbench.rundata import ValidationData

__all__ = ["ValidationView"]

_DEPS = ("state.validation",)
_CARD = ("AUC", "CITL", "Calibration slope", "Brier", "O/E")


class ValidationView(View):
    """The chosen external validation: protocol, warnings, headline, figures and tables."""

    @property
    def data(self) -> ValidationData | None:
        """The chosen validation (``None`` when the run has none)."""
        name = self.state.validation
        return None if name is None else self.store.validation(name)

    def _figure(self, name: str, build):
        return self.store.figure(f"validation_{name}", build, self.state.validation)

    # ------------------------------------------------------------------ the tab
    @param.depends(*_DEPS)
    def content(self) -> pn.Column:
        """The whole tab for ``state.validation``: built when the tab is first shown
        (``pn.param.ParamMethod(..., lazy=True)`` in the layout) and when the choice
        changes."""
        def html(text: str) -> HTML:
            return HTML(text, stylesheets=[CSS], sizing_mode="stretch_width")

        return pn.Column(
            html(self.header()), html(self.alerts()), html(self.headline()),
            pn.Row(pn.panel(self.roc()), pn.panel(self.reliability())),
            pn.Row(pn.panel(self.decision_curves()), pn.panel(self.case_mix_plot())),
            html(self.thresholds()), html(self.recalibration()), html(self.transport()),
            html(self.coverage()), sizing_mode="stretch_width")

    # ------------------------------------------------------------------ text
    @safe_html
    def header(self) -> str:
        """The validation's name, what every number is, the model and the cohorts."""
        val = self.data
        if val is None:
            return note_html("This run has no external validation (`workbench validate`).")
        rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                       for k, v in D.provenance_items(val.summary))
        shown, total = D.problems(val.summary, limit=20)
        problems = (f"<details><summary>Problems recorded while scoring the cohort ({total})"
                    "</summary><ul>" + "".join(f"<li>{e(p)}</li>" for p in shown)
                    + "</ul></details>") if total else ""
        return (f'<div class="wb-protocol">External validation — {e(val.name)}</div>'
                f'<p class="wb-note">{e(D.protocol_statement(val.summary))}</p>'
                f'<table class="wb-table">{rows}</table>{problems}')

    @safe_html
    def alerts(self) -> str:
        """Predict-only, the model's warning and the validation's warnings, prominently."""
        val = self.data
        if val is None:
            return ""
        return "".join(f'<div class="wb-warning">⚠ {e(text)}</div>'
                       for text in D.alerts(val.summary))

    @safe_html
    def headline(self) -> str:
        """The headline card (AUC, CITL, slope, Brier, O/E), the headline table and the
        generator's truth; a note for a predict-only validation."""
        val = self.data
        if val is None:
            return ""
        if not val.labelled:
            return note_html("predict-only: no labels — no performance estimate exists for "
                             "this cohort.")
        table = D.headline_rows(val.summary, val.table("metrics"))
        by = dict(zip(table["Measure"], table["Estimate (95% CI)"], strict=True))
        picks = {"AUC": by.get("AUC (DeLong CI)"),
                 "CITL": by.get("Calibration-in-the-large (CITL)"),
                 "Calibration slope": by.get("Calibration slope"),
                 "Brier": by.get("Brier score"), "O/E": by.get("Observed / expected (O/E)")}
        card = " · ".join(f"{e(k)} <strong>{e(picks[k])}</strong>" for k in _CARD
                          if picks.get(k))
        parts = [f'<div class="wb-big" data-headline="1">{card}</div>',
                 html_table(table, caption="Original model as saved, on every labelled "
                                           "external patient (95% CIs)")]
        if (truth := D.truth_line(val.summary)) is not None:
            parts.append(f'<div class="wb-weights">{e(truth)}</div>')
        return "".join(parts)

    @safe_html
    def thresholds(self) -> str:
        """Threshold metrics of every variant at the model's stored threshold."""
        val = self.data
        if val is None or not val.has("thresholds"):
            return "" if val is None else note_html("No threshold metrics (no labels).")
        model = val.summary.get("model") or {}
        return html_table(D.threshold_rows(val.load("thresholds")), caption=(
            f"At the stored threshold {D.fmt_num(model.get('threshold'))} "
            f"({model.get('threshold_rule') or 'rule not recorded'}); 95% bootstrap CIs"))

    @safe_html
    def recalibration(self) -> str:
        """The variants before and after recalibration, with the optimism warning."""
        val = self.data
        if val is None or not val.has("metrics"):
            return ""
        return ('<div class="wb-warning">⚠ The recalibrated variants are fitted on the '
                "external cohort itself and evaluated on the same patients: optimistic for "
                "this cohort.</div>"
                + html_table(D.recalibration_rows(val.summary, val.load("metrics")),
                             caption="Recalibration: before and after"))

    @safe_html
    def transport(self) -> str:
        """Case mix sorted by |SMD| (imbalance flagged), the membership model and the
        features that separate the cohorts."""
        val = self.data
        if val is None:
            return ""
        parts = ['<div class="wb-protocol">Transportability</div>']
        if val.has("case_mix"):
            parts.append(html_table(D.case_mix_rows(val.load("case_mix")), caption=(
                f"Case mix, development vs external, sorted by |SMD| (|SMD| ≥ "
                f"{D.SMD_FLAG:g} flagged)")))
        else:
            parts.append(note_html("No case mix: " + (
                D.development_missing(val.summary) if not val.summary.get("development")
                else str(val.missing("case_mix")))))
        parts.append(f'<p class="wb-note">{e(D.membership_line(val.summary))}</p>')
        if val.has("membership"):
            parts.append(html_table(D.membership_rows(val.load("membership")),
                                    caption="Features that separate the cohorts most"))
        return "".join(parts)

    @safe_html
    def coverage(self) -> str:
        """Coverage of the model's input features, imputed features flagged."""
        val = self.data
        if val is None:
            return ""
        if not val.has("coverage"):
            return note_html(f"Feature coverage: {val.missing('coverage')}.")
        return html_table(D.coverage_rows(val.load("coverage")), caption=(
            "Feature coverage over the scored patients (imputed: the training value)"))

    # ------------------------------------------------------------------ figures
    @safe_figure
    def roc(self):
        """ROC of the external cohort; the predicted-probability histogram when
        predict-only."""
        val = self.data
        if val is None:
            return HTML("")
        if not val.labelled:
            return self._figure("histogram",
                                lambda: validation_histogram(val.load("predictions")))
        return self._figure("roc", lambda: validation_roc(val.load("predictions")))

    @safe_figure
    def reliability(self):
        """Reliability diagram, original vs recalibrated, Wilson CIs."""
        val = self.data
        if val is None or not val.has("reliability"):
            return HTML("")
        return self._figure("reliability",
                            lambda: validation_reliability(val.load("reliability")))

    @safe_figure
    def decision_curves(self):
        """Decision curves of the variants, treat all / none, the stored threshold."""
        val = self.data
        if val is None or not val.has("decision_curve"):
            return HTML("")
        threshold = (val.summary.get("model") or {}).get("threshold")
        return self._figure("decision_curve", lambda: validation_decision_curves(
            val.load("decision_curve"), threshold=threshold))

    @safe_figure
    def case_mix_plot(self):
        """Standardised differences of the case mix, ±0.1 marked."""
        val = self.data
        if val is None or not val.has("case_mix"):
            return HTML("")
        return self._figure("case_mix", lambda: case_mix_smd(val.load("case_mix")))
