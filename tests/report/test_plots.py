"""Plot functions: each returns a HoloViews object that renders with Bokeh and carries the
labels, warnings and data it promises (on the small run directory of conftest.py)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource, GlyphRenderer, Span

from workbench import plots
from workbench.rundata import RunData


@pytest.fixture(scope="module")
def run(run_dir) -> RunData:
    return RunData(run_dir)


@pytest.fixture(scope="module")
def weights(run_facts) -> str:
    return run_facts["weights_label"]


def render(obj):
    return hv.render(obj, backend="bokeh")


def flat(fig) -> str:
    """A figure's title on one line (titles wrap to their figure's width)."""
    return fig.title.text.replace("\n", " ")


def legend_labels(fig) -> list[str]:
    return [item.label.value for legend in fig.legend for item in legend.items]


def spans(fig) -> list[Span]:
    return [r for r in fig.center + fig.renderers if isinstance(r, Span)]


def sources(fig) -> list[ColumnDataSource]:
    return [r.data_source for r in fig.renderers if isinstance(r, GlyphRenderer)]


def test_roc_legend_has_auc_with_the_delong_ci_of_the_metrics_table(run, weights):
    fig = render(plots.roc_curves(run.predictions, protocol="honest",
                                  weights_label=weights))
    labels = legend_labels(fig)
    models = run.metrics.query("protocol == 'honest' and split == 'test' and metric == 'auc'")
    assert len(labels) == len(models) + 1 and labels[-1] == "chance"
    for _, m in models.iterrows():
        expected = plots.roc_label(m["feature_set"], m["classifier"], m["value"], m["lo"],
                                   m["hi"])
        assert expected in labels  # the figure's DeLong CI is the metrics table's
    assert all("AUC" in lab and "–" in lab for lab in labels[:-1])
    assert weights in flat(fig)  # resnet50 is drawn
    assert plots.PAPER_TITLE_WARNING not in flat(fig)


def test_paper_figures_carry_the_leakage_warning(run):
    figs = [plots.roc_curves(run.predictions, protocol="paper"),
            plots.decision_curves(run.predictions, protocol="paper"),
            plots.auc_heatmap(run.metrics, protocol="paper"),
            plots.calibration_curve(run.predictions, protocol="paper", feature_set="radiomics",
                                    classifier="lr"),
            plots.selection_funnel(run.selection, protocol="paper"),
            plots.null_audit_histogram(run.audit)]
    for obj in figs:  # titles wrap to their figure's width
        assert plots.PAPER_TITLE_WARNING in render(obj).title.text.replace("\n", " ")


def test_decision_curves_have_references_and_threshold_marker(run):
    fig = render(plots.decision_curves(run.predictions, protocol="honest", threshold=0.3))
    labels = legend_labels(fig)
    assert {"treat all", "treat none"} <= set(labels)
    assert "radiomics / lr" in labels
    assert [s.location for s in spans(fig)] == [0.3]


def test_calibration_curve_renders_bins_and_diagonal(run, weights):
    obj = plots.calibration_curve(run.predictions, protocol="honest", feature_set="resnet50",
                                  classifier="lr", n_bins=4, weights_label=weights)
    fig = render(obj)
    assert "perfect calibration" in legend_labels(fig)
    assert any("Brier" in lab for lab in legend_labels(fig))
    assert weights in flat(fig)
    scatter = [s for s in sources(fig) if "n_events" in s.data]
    assert scatter and sum(scatter[0].data["n"]) == 15  # every test patient in a bin


def test_auc_heatmap_has_one_cell_and_label_per_model(run):
    fig = render(plots.auc_heatmap(run.metrics, protocol="honest"))
    texts = [s.data["text"] for s in sources(fig) if "text" in s.data]
    assert len(texts) == 1 and len(texts[0]) == 6  # 3 feature sets x 2 classifiers
    assert all(len(t) == 4 and t.startswith("0.") or t == "1.00" for t in texts[0])


def test_confusion_matrix_counts_every_test_patient(run):
    obj = plots.confusion_matrix_plot(run.predictions, feature_set="radiomics",
                                      classifier="lr", threshold=0.5)
    cells = obj.get(0).dframe()
    assert len(cells) == 4 and int(cells["count"].sum()) == 15
    assert set(cells["outcome"]) == {"true positive", "false positive", "true negative",
                                     "false negative"}
    render(obj)


def test_selection_funnel_narrows_per_block(run, weights):
    counts = plots.funnel_counts(run.selection, protocol="honest")
    wide = counts.pivot(index="block", columns="step", values="features")
    assert wide.loc["radiomics", "extracted"] == 25  # 24 features + 1 constant
    assert wide.loc["radiomics", "variance"] == 24  # the constant is dropped
    for _, row in wide.iterrows():
        assert row["extracted"] >= row["variance"] >= row["univariate"] >= row["lasso"] >= 1
    fig = render(plots.selection_funnel(run.selection, weights_label=weights))
    first = fig.x_range.factors[0][0]
    assert [str(step) for block, step in fig.x_range.factors if block == first] == list(
        plots.FUNNEL_STEPS)  # pipeline order, not alphabetical


def test_lasso_and_univariate_plots(run, weights):
    lasso = render(plots.lasso_coefficients(run.selection, block="radiomics"))
    assert "lasso coefficients" in flat(lasso)
    uni = render(plots.univariate_pvalues(run.selection, block="resnet50", alpha=0.05,
                                          weights_label=weights))
    assert [round(s.location, 3) for s in spans(uni)] == [round(-np.log10(0.05), 3)]
    assert weights in flat(uni)
    render(plots.lasso_coefficients(run.selection, block="radiomics", stage="signature"))


def test_lasso_cv_curve_marks_the_chosen_alpha(run, weights):
    cv = run.lasso_cv
    final = cv[(cv["protocol"] == "honest") & (cv["block"] == "resnet50") & (cv["repeat"] == -1)]
    assert len(final) == 10 and final["chosen"].sum() == 1  # the fixture config: 10 alphas
    fig = render(plots.lasso_cv_curve(cv, block="resnet50", weights_label=weights))
    chosen = float(final.loc[final["chosen"], "alpha"].iloc[0])
    assert [round(s.location, 6) for s in spans(fig)] == [round(np.log10(chosen), 6)]
    assert weights in flat(fig) and "honest protocol" in flat(fig)
    paper = render(plots.lasso_cv_curve(cv, protocol="paper", block="radiomics"))
    assert plots.PAPER_TITLE_WARNING in flat(paper)
    with pytest.raises(plots.PlotInputError, match="available"):
        plots.lasso_cv_curve(cv, block="no_such_block")


def test_signature_boxplots_show_the_mann_whitney_p(run, weights):
    grid = render(plots.signature_boxplots(run.signatures, run.labels, protocol="honest",
                                           weights_label=weights))
    figs = [child[0] for child in grid.children]
    titles = [f.title.text for f in figs]
    assert len(figs) == 2 and all("Mann-Whitney p = " in t for t in titles)
    assert any(weights in t for t in titles if "resnet50" in t)


def test_beeswarm_has_one_point_per_patient_and_feature(run):
    shap = run.shap
    rows = shap.query("protocol == 'honest' and feature_set == 'clinical' "
                      "and classifier == 'rf'")
    obj = plots.shap_beeswarm(shap, protocol="honest", feature_set="clinical",
                              classifier="rf", max_features=50)
    data = obj.dframe()
    assert len(data) == len(rows) == rows["patient_id"].nunique() * rows["feature"].nunique()
    assert data["value_scaled"].between(0, 1).all()
    fig = render(obj)
    hover = [t for t in fig.tools if t.__class__.__name__ == "HoverTool"][0]
    assert ("patient", "@{patient_id}") in hover.tooltips
    assert ("value", "@{feature_value}") in hover.tooltips


def test_beeswarm_keeps_the_most_important_features_and_labels_deep_sets(run, weights):
    obj = plots.shap_beeswarm(run.shap, feature_set="resnet50", classifier="lr",
                              max_features=1, weights_label=weights)
    assert obj.dframe()["feature"].nunique() == 1
    assert weights in render(obj).title.text
    bars = render(plots.shap_importance(run.shap, feature_set="clinical", classifier="lr",
                                        max_features=3))
    assert "Mean |SHAP|" in flat(bars)


def test_beeswarm_offsets_spread_ties_within_the_width():
    offsets = plots.beeswarm_offsets(np.zeros(9), width=0.4)
    assert len(set(np.round(offsets, 6))) == 9 and np.abs(offsets).max() <= 0.4 + 1e-12
    assert plots.beeswarm_offsets(np.array([])).size == 0


def test_null_audit_histogram_marks_chance(run):
    fig = render(plots.null_audit_histogram(run.audit))
    assert [s.location for s in spans(fig)] == [0.5]
    labels = legend_labels(fig)
    assert any(lab.startswith("honest") for lab in labels)
    assert any(lab.startswith("paper") for lab in labels)


def test_bad_selection_names_what_is_available(run):
    with pytest.raises(plots.PlotInputError, match="available"):
        plots.roc_curves(run.predictions, protocol="nope")
    with pytest.raises(plots.PlotInputError, match="lacks column"):
        plots.roc_curves(pd.DataFrame({"x": [1]}))


@pytest.mark.parametrize("width_px", [300, 520, 640, 1020])
def test_titles_fit_their_figure_and_labels_can_move_to_the_page(width_px):
    long = "Signature of block radiomics " * 6
    title = plots.figure_title(f"{long}\nMann-Whitney p = 0.01", paper=True, deep=True,
                               weights_label="RANDOM weights (seed 0) — not ImageNet features",
                               width_px=width_px)
    lines = title.split("\n")
    assert max(len(line) for line in lines) <= max(30, width_px // 8)
    assert "Mann-Whitney p = 0.01" in lines  # an explicit line break is kept
    assert "RANDOM" in title and "selection saw the test patients" in title.replace("\n", " ")
    with plots.labels_outside_titles():
        plain = plots.figure_title("ROC — paper protocol, test split", paper=True, deep=True,
                                   weights_label="RANDOM weights", width_px=width_px)
        honest = plots.figure_title("ROC — honest protocol", deep=True, weights_label="W")
    assert plain.replace("\n", " ") == "ROC — paper protocol (leaky), test split"
    assert honest == "ROC — honest protocol"
    assert "RANDOM" in plots.figure_title("x", deep=True, weights_label="RANDOM")  # restored
