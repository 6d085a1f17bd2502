"""Where things go on the page: widgets in the sidebar, one tab per question.

Nothing here computes: widgets are made from :class:`~workbench.app.state.DashboardState`
parameters, panes are bound to view methods, and tabs render only when shown
(``dynamic=True``). :func:`dashboard` is the one entry point, for ``panel serve`` (through
``apps/dashboard.py``) and for notebooks alike.
"""

from __future__ import annotations

from pathlib import Path

import panel as pn

from workbench.app import widgets as W
from workbench.app.state import DashboardState
from workbench.app.store import DataStore, load_store
from workbench.app.views import (
    CSS,
    AuditView,
    CohortView,
    ExplainView,
    PatientsView,
    PerformanceView,
    SignaturesView,
    UtilityView,
    ValidationView,
)
from workbench.app.views._common import HTML, e
from workbench.app.views.rigour import RIGOUR_PANELS, RigourView

__all__ = ["TAB_NAMES", "VALIDATION_TAB", "dashboard", "error_page", "sidebar", "tabs"]

TAB_NAMES = ("Performance", "Clinical utility", "Signatures", "Explain", "Patients", "Cohort",
             "Audit")
#: The last tab, present only when the run holds an external validation.
VALIDATION_TAB = "Validation"


def _html(obj, **kw) -> HTML:
    return HTML(obj, stylesheets=[CSS], sizing_mode="stretch_width", **kw)


def _fig(method) -> pn.param.ParamMethod:
    return pn.param.ParamMethod(method, lazy=True)


def sidebar(state: DashboardState) -> list:
    """The widgets, each generated from one state parameter (no file paths anywhere)."""
    run = state.store.run
    name = (run.manifest.get("config") or {}).get("name") or run.run_dir.name
    threshold = W.FloatSlider.from_param(state.param.threshold, name="Decision threshold",
                                         step=0.01, format="0.00")
    return [
        _html(f'<div class="wb-protocol">Run: {e(name)}</div>'),
        W.RadioButtonGroup.from_param(state.param.protocol, name="Protocol",
                                      color="primary"),
        W.Select.from_param(state.param.evaluation, name="Evaluated predictions"),
        _html(f'<div class="wb-note wb-default-note">Drawn first: {e(state.default_note)}'
              "</div>"),
        _model_buttons(state),
        _html('<div class="wb-protocol">Feature sets</div>'),
        W.CheckBoxGroup.from_param(state.param.feature_sets, name="Feature sets",
                                   inline=False, css_classes=["wb-feature-sets"]),
        _html('<div class="wb-protocol">Classifiers</div>'),
        W.CheckBoxGroup.from_param(state.param.classifiers, name="Classifiers", inline=False,
                                   css_classes=["wb-classifiers"]),
        threshold,
        W.Select.from_param(state.param.reference, name="Reference model (DeLong)"),
        W.Select.from_param(state.param.patient, name="Patient"),
    ]


def _model_buttons(state: DashboardState) -> pn.Row:
    """Default models / every feature set / every classifier, one click each."""
    buttons = []
    for label, css, action in (
            ("Default", "wb-default-models", state.show_default_models),
            ("All sets", "wb-all-feature-sets", lambda: state.show_all("feature_sets")),
            ("All classifiers", "wb-all-classifiers", lambda: state.show_all("classifiers"))):
        button = W.Button(label=label, color="light", margin=(2, 3), css_classes=[css])
        button.on_click(lambda _event, act=action: act())
        buttons.append(button)
    return pn.Row(*buttons, sizing_mode="stretch_width")


def _patients_table(view: PatientsView, state: DashboardState) -> pn.widgets.Tabulator:
    table = W.Tabulator(
        view.probabilities, selectable=1, disabled=True, show_index=False, pagination="local",
        page_size=15, formatters={"patient_id": {"type": "plaintext"}}, height=460,
        sizing_mode="stretch_width")

    def select(event) -> None:
        if event.new and len(table.value) > event.new[0]:
            state.patient = str(table.value["patient_id"].iloc[event.new[0]])
    table.param.watch(select, "selection")
    return table


def _validation_tab(state: DashboardState) -> pn.Column:
    """The validation chooser and the chosen validation, built when first shown (lazy: a
    run's first load reads none of its validation files)."""
    view = ValidationView(state)
    return pn.Column(
        W.Select.from_param(state.param.validation, name="External validation", width=300),
        pn.param.ParamMethod(view.content, lazy=True), sizing_mode="stretch_width")


def _rigour_panes(state: DashboardState) -> list:
    """The Audit tab's radiomics-rigour panels (negative controls, robustness,
    harmonisation), only those whose files the run holds: text first, then its figures."""
    view = RigourView(state)
    panes = []
    for panel in view.present:
        text, *figures = RIGOUR_PANELS[panel]
        panes.append(_html(getattr(view, text)(), css_classes=[f"wb-rigour-{panel}"]))
        panes += [_fig(getattr(view, name)) for name in figures]
    return panes


def tabs(state: DashboardState) -> pn.Tabs:
    """The seven tabs of :data:`TAB_NAMES`, each a column of panes bound to one view, then
    :data:`VALIDATION_TAB` when the run holds an external validation."""
    perf, util, sig = PerformanceView(state), UtilityView(state), SignaturesView(state)
    expl, pats = ExplainView(state), PatientsView(state)
    cohort, audit = CohortView(state), AuditView(state)
    return W.Tabs(
        ("Performance", pn.Column(
            _html(perf.header),
            pn.Row(_fig(perf.roc), pn.Column(_html(perf.confusion, name="confusion",
                                                   css_classes=["wb-confusion"]),
                                             width=520)),
            _html(perf.live_metrics, css_classes=["wb-live"]), _html(perf.metrics_table),
            _fig(perf.heatmap))),
        ("Clinical utility", pn.Column(
            _html(util.header), pn.Row(_fig(util.decision_curves), _fig(util.calibration)),
            _html(util.brier_table))),
        ("Signatures", pn.Column(
            _html(sig.header),
            W.Select.from_param(state.param.block, name="Signature block", width=300),
            pn.Row(_fig(sig.boxplots), _fig(sig.univariate)),
            pn.Row(_fig(sig.lasso), _fig(sig.funnel)))),
        ("Explain", pn.Column(
            _html(expl.header), pn.Row(_fig(expl.beeswarm), _fig(expl.importance)),
            _html(expl.patient_contributions))),
        ("Patients", pn.Column(
            _html(pats.header), _patients_table(pats, state), _html(pats.caption),
            _fig(pats.images), _fig(pats.crop))),
        ("Cohort", pn.Column(_html(cohort.table1()), _html(cohort.problems()))),
        ("Audit", pn.Column(
            _html(audit.header), _html(audit.provenance()), _html(audit.audit_table()),
            _fig(audit.audit_histogram), _html(audit.known_truth()),
            *_rigour_panes(state), _html(audit.versions()))),
        *([(VALIDATION_TAB, _validation_tab(state))] if state.store.validations else []),
        dynamic=True, sizing_mode="stretch_width")


def error_page(message: str, *, template: bool = True):
    """A page that only says why the dashboard is not shown (escaped)."""
    body = _html(f'<div class="wb-warning"><pre>{e(message)}</pre></div>')
    if not template:
        return pn.Column(body)
    return pn.template.BootstrapTemplate(title="pCR fusion workbench — dashboard",
                                         main=[body])


def dashboard(run_dir: str | Path | DataStore, *, template: bool = False,
              state: DashboardState | None = None):
    """The dashboard of one run directory.

    Parameters
    ----------
    run_dir
        The run directory (or an already built :class:`~workbench.app.store.DataStore`);
        fixed for the dashboard's lifetime — no widget accepts a path.
    template
        ``True``: a ``BootstrapTemplate`` (what ``panel serve apps/dashboard.py`` shows);
        ``False``: a plain ``pn.Row`` that displays inline in a notebook.
    state
        A state to drive the dashboard with (tests); default a fresh one.

    Returns
    -------
    panel.viewable.Viewable
        Call ``.servable()`` / ``.show()`` on it, or display it in a notebook.

    Examples
    --------
    >>> from workbench.app import dashboard          # doctest: +SKIP
    >>> dashboard("data/runs/demo")                  # in a notebook cell  # doctest: +SKIP
    """
    pn.extension("tabulator", notifications=False)
    store = run_dir if isinstance(run_dir, DataStore) else load_store(run_dir)
    state = state or DashboardState(store)
    side, main = sidebar(state), tabs(state)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.onload(lambda: W.sync_styles(main))
    if not template:
        return pn.Row(pn.Column(*side, width=320, sizing_mode="fixed"), main)
    return pn.template.BootstrapTemplate(
        title="pCR fusion workbench — dashboard", sidebar=side, main=[main],
        sidebar_width=330)
