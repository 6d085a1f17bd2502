import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from workbench.evaluation.counts import THRESHOLD_METRICS
from workbench.evaluation.inputs import MetricInputError
from workbench.evaluation.metrics import (
    accuracy,
    confusion_at,
    confusion_frame,
    confusion_matrix,
    f1,
    metrics_table,
    npv,
    precision,
    sensitivity,
    specificity,
    threshold_metrics,
    youden_threshold,
)

Y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
P = np.array([0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.5, 0.5])


def test_threshold_metrics_by_hand():
    # p >= 0.5 is positive: TP = {0.9, 0.6, 0.5}, FN = {0.3}, FP = {0.7, 0.5}, TN = {0.2, 0.1}
    m = threshold_metrics(Y, P, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 2, 2, 1)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(2 / 4)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["npv"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    for fn in (accuracy, sensitivity, specificity, precision, npv, f1):
        assert fn(Y, P) == pytest.approx(m[fn.__name__])
    assert confusion_matrix(Y, P) == {"tp": 3, "fp": 2, "tn": 2, "fn": 1}
    frame = confusion_frame(Y, P)
    assert frame.set_index("outcome")["count"].to_dict() == {"tp": 3, "fp": 2, "tn": 2, "fn": 1}
    assert frame["count"].sum() == len(Y)


def test_undefined_metrics_are_nan_not_errors():
    m = threshold_metrics(Y, P, 0.95)  # nobody predicted positive
    assert m["tp"] == m["fp"] == 0
    assert math.isnan(m["precision"])
    assert m["sensitivity"] == 0 and m["specificity"] == 1 and m["f1"] == 0
    m = threshold_metrics(Y, P, 0.0)  # everybody predicted positive
    assert math.isnan(m["npv"])
    only_neg = threshold_metrics([0, 0, 0], [0.1, 0.2, 0.3], 0.5)
    assert math.isnan(only_neg["sensitivity"]) and only_neg["specificity"] == 1
    assert math.isnan(only_neg["precision"]) and math.isnan(only_neg["f1"])


def test_confusion_at_matches_threshold_metrics_everywhere():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    p = np.round(rng.random(200), 2)  # plenty of ties with the thresholds
    thresholds = np.concatenate([np.linspace(0, 1, 101), [-1.0, 2.0], np.unique(p)])
    table = confusion_at(y, p, thresholds)
    assert list(table.columns[:5]) == ["threshold", "tp", "fp", "tn", "fn"]
    for _, row in table.iterrows():
        ref = threshold_metrics(y, p, row["threshold"])
        for key in ("tp", "fp", "tn", "fn", *THRESHOLD_METRICS):
            assert row[key] == pytest.approx(ref[key], nan_ok=True), (row["threshold"], key)


def test_youden_threshold():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.45, 0.6, 0.7, 0.9])
    t = youden_threshold(y, p)
    # J is best (0.75) for cuts at 0.35 (sens 1, spec 3/4) and 0.525 (sens 3/4, spec 1):
    # ties go to the higher threshold
    assert t == pytest.approx(0.525)
    m = threshold_metrics(y, p, t)
    assert m["sensitivity"] + m["specificity"] - 1 == pytest.approx(0.75)
    # perfectly separated scores: the cut falls between the classes
    assert 0.3 < youden_threshold([0, 0, 1, 1], [0.1, 0.3, 0.8, 0.9]) < 0.8
    with pytest.raises(MetricInputError, match="both classes"):
        youden_threshold([1, 1], [0.2, 0.4])


def test_metrics_table():
    rng = np.random.default_rng(4)
    y = (rng.random(120) < 0.35).astype(int)
    p = 1 / (1 + np.exp(-(1.5 * y - 0.8 + rng.normal(0, 1, 120))))
    table = metrics_table(y, p, threshold=0.4, n_boot=300, seed=1)
    assert list(table.columns) == ["metric", "value", "lo", "hi", "method"]
    assert list(table["metric"]) == ["auc", *THRESHOLD_METRICS]
    assert table.loc[0, "method"] == "DeLong"
    assert table.loc[0, "value"] == pytest.approx(roc_auc_score(y, p))
    assert (table["lo"] <= table["value"]).all() and (table["value"] <= table["hi"]).all()
    point = threshold_metrics(y, p, 0.4)
    for _, row in table.iloc[1:].iterrows():
        assert row["value"] == pytest.approx(point[row["metric"]])
    pd.testing.assert_frame_equal(table, metrics_table(y, p, threshold=0.4, n_boot=300, seed=1))


def test_bad_input_is_refused_with_context():
    with pytest.raises(MetricInputError, match="same length"):
        threshold_metrics([0, 1], [0.5])
    with pytest.raises(MetricInputError, match="0/1"):
        threshold_metrics([0, 2], [0.5, 0.4])
    with pytest.raises(MetricInputError, match="NaN"):
        threshold_metrics([0, 1], [0.5, np.nan])
    with pytest.raises(MetricInputError, match="0 positive"):
        metrics_table([0, 0], [0.5, 0.4], n_boot=10)
    with pytest.raises(ValueError):  # MetricInputError is also a ValueError
        threshold_metrics([0, 1], [0.5, 0.4], threshold=float("nan"))
