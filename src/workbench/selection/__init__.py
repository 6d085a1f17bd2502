"""Feature selection as scikit-learn transformers: filter -> LASSO -> signature.

``VarianceFilter -> UnivariateFilter -> LassoSelector -> Signature`` are the four steps of
:func:`selection_pipeline`; every label-fitted step lives inside that one Pipeline so
cross-validation cannot leak. :func:`selection_trace` turns a fitted pipeline into a tidy
table for the run directory.
"""

from workbench.selection._lasso import LassoSelector
from workbench.selection._lasso_path import alpha_grid, logistic_lasso_path
from workbench.selection._signature import (
    Signature,
    lasso_cv_trace,
    selection_pipeline,
    selection_trace,
)
from workbench.selection._univariate import UnivariateFilter, check_binary_target
from workbench.selection._variance import SelectionError, SelectionWarning, VarianceFilter

__all__ = [
    "LassoSelector",
    "SelectionError",
    "SelectionWarning",
    "Signature",
    "UnivariateFilter",
    "VarianceFilter",
    "alpha_grid",
    "check_binary_target",
    "lasso_cv_trace",
    "logistic_lasso_path",
    "selection_pipeline",
    "selection_trace",
]
