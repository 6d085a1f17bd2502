"""The Validation tab: present only when the run holds an external validation, read only when
opened, and drawn from the folders of :mod:`fixtures.validation_folder` placed in a copy of
the demo-size run (and the small run)."""

from __future__ import annotations

import html
import shutil

import holoviews as hv
import panel as pn
import pytest
from bokeh.document import Document

from fixtures.validation_folder import INJECTION, write_validation_folder
from workbench.app import views as V
from workbench.app.layout import TAB_NAMES, VALIDATION_TAB, dashboard, tabs
from workbench.app.state import DashboardState
from workbench.app.store import DataStore
from workbench.evaluation import validation_display as D
from workbench.rundata import RunDataError, ValidationData

TEXT_METHODS = ("header", "alerts", "headline", "thresholds", "recalibration", "transport",
                "coverage")
FIGURE_METHODS = ("roc", "reliability", "decision_curves", "case_mix_plot")


@pytest.fixture(scope="module")
def validated_run(demo_run_dir, tmp_path_factory):
    """A copy of the demo-size run with two validations: ``site-a`` (labelled, development,
    truth) and ``site-b`` (predict-only, no development)."""
    run = tmp_path_factory.mktemp("validated") / "run"
    shutil.copytree(demo_run_dir, run)
    write_validation_folder(run / "validation" / "site-a", name="site-a")
    write_validation_folder(run / "validation" / "site-b", name="site-b", labelled=False,
                            with_development=False)
    return run


def _failed(text: str) -> bool:
    return "could not show this" in text or "could not draw this" in text


def test_no_validation_no_tab(store):
    state = DashboardState(store)
    assert store.validations == [] and state.validation is None
    assert tuple(tabs(state)._names) == TAB_NAMES


def test_tab_present_and_lazy(validated_run, monkeypatch):
    reads: list[str] = []
    original = ValidationData.load

    def counting(self, key):
        reads.append(key)
        return original(self, key)

    monkeypatch.setattr(ValidationData, "load", counting)
    store = DataStore(validated_run)
    state = DashboardState(store)
    assert store.validations == ["site-a", "site-b"] and state.validation == "site-a"
    page = dashboard(store, state=state)
    page.get_root(Document())  # the sidebar and the first tab
    main = page.objects[1]
    assert tuple(main._names) == (*TAB_NAMES, VALIDATION_TAB)
    assert reads == []  # first load: no validation file read
    main.active = len(main) - 1  # open the tab
    assert "summary" in reads and "predictions" in reads
    with pytest.raises(RunDataError, match="no external validation 'nope'"):
        store.validation("nope")


def test_views_show_the_labelled_validation(validated_run):
    state = DashboardState(DataStore(validated_run))
    view = V.ValidationView(state)
    summary = view.data.summary
    out = {m: getattr(view, m)() for m in TEXT_METHODS}
    for name, text in out.items():
        assert not _failed(text), (name, text[:300])
    head = summary["headline"]
    assert html.escape(D.ci_text(head["auc"], head["auc_low"], head["auc_high"])) in \
        out["headline"]
    assert 'data-headline="1"' in out["headline"] and "Known truth" in out["headline"]
    assert html.escape(summary["model"]["fitted_on"]) in out["header"]
    assert out["alerts"].count("wb-warning") == len(summary["warnings"])
    assert INJECTION not in "".join(out.values())
    assert html.escape(INJECTION) in out["alerts"]
    assert "fitted on the external cohort itself" in out["recalibration"]
    assert "CITL cross-fitted" in out["recalibration"]
    assert html.escape("⚠ |SMD| ≥ 0.1") in out["transport"]
    assert "⚠ imputed for" in out["coverage"]
    for name in FIGURE_METHODS:
        fig = getattr(view, name)()
        assert isinstance(fig, hv.core.Dimensioned), name
        hv.render(fig, backend="bokeh")
    assert view.roc() is view.roc()  # built once per validation, kept by the store
    content = view.content()
    assert isinstance(content, pn.Column) and len(content) == 9


def test_views_follow_the_chosen_validation(validated_run):
    state = DashboardState(DataStore(validated_run))
    view = V.ValidationView(state)
    state.validation = "site-b"  # predict-only, no development cohort
    out = {m: getattr(view, m)() for m in TEXT_METHODS}
    for name, text in out.items():
        assert not _failed(text), (name, text[:300])
    assert "External validation — site-b" in out["header"]
    assert "Predict-only: no labels" in out["alerts"]
    assert "predict-only: no labels" in out["headline"]
    assert "No case mix" in out["transport"] and "Membership model: skipped" in out["transport"]
    assert isinstance(view.roc(), hv.core.Dimensioned)  # the predictions' histogram
    for name in FIGURE_METHODS[1:]:
        assert not isinstance(getattr(view, name)(), hv.core.Dimensioned), name


def test_small_run_with_a_validation(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    write_validation_folder(run / "validation" / "only", name="only", with_truth=False)
    state = DashboardState(DataStore(run))
    assert tuple(tabs(state)._names)[-1] == VALIDATION_TAB
    view = V.ValidationView(state)
    assert "Known truth" not in view.headline()
    assert not any(_failed(getattr(view, m)()) for m in TEXT_METHODS)
