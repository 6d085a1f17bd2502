"""Validation of labels, scores and thresholds: messages that say what is wrong."""

import numpy as np
import pytest

from workbench.evaluation.inputs import MetricInputError, check_labels_scores, check_threshold


def test_labels_and_scores_come_back_as_int8_and_float64():
    y, p = check_labels_scores([True, False, True], [1, 0, 0.5])
    assert y.dtype == np.int8 and p.dtype == np.float64
    assert y.tolist() == [1, 0, 1] and p.tolist() == [1.0, 0.0, 0.5]


def test_bad_labels_and_scores_are_refused_with_context():
    with pytest.raises(MetricInputError, match="same length"):
        check_labels_scores([0, 1], [0.5])
    with pytest.raises(MetricInputError, match="0/1"):
        check_labels_scores([0, 2], [0.5, 0.4])
    with pytest.raises(MetricInputError, match="NaN"):
        check_labels_scores([0, 1], [0.5, np.nan])
    with pytest.raises(MetricInputError, match="1 positive"):
        check_labels_scores([1], [0.5])
    check_labels_scores([1], [0.5], need_both_classes=False)
    with pytest.raises(MetricInputError, match="empty"):
        check_labels_scores([], [])


def test_threshold_must_be_finite():
    assert check_threshold(1) == 1.0
    with pytest.raises(ValueError, match="finite"):  # MetricInputError is also a ValueError
        check_threshold(float("nan"))
