"""Dashboard logic at the param level: set state parameters, read the views (no browser)."""

from __future__ import annotations

import collections
import html
import re
import shutil
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import pytest

from workbench import rundir
from workbench.app import views as V
from workbench.app.state import DashboardState
from workbench.app.store import DataStore
from workbench.app.views._curves import CURVES
from workbench.evaluation.display import default_selection
from workbench.evaluation.metrics import threshold_metrics
from workbench.names import LEAKAGE_WARNING
from workbench.plots import PAPER_TITLE_WARNING, roc_label

VIEW_METHODS = {
    V.PerformanceView: ("header", "roc", "metrics_table", "heatmap", "live_metrics",
                        "confusion"),
    V.UtilityView: ("header", "decision_curves", "calibration", "brier_table"),
    V.SignaturesView: ("header", "boxplots", "lasso", "univariate", "funnel"),
    V.ExplainView: ("header", "beeswarm", "importance", "patient_contributions"),
    V.PatientsView: ("header", "probabilities", "caption", "images", "crop"),
    V.CohortView: ("table1", "problems"),
    V.AuditView: ("header", "audit_table", "audit_histogram", "provenance", "versions"),
}


def all_outputs(state: DashboardState) -> dict[str, object]:
    """Every view's output for the current state."""
    return {f"{cls.__name__}.{name}": getattr(view, name)()
            for cls, names in VIEW_METHODS.items() for view in [cls(state)] for name in names}


def texts(obj) -> list[str]:
    """The HTML/text an output puts on the page (strings, HTML panes, nested layouts)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, pn.pane.HTML):
        return [str(obj.object)]
    if isinstance(obj, pn.layout.ListLike):
        return [t for o in obj.objects for t in texts(o)]
    return []


def sensitivity(confusion_html: str) -> float:
    value = re.search(r'data-metric="sensitivity">([^<]+)<', confusion_html).group(1)
    return float(value)


def test_state_has_no_path_parameter_and_sane_defaults(state, store):
    path_like = (param.Path, param.String, param.Filename, param.Foldername)
    assert not [n for n, p in state.param.objects().items()
                if n != "name" and isinstance(p, path_like)]
    assert state.protocol == "honest" and state.evaluation == "test"
    sets, clfs, how = default_selection(store.run.metrics)
    assert state.feature_sets == sets and state.classifiers == clfs and len(clfs) == 1
    assert "honest cross-validated AUC" in state.default_note == how
    assert state.reference == f"clinical / {clfs[0]}"  # the clinical reference
    assert state.patient in store.patients("honest", "test")
    other = next(c for c in store.classifiers if c != clfs[0])
    state.classifiers = [other]
    assert state.reference == f"clinical / {other}"  # follows the drawn models
    state.show_all("classifiers")
    assert state.classifiers == store.classifiers
    state.show_all("feature_sets")
    assert len(state.models) == len(store.models("honest", "test"))
    state.show_default_models()
    assert (state.feature_sets, state.classifiers) == (sets, clfs)
    with pytest.raises(ValueError):
        state.threshold = 1.5


def test_default_selection_is_chosen_on_honest_cv_auc_never_on_test():
    rows = []
    for split, best in (("cv", "radiomics"), ("test", "resnet50")):
        for fs in ("clinical", "radiomics", "resnet50", "deep"):
            for clf, bonus in (("lr", 0.0), ("rf", 0.05)):
                value = 0.6 + bonus + (0.2 if fs == best else 0.0)
                rows.append({"protocol": "honest", "split": split, "metric": "auc",
                             "feature_set": fs, "classifier": clf, "value": value})
    metrics = pd.DataFrame(rows)
    sets, clfs, _ = default_selection(metrics)
    # rf has the best mean CV AUC; deep family: resnet50 and deep tie on CV (first wins),
    # the test split's resnet50 advantage plays no part
    assert clfs == ["rf"] and sets == ["clinical", "radiomics", "resnet50"]
    metrics.loc[(metrics["split"] == "cv") & (metrics["feature_set"] == "deep"), "value"] += 0.1
    assert default_selection(metrics)[0] == ["clinical", "radiomics", "deep"]
    no_cv = metrics[metrics["split"] == "test"]
    sets, clfs, how = default_selection(no_cv)
    assert "no honest cross-validated AUC" in how and clfs == ["lr"]


def test_every_view_draws_for_every_protocol_and_evaluation(store):
    for protocol in store.protocols:
        for evaluation in store.splits:
            state = DashboardState(store, protocol=protocol, evaluation=evaluation,
                                   classifiers=["lr", "rf"])
            for name, out in all_outputs(state).items():
                for text in texts(out):
                    assert "could not" not in text, (protocol, evaluation, name, text[:300])
                if isinstance(out, hv.core.Dimensioned):
                    hv.render(out, backend="bokeh")


def test_store_reads_each_file_once_and_threshold_moves_compute_nothing(run_dir, monkeypatch):
    reads: collections.Counter[str] = collections.Counter()
    original = rundir._read

    def counting(path):
        reads[Path(path).relative_to(run_dir).as_posix()] += 1
        return original(path)

    monkeypatch.setattr(rundir, "_read", counting)
    store = DataStore(run_dir)
    for protocol in store.protocols:
        for evaluation in store.splits:
            all_outputs(DashboardState(store, protocol=protocol, evaluation=evaluation,
                                       classifiers=store.classifiers))
    assert {"models/predictions.parquet", "models/metrics.parquet", "models/curves.parquet",
            "models/shap.parquet", "run_manifest.json"} <= set(reads)
    assert max(reads.values()) == 1, reads

    state = DashboardState(DataStore(run_dir))
    store = state.store
    perf, util = V.PerformanceView(state), V.UtilityView(state)
    perf.confusion(), perf.live_metrics(), util.decision_curves()
    cached = dict(store._memo)
    for t in (0.1, 0.35, 0.8):
        state.threshold = t
        perf.confusion(), perf.live_metrics()
    assert store._memo == cached  # the threshold only recounts: no new model, no new figure
    ref = state.reference_model
    assert store.model("honest", "test", *ref) is cached[("model", "honest", "test", *ref)]
    # a model's bootstrap is prepared only when it is drawn
    drawn = {("model", "honest", "test", *m) for m in state.models}
    assert {k for k in cached if k[0] == "model"} == drawn


def curve_renderers(fig) -> list:
    return [r for r in fig.renderers if r.name == CURVES]


def assert_draws_exactly_the_selection(figure, state) -> None:
    """The figure's curves are the state's models under its protocol and evaluation: no
    other model, protocol or evaluation, hidden or shown."""
    assert len(curve_renderers(figure.fig)) == 1
    drawn = figure.drawn
    assert [d["model"] for d in drawn] == [
        f"{fs} / {clf}" for fs, clf in state.models
        if state.store.curve(state.protocol, state.evaluation, fs, clf, "roc") is not None]
    assert {(d["protocol"], d["split"]) for d in drawn} <= {(state.protocol, state.evaluation)}


def test_changing_the_classifier_changes_the_roc_legend_auc(state, store):
    view = V.PerformanceView(state)
    fig = view.roc().object
    before = view.roc_legend()
    clf = state.classifiers[0]
    assert len(before) == len(state.models) + 1 and before[-1] == "chance"
    assert all(": AUC " in label and f"/ {clf}:" in label for label in before[:-1])
    other = next(c for c in store.classifiers if c != clf)
    state.classifiers = [other]
    after = view.roc_legend()
    assert view._roc.fig is fig  # updated in place, not redrawn
    assert after != before and all(f"/ {other}:" in label for label in after[:-1])
    aucs = store.recorded_metrics("honest", "test").query("metric == 'auc'")
    for _, m in aucs[(aucs["classifier"] == other)
                     & aucs["feature_set"].isin(state.feature_sets)].iterrows():
        assert roc_label(m["feature_set"], other, m["value"], m["lo"], m["hi"]) in after
    assert_draws_exactly_the_selection(view._roc, state)


@pytest.mark.parametrize("protocol,evaluation", [("paper", "test"), ("paper", "cv"),
                                                 ("honest", "cv"), ("honest", "test")])
def test_roc_and_decision_curves_draw_exactly_the_selection(store, protocol, evaluation):
    state = DashboardState(store)
    perf, util = V.PerformanceView(state), V.UtilityView(state)
    roc, dca = perf.roc().object, util.decision_curves().object
    choices = [{"protocol": protocol, "evaluation": evaluation},
               {"classifiers": store.classifiers},
               {"feature_sets": store.feature_sets[1:]},
               {"classifiers": store.classifiers[-1:]},
               {"protocol": "honest", "evaluation": "test"},
               {"protocol": protocol, "evaluation": evaluation}]
    for choice in choices:
        state.param.update(**choice)
        assert perf._roc.fig is roc and util._curves.fig is dca
        assert_draws_exactly_the_selection(perf._roc, state)
        models = [d["model"] for d in util._curves.drawn]
        assert models == list(state.model_names)
        assert {(d["protocol"], d["split"]) for d in util._curves.drawn} <= {
            (state.protocol, state.evaluation)}
        ref = store.treat_all(state.protocol, state.evaluation)
        assert list(util._curves._refs["treat all"].data["y"]) == list(ref[1])


def test_switching_protocol_and_evaluation_changes_figures_in_place(state, store):
    perf, util = V.PerformanceView(state), V.UtilityView(state)
    roc, heat, dca = perf.roc().object, perf.heatmap().object, util.decision_curves().object
    clf = state.classifiers[0]
    for protocol, evaluation in [("paper", "test"), ("paper", "cv"), ("honest", "test")]:
        state.param.update(protocol=protocol, evaluation=evaluation)
        assert perf._roc.fig is roc and perf._heatmap.fig is heat and util._curves.fig is dca
        legend = perf.roc_legend()
        aucs = store.recorded_metrics(protocol, evaluation).query(
            f"metric == 'auc' and classifier == '{clf}'")
        aucs = aucs[aucs["feature_set"].isin(state.feature_sets)]
        assert len(legend) == len(aucs) + 1 and legend[-1] == "chance"
        for _, m in aucs.iterrows():
            assert roc_label(m["feature_set"], clf, m["value"], m["lo"], m["hi"]) in legend
        for fig in (roc, heat, dca):
            assert f"{protocol} protocol" in fig.title.text
            assert ("(leaky)" in fig.title.text) == (protocol == "paper")
            assert PAPER_TITLE_WARNING not in fig.title.text  # said once, in the banner


def test_threshold_changes_sensitivity_and_moves_the_decision_marker(state, store):
    perf, util = V.PerformanceView(state), V.UtilityView(state)
    fig = util.decision_curves().object
    ev = store.model("honest", "test", *state.reference_model)
    values = {}
    for t in (0.05, 0.5, 0.95):
        state.threshold = t
        values[t] = sensitivity(perf.confusion())
        assert values[t] == pytest.approx(
            round(threshold_metrics(ev.y, ev.p, t)["sensitivity"], 2))
        assert f"threshold {t:.2f}" in perf.live_metrics()
        assert util._curves.fig is fig and util._curves.marker.location == t
    assert values[0.05] > values[0.95]


def test_live_metrics_carry_bootstrap_cis_and_delong_against_the_reference(state, store):
    state.classifiers = ["lr", "rf"]
    state.reference = "radiomics / lr"
    text = V.PerformanceView(state).live_metrics()
    assert text.count("reference</td>") == 1
    test = store.delong("honest", "test", ("clinical", "lr"), ("radiomics", "lr"))
    assert f"{test.p_value:.3f}" in text
    at = store.model("honest", "test", "clinical", "lr").at(state.threshold)
    assert at["sensitivity_lo"] <= at["sensitivity"] <= at["sensitivity_hi"]


def test_paper_protocol_views_carry_the_leakage_warning(state):
    views = [cls(state) for cls in (V.PerformanceView, V.UtilityView, V.SignaturesView,
                                    V.ExplainView, V.PatientsView, V.AuditView)]
    warning = html.escape(LEAKAGE_WARNING)
    assert not any(warning in v.header() for v in views[:-1])
    state.protocol = "paper"
    assert all(warning in v.header() for v in views)
    perf = views[0]
    # the full warning once per tab (its banner); titles only mark the protocol leaky
    assert "paper protocol (leaky)" in perf.roc().object.title.text
    assert "paper protocol" in perf.metrics_table() and "paper protocol" in perf.live_metrics()
    funnel_title = hv.render(views[2].funnel()).title.text
    assert "(leaky)" in funnel_title and PAPER_TITLE_WARNING not in funnel_title


def test_deep_views_carry_the_random_weights_label(state, run_facts):
    label = html.escape(run_facts["weights_label"])
    perf = V.PerformanceView(state)
    state.show_all("feature_sets")
    assert perf.header().count(label) == 1  # once per tab, in its banner, not in the titles
    assert run_facts["weights_label"] not in perf.roc().object.title.text
    state.feature_sets = ["clinical"]
    assert label not in perf.header()
    assert label in V.AuditView(state).provenance()


def test_patient_ids_are_escaped_in_every_view(state, run_facts):
    bad = run_facts["malicious_id"]
    assert bad in state.param.patient.objects  # a test patient, with SHAP values
    state.patient = bad
    outputs = all_outputs(state)
    page = "".join(t for out in outputs.values() for t in texts(out))
    assert bad not in page
    assert html.escape(bad) in outputs["PatientsView.caption"]
    assert html.escape(bad) in outputs["CohortView.problems"]
    assert "mask &lt;b&gt;touches&lt;/b&gt; the border" in outputs["CohortView.problems"]
    contributions = outputs["ExplainView.patient_contributions"]
    assert f"patient {html.escape(bad)}" in contributions and contributions.count("<tr>") > 3
    from workbench.app.layout import tabs

    table = next(o for o in tabs(state).select(pn.widgets.Tabulator))
    assert table.formatters["patient_id"] == {"type": "plaintext"}  # Tabulator escapes it
    assert bad in set(table.value["patient_id"])


def test_lasso_cv_curve_shown_when_recorded_and_noted_when_not(run_dir, tmp_path, state):
    items = V.SignaturesView(state).lasso().objects
    assert any(isinstance(i, pn.pane.HoloViews) for i in items)
    assert not any("not in this run" in t for i in items for t in texts(i))
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "models" / "lasso_cv.parquet").unlink(missing_ok=True)
    other = DashboardState(DataStore(run))
    notes = [t for i in V.SignaturesView(other).lasso().objects for t in texts(i)]
    assert any("LASSO cross-validation curve: not in this run" in t for t in notes)


def test_patients_tab_shows_slices_contours_and_crop_when_the_run_has_images(run_dir, tmp_path):
    from PIL import Image

    from fixtures.images import write_tiny_patient

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    store = DataStore(run)
    with_images, without = [p for p in store.patients("honest", "test") if p.startswith("P")][:2]
    paths = write_tiny_patient(tmp_path / "images", with_images)
    pd.DataFrame([{"patient_id": with_images, **paths}]).to_parquet(run / "preprocessed.parquet")
    (run / "features" / "crops").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 24, 3), np.uint8)).save(
        run / "features" / "crops" / f"{with_images}.png")

    state = DashboardState(store, patient=with_images)
    view = V.PatientsView(state)
    layout = view.images()
    assert isinstance(layout, hv.Layout) and len(layout) == 3
    assert all(any(isinstance(el, hv.Contours) for el in panel) for panel in layout)
    assert layout[0].Image.I.data.shape == (20, 24)  # one axial slice of the 24x20x8 volume
    hv.render(layout, backend="bokeh")
    assert isinstance(view.crop().objects[1], pn.pane.PNG)
    assert store.preprocessed is store.preprocessed  # read once
    state.patient = without
    assert "no row in preprocessed.parquet" in texts(view.images())[0]
    assert "CNN crop: not in this run" in texts(view.crop())[0]
    bare = DashboardState(DataStore(run_dir))
    assert "preprocessed.parquet not found" in texts(V.PatientsView(bare).images())[0]


def test_dashboard_builds_for_notebooks_and_serving(store):
    from bokeh.document import Document

    from workbench.app.layout import TAB_NAMES, dashboard

    inline = dashboard(store)
    assert isinstance(inline, pn.Row)
    inline.get_root(Document())  # renders the sidebar and the first tab
    tabs = inline.objects[1]
    assert tuple(tabs._names) == TAB_NAMES and tabs.dynamic
    assert isinstance(dashboard(store, template=True), pn.template.BootstrapTemplate)


def test_signatures_detail_one_block_at_a_time(state, store):
    state.show_all("feature_sets")
    assert sorted(state.blocks) == sorted(store.blocks("honest")) and len(state.blocks) >= 2
    assert state.block == state.blocks[0] == "radiomics"
    view = V.SignaturesView(state)
    for block in state.blocks:
        state.block = block
        assert f"Signatures — block {block}" in view.header()
        coefficients = view.lasso().objects[0]
        assert f"block {block}" in hv.render(coefficients.object).title.text
    state.feature_sets = ["clinical"]  # no image block drawn
    assert state.block is None and state.blocks == []
    assert "clinical only" in texts(view.lasso())[0]


def test_calibration_follows_the_reference_in_place(state, store):
    from workbench.evaluation.calibration import reliability_curve

    state.show_all("classifiers")
    util = V.UtilityView(state)
    fig = util.calibration().object
    for name in [n for n in state.param.reference.objects if n][:3]:
        state.reference = name
        ev = store.model(state.protocol, state.evaluation, *state.reference_model)
        bins = reliability_curve(ev.y, ev.p, n_bins=5)
        assert util._calibration.fig is fig  # updated in place, not redrawn
        assert util._calibration.source.data["observed"] == bins["observed"].tolist()
        assert name in fig.title.text and f"{state.protocol} protocol" in fig.title.text


def test_explain_shows_the_explained_model_when_none_drawn_has_shap(state, store):
    view = V.ExplainView(state)
    have = view._shap_models()
    assert have  # the fixture explains some models
    state.feature_sets = [fs for fs in store.feature_sets if fs not in {m[0] for m in have}]
    assert not set(state.models) & set(have)
    model = view.model()
    assert model in have
    assert "Not among the drawn models" in view.header()
    assert "SHAP beeswarm" in hv.render(view.beeswarm()).title.text
