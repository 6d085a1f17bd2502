"""RobustnessFilter: keep features that reproduce under perturbation (ICC >= threshold)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

from workbench.selection import (
    RobustnessFilter,
    SelectionError,
    SelectionWarning,
    VarianceFilter,
)

ICC = {"rad__early__original_firstorder_Mean": 0.95,
       "rad__early__original_glcm_Contrast": 0.6,
       "rad__early__original_shape_Sphericity": 0.75,
       "rad__early__original_glrlm_RunVariance": np.nan}


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 15
    cols = [*ICC, "clin__age", "kin__wash_in"]
    return pd.DataFrame(rng.normal(size=(n, len(cols))), columns=cols,
                        index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"))


def test_keeps_and_drops_the_right_columns(frame):
    rf = RobustnessFilter(icc=ICC, threshold=0.75).fit(frame)
    kept = ["rad__early__original_firstorder_Mean", "rad__early__original_shape_Sphericity",
            "clin__age", "kin__wash_in"]
    assert list(rf.get_feature_names_out()) == kept
    assert list(rf.dropped_) == ["rad__early__original_glcm_Contrast",
                                 "rad__early__original_glrlm_RunVariance"]
    assert rf.dropped_["rad__early__original_glcm_Contrast"] == "ICC 0.600 < threshold=0.75"
    assert "NaN" in rf.dropped_["rad__early__original_glrlm_RunVariance"]
    assert rf.scored_.tolist() == [True, True, True, True, False, False]
    assert np.isnan(rf.icc_[-1]) and rf.icc_[0] == 0.95
    out = rf.transform(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == kept
    assert out.index.equals(frame.index)
    # a stricter threshold drops the 0.75 one too
    strict = RobustnessFilter(icc=ICC, threshold=0.9).fit(frame)
    assert "rad__early__original_shape_Sphericity" in strict.dropped_


def test_unknown_columns_are_kept_and_icc_may_be_a_series_or_an_icc_table(frame):
    series = pd.Series(ICC)
    table = pd.DataFrame({"feature": list(ICC), "icc": list(ICC.values()),
                          "note": ""})
    expected = RobustnessFilter(icc=ICC).fit(frame).support_
    np.testing.assert_array_equal(RobustnessFilter(icc=series).fit(frame).support_, expected)
    np.testing.assert_array_equal(RobustnessFilter(icc=table).fit(frame).support_, expected)
    only_clinical = frame[["clin__age", "kin__wash_in"]]
    assert RobustnessFilter(icc=ICC).fit(only_clinical).support_.all()


def test_label_is_ignored(frame):
    y = np.arange(len(frame)) % 2
    a = RobustnessFilter(icc=ICC).fit(frame, y).support_
    b = RobustnessFilter(icc=ICC).fit(frame).support_
    np.testing.assert_array_equal(a, b)


def test_no_icc_keeps_everything_on_arrays():
    X = np.random.default_rng(1).normal(size=(10, 4))
    rf = RobustnessFilter().fit(X)
    assert rf.support_.all() and rf.dropped_ == {}
    np.testing.assert_array_equal(rf.transform(X), X)


def test_pandas_output_keeps_names(frame):
    rf = RobustnessFilter(icc=ICC).set_output(transform="pandas").fit(frame)
    out = rf.transform(frame)
    assert list(out.columns) == list(rf.get_feature_names_out())
    assert "rad__early__original_glcm_Contrast" not in out.columns


def test_in_a_pipeline_with_the_variance_filter(frame):
    data = frame.assign(const=1.0)
    pipe = make_pipeline(VarianceFilter(), RobustnessFilter(icc=ICC, threshold=0.75))
    pipe.set_output(transform="pandas")
    out = pipe.fit_transform(data)
    assert list(out.columns) == ["rad__early__original_firstorder_Mean",
                                 "rad__early__original_shape_Sphericity", "clin__age",
                                 "kin__wash_in"]
    assert list(pipe.get_feature_names_out()) == list(out.columns)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.8", True])
def test_threshold_is_validated(frame, bad):
    with pytest.raises(SelectionError, match=r"parameter threshold must be a float in "
                                             r"\[0, 1\], got"):
        RobustnessFilter(icc=ICC, threshold=bad).fit(frame)


def test_bad_icc_values_name_the_feature(frame):
    with pytest.raises(SelectionError, match="feature 'clin__age' is not a number"):
        RobustnessFilter(icc={"clin__age": "high"}).fit(frame)
    with pytest.raises(SelectionError, match="needs columns 'feature' and 'icc'"):
        RobustnessFilter(icc=pd.DataFrame({"name": ["a"], "value": [1.0]})).fit(frame)


def test_all_dropped_warns(frame):
    with pytest.warns(SelectionWarning, match="all 2 features were dropped"):
        RobustnessFilter(icc={"a": 0.1, "b": np.nan}).fit(
            pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0]}))
