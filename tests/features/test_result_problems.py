"""FeatureResult.problems: a stage's error rows as the cohort's problem records."""

import numpy as np
import pandas as pd

from workbench.cohort.table import Problem
from workbench.features.extract import FeatureResult


def test_errors_become_problems_with_the_stage_in_the_step():
    errors = pd.DataFrame({"patient_id": ["P1", "P2"], "step": ["shape", "phase early"],
                           "file": ["/x/mask.nii.gz", np.nan],
                           "message": ["empty mask", "wavelet failed"]})
    result = FeatureResult(features=pd.DataFrame(), errors=errors, n_cached=0, n_computed=0,
                           seconds=0.0)
    assert result.problems("radiomics") == [
        Problem("P1", "radiomics:shape", "empty mask", "/x/mask.nii.gz", "error"),
        Problem("P2", "radiomics:phase early", "wavelet failed", None, "error")]


def test_no_errors_no_problems():
    result = FeatureResult(features=pd.DataFrame(), errors=pd.DataFrame(
        columns=["patient_id", "step", "file", "message"]), n_cached=0, n_computed=0,
        seconds=0.0)
    assert result.problems("kinetic") == []
