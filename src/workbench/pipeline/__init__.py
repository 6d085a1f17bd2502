"""The pipeline: the run, its stages, their caches, predict and the manifest.

This package is the only place that unpacks the run config into stage arguments
(:mod:`.settings`); every stage writes through :class:`workbench.rundir.RunDir`.

=========================  ==========================================================
module                     what
=========================  ==========================================================
:mod:`.run`                :func:`run_pipeline`, every stage in order
:mod:`.stages`             cohort, QC, preprocessing, features, IBSI, Table 1, report
:mod:`.preprocess`         the cohort-level preprocessing cache
:mod:`.models`             modelling and null-audit stages (cached)
:mod:`.diagnostics`        known-truth diagnostics of a synthetic cohort (cached)
:mod:`.learning_curve`     ``workbench learning-curve``: honest AUC against cohort size
:mod:`.learning_inputs`    the patients of each learning-curve size (subsample or generator)
:mod:`.cache`              the stage cache of the label-fitted stages
:mod:`.manifest`           ``run_manifest.json``
:mod:`.predict`            apply a saved model to a new cohort
:mod:`.settings`           config -> stage arguments
:mod:`.validate`           everything a run will read, checked before any work starts
=========================  ==========================================================
"""

from workbench.pipeline.manifest import manifest_stage
from workbench.pipeline.models import (
    ModelStageResult,
    audit_stage,
    load_features,
    load_modelling_inputs,
    model_stage,
    run_models,
)
from workbench.pipeline.predict import predict_stage
from workbench.pipeline.preprocess import PreprocessResult, preprocess_cohort
from workbench.pipeline.run import RunResult, run_pipeline
from workbench.pipeline.settings import (
    classifier_factory,
    preprocess_settings,
    radiomics_params_path,
    selector_factory,
)
from workbench.pipeline.stages import (
    cohort_stage,
    feature_stages,
    ibsi_stage,
    preprocess_stage,
    qc_stage,
    report_stage,
    table1_stage,
)
from workbench.pipeline.validate import check_run_inputs, require_run_inputs

__all__ = ["ModelStageResult", "PreprocessResult", "RunResult", "audit_stage",
           "check_run_inputs", "classifier_factory", "cohort_stage", "feature_stages",
           "ibsi_stage", "load_features", "load_modelling_inputs", "manifest_stage", "model_stage",
           "predict_stage", "preprocess_cohort", "preprocess_settings", "preprocess_stage",
           "qc_stage", "radiomics_params_path", "report_stage", "require_run_inputs",
           "run_models", "run_pipeline", "selector_factory", "table1_stage"]
