"""Carrying a saved model to another cohort: coverage, calibration, transportability, refit.

* :mod:`.coverage` — which of a model's input features a cohort has, misses or had to impute,
  and the strict rule ``workbench predict`` / ``validate`` apply before predicting;
* :mod:`.calibration` — external calibration (CITL, slope with CIs), recalibration fitted on
  the external cohort (in-sample and cross-fitted) and the generator's truth for synthetic
  cohorts;
* :mod:`.transport` — development vs external case mix (standardised differences) and the
  membership model (can a classifier tell the cohorts apart);
* :mod:`.deploy` — refitting a saved model's pipeline on the whole development cohort.

The orchestration (reading cohorts and runs, writing the validation folder) is
:mod:`workbench.pipeline.external`.
"""

from workbench.external.calibration import (
    RECALIBRATION_VARIANTS,
    Recalibration,
    recalibrate,
    truth_calibration,
    validation_tables,
)
from workbench.external.coverage import (
    COVERAGE_COLUMNS,
    CoverageError,
    check_coverage,
    coverage_lines,
    coverage_table,
    model_inputs,
)
from workbench.external.transport import case_mix, membership_model

__all__ = ["COVERAGE_COLUMNS", "CoverageError", "RECALIBRATION_VARIANTS", "Recalibration",
           "case_mix", "check_coverage", "coverage_lines", "coverage_table",
           "membership_model", "model_inputs", "recalibrate", "truth_calibration",
           "validation_tables"]
