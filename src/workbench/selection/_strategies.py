"""Modelling strategies beside the study's chain, each one scikit-learn Pipeline.

The study's chain (``study``) selects per feature block (filter -> univariate tests -> LASSO)
and hands one signature per block to ten classifiers. The strategies here instead map a
feature set's raw columns (plus the clinical ``clin__`` columns when the set has them)
straight to a probability, with every label-fitted step inside the one Pipeline:

============  ==========================================================================
strategy      pipeline
============  ==========================================================================
cluster       median imputation -> :class:`CorrelationClusters` (one representative per
              cluster of |rank correlation| >= threshold, per feature family) ->
              :class:`PenalisedLogistic` (L1, penalty by inner CV)
stability     imputation -> clusters -> :class:`StabilitySelector` (complementary-pair
              half-samples, Meinshausen-Buehlmann region) -> ridge logistic, penalty by
              inner CV
elasticnet    :class:`VarianceFilter` -> imputation -> elastic-net logistic on every
              feature, (alpha, l1_ratio) by inner CV
prespecified  :class:`PrespecifiedColumns` (a list from the config: knowledge-driven, no
              label-driven selection) -> imputation -> ridge logistic, penalty by inner CV
============  ==========================================================================

In every strategy the clinical covariates named by ``unpenalised`` (default every
``clin__`` column) enter **unpenalised** and the imaging features penalised, so adding imaging cannot throw the clinical signal away: the strategy decides
this, not a classifier choice. No class weighting: the probabilities are meant to be
calibrated (:mod:`workbench.models.classifiers` explains the default).
"""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from workbench.selection._cluster import CorrelationClusters
from workbench.selection._penalised import PenalisedLogistic
from workbench.selection._prespecified import PrespecifiedColumns
from workbench.selection._stability import StabilitySelector
from workbench.selection._variance import SelectionError, VarianceFilter

#: The strategies this module builds (``study`` is the block-signature chain).
STRATEGIES = ("cluster", "stability", "elasticnet", "prespecified")


@dataclass(frozen=True)
class StrategySettings:
    """Parameters of the strategies (the config's ``strategies`` section)."""

    cluster_threshold: float = 0.8
    inner_cv: int = 5
    scoring: str = "deviance"
    n_alphas: int = 20
    elasticnet_l1_ratios: tuple[float, ...] = (0.5, 0.9)
    stability_threshold: float = 0.75
    stability_expected_false: float = 1.0
    stability_subsamples: int = 50
    prespecified: tuple[str, ...] = ()
    #: columns entering unpenalised (names or patterns); the other ``clin__`` columns are
    #: penalised with the imaging features
    unpenalised: tuple[str, ...] = ("clin__*",)
    #: columns passed through the imaging reductions (clusters, prespecified list)
    clinical_prefix: str = "clin__"


def _imputer() -> SimpleImputer:
    return SimpleImputer(strategy="median", keep_empty_features=True)


def strategy_pipeline(name: str, settings: StrategySettings | None = None, *,
                      seed: int = 0) -> Pipeline:
    """The Pipeline of strategy ``name`` (pandas output, so column names reach the model).

    Raises
    ------
    SelectionError
        For an unknown strategy, or ``prespecified`` without a feature list.
    """
    s = settings or StrategySettings()

    def model(l1_ratios):
        return PenalisedLogistic(l1_ratios=l1_ratios, n_alphas=s.n_alphas, cv=s.inner_cv,
                                 scoring=s.scoring, unpenalised=tuple(s.unpenalised),
                                 random_state=seed)

    clusters = CorrelationClusters(threshold=s.cluster_threshold,
                                   passthrough_prefix=s.clinical_prefix)
    if name == "cluster":
        steps = [("impute", _imputer()), ("clusters", clusters), ("model", model((1.0,)))]
    elif name == "stability":
        steps = [("impute", _imputer()), ("clusters", clusters),
                 ("stability", StabilitySelector(
                     threshold=s.stability_threshold,
                     expected_false=s.stability_expected_false,
                     n_subsamples=s.stability_subsamples,
                     unpenalised=tuple(s.unpenalised), random_state=seed)),
                 ("model", model((0.0,)))]
    elif name == "elasticnet":
        steps = [("variance", VarianceFilter()), ("impute", _imputer()),
                 ("model", model(tuple(s.elasticnet_l1_ratios)))]
    elif name == "prespecified":
        if not s.prespecified:
            raise SelectionError("strategy 'prespecified' needs a feature list "
                                 "(strategies.prespecified in the config)", step="strategy")
        steps = [("columns", PrespecifiedColumns(features=tuple(s.prespecified),
                                                 passthrough_prefix=s.clinical_prefix)),
                 ("impute", _imputer()), ("model", model((0.0,)))]
    else:
        raise SelectionError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}",
                             step="strategy")
    return Pipeline(steps).set_output(transform="pandas")
