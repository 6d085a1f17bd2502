"""Figures as functions returning HoloViews objects (bokeh backend).

Every function takes the run directory's tidy tables, computes only cheap summaries through
:mod:`workbench.evaluation` (never refits a model) and returns a HoloViews element, overlay
or layout: render with ``hv.render(obj, backend="bokeh")``, show in a notebook or a Panel
dashboard, or embed in the HTML report. Figures with ``paper`` protocol numbers carry
:data:`PAPER_TITLE_WARNING` in their title; figures built on deep features carry the weights
label passed as ``weights_label`` (a page that states both once, above its figures, builds
them inside :func:`labels_outside_titles`). :mod:`workbench.plots.images` draws the images themselves
(tumour slices, CNN input crops) from arrays the caller read (:mod:`workbench.imaging.slices`).
Nothing here reads a file or imports the feature or model code.
"""

from workbench.plots._common import (
    PALETTE,
    PAPER_TITLE_WARNING,
    PlotInputError,
    eval_predictions,
    figure_title,
    labels_outside_titles,
    model_name,
    uses_deep,
)
from workbench.plots.audit import null_audit_histogram
from workbench.plots.explain import beeswarm_offsets, shap_beeswarm, shap_importance
from workbench.plots.images import crop_strips, tumour_slice
from workbench.plots.performance import (
    auc_heatmap,
    calibration_curve,
    confusion_matrix_plot,
    roc_curves,
    roc_label,
)
from workbench.plots.signatures import (
    FUNNEL_STEPS,
    funnel_counts,
    lasso_coefficients,
    lasso_cv_curve,
    selection_funnel,
    signature_boxplots,
    univariate_pvalues,
)
from workbench.plots.utility import decision_curves

__all__ = [
    "FUNNEL_STEPS", "PALETTE", "PAPER_TITLE_WARNING", "PlotInputError", "auc_heatmap",
    "beeswarm_offsets", "calibration_curve", "confusion_matrix_plot", "crop_strips",
    "decision_curves", "eval_predictions", "figure_title",
    "funnel_counts", "labels_outside_titles", "lasso_coefficients", "lasso_cv_curve", "model_name", "null_audit_histogram",
    "roc_curves", "roc_label", "selection_funnel", "shap_beeswarm", "shap_importance",
    "signature_boxplots", "tumour_slice", "univariate_pvalues", "uses_deep",
]
