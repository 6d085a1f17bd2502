"""Feature selection and modelling strategies as scikit-learn estimators.

The study's chain: ``VarianceFilter -> UnivariateFilter -> LassoSelector -> Signature`` are
the four steps of :func:`selection_pipeline`; every label-fitted step lives inside that one
Pipeline so cross-validation cannot leak. :func:`selection_trace` turns a fitted pipeline
into a tidy table for the run directory.

The strategies beside it (:func:`strategy_pipeline`: ``cluster``, ``stability``,
``elasticnet``, ``prespecified``) map a feature set's columns to a probability with
:class:`CorrelationClusters`, :class:`StabilitySelector`, :class:`PrespecifiedColumns` and
:class:`PenalisedLogistic` (clinical covariates unpenalised).
"""

from workbench.selection._cluster import CorrelationClusters, correlation_clusters
from workbench.selection._combat import ComBat
from workbench.selection._lasso import LassoSelector
from workbench.selection._lasso_path import alpha_grid, logistic_lasso_path
from workbench.selection._penalised import PenalisedLogistic, penalised_logistic_path
from workbench.selection._prespecified import PrespecifiedColumns, check_patterns, match_patterns
from workbench.selection._robust import RobustnessFilter
from workbench.selection._signature import (
    Signature,
    lasso_cv_trace,
    selection_pipeline,
    selection_trace,
)
from workbench.selection._stability import StabilitySelector
from workbench.selection._strategies import STRATEGIES, StrategySettings, strategy_pipeline
from workbench.selection._univariate import UnivariateFilter, check_binary_target
from workbench.selection._variance import SelectionError, SelectionWarning, VarianceFilter

__all__ = [
    "STRATEGIES",
    "ComBat",
    "CorrelationClusters",
    "LassoSelector",
    "PenalisedLogistic",
    "PrespecifiedColumns",
    "RobustnessFilter",
    "SelectionError",
    "SelectionWarning",
    "Signature",
    "StabilitySelector",
    "StrategySettings",
    "UnivariateFilter",
    "VarianceFilter",
    "alpha_grid",
    "check_binary_target",
    "check_patterns",
    "correlation_clusters",
    "lasso_cv_trace",
    "logistic_lasso_path",
    "match_patterns",
    "penalised_logistic_path",
    "selection_pipeline",
    "selection_trace",
    "strategy_pipeline",
]
