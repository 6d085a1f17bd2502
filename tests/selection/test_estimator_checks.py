"""scikit-learn's estimator checks over every selection estimator."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from workbench.selection import (
    ComBat,
    LassoSelector,
    RobustnessFilter,
    Signature,
    UnivariateFilter,
    VarianceFilter,
)

ESTIMATORS = [
    VarianceFilter(),
    UnivariateFilter(),
    UnivariateFilter(keep_at_least=1),  # as in selection_pipeline
    # a short grid and 3 folds keep the ~40 checks fast; the API is the same
    LassoSelector(alphas=10, cv=3),
    LassoSelector(model="linear", alphas=10, cv=3),
    Signature(),
    RobustnessFilter(),  # icc=None keeps every column: the API contract on arrays
    # batch=None: the identity (no site information); checks the API contract, not the maths
    ComBat(),
]


# The checks fit on small random data where a filter may pass nothing: our warnings say so.
@pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning")
@pytest.mark.filterwarnings("ignore:No features were selected:UserWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
