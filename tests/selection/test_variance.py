"""VarianceFilter: constant, near-constant, NaN-only and duplicate features."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from workbench.selection import SelectionError, SelectionWarning, UnivariateFilter, VarianceFilter


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 20
    df = pd.DataFrame({
        "a": rng.normal(size=n),
        "const": np.full(n, 3.0),
        "b": rng.normal(size=n),
        "a_copy": None,
        "all_nan": np.nan,
        "b_copy": None,
    }, index=[f"P{i:03d}" for i in range(n)])
    df["a_copy"] = df["a"]
    df["b_copy"] = df["b"]
    return df


def test_drops_constant_nan_only_and_duplicates_with_reasons(frame):
    vf = VarianceFilter().fit(frame)
    assert list(vf.get_feature_names_out()) == ["a", "b"]
    assert vf.dropped_["const"].startswith("near-constant")
    assert vf.dropped_["all_nan"] == "all values missing (NaN-only column)"
    assert vf.duplicates_ == {"a_copy": "a", "b_copy": "b"}
    assert vf.dropped_["a_copy"] == "duplicate of a"
    assert np.isnan(vf.std_[4])


def test_dataframe_in_dataframe_out_numpy_in_numpy_out(frame):
    out = VarianceFilter().fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["a", "b"]
    assert out.index.equals(frame.index)
    pd.testing.assert_frame_equal(out, frame[["a", "b"]])
    arr = VarianceFilter().fit_transform(frame.to_numpy())
    assert isinstance(arr, np.ndarray) and arr.shape == (20, 2)
    vf = VarianceFilter().fit(frame.to_numpy())
    assert list(vf.get_feature_names_out()) == ["x0", "x2"]
    assert vf.duplicates_ == {"x3": "x0", "x5": "x2"}


def test_set_output_pandas_names_numpy_input(frame):
    out = VarianceFilter().set_output(transform="pandas").fit_transform(frame.to_numpy())
    assert list(out.columns) == ["x0", "x2"]


def test_threshold_is_on_population_std():
    # values 0 and 2: population std 1.0, sample std 1.41
    X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 5.0], [2.0, 9.0]])
    vf = VarianceFilter(threshold=1.2).fit(X)
    np.testing.assert_allclose(vf.std_[0], 1.0)
    assert not vf.support_[0] and vf.support_[1]
    assert VarianceFilter(threshold=0.99).fit(X).support_[0]


def test_nan_ignored_in_std_and_duplicates_need_same_nan_positions():
    X = np.array([
        [1.0, 1.0, 1.0, 1.0, 5.0],
        [1.0, 2.0, 2.0, 2.0, 5.0],
        [np.nan, np.nan, np.nan, 3.0, 5.0],
        [1.0, 3.0, 3.0, np.nan, np.nan],
    ])
    vf = VarianceFilter().fit(X)
    # x0 is constant once the NaN is ignored; x4 too
    assert vf.dropped_["x0"].startswith("near-constant")
    assert vf.dropped_["x4"].startswith("near-constant")
    np.testing.assert_allclose(vf.std_[1], np.std([1.0, 2.0, 3.0]))
    # x2 equals x1 including the NaN position; x3 has its NaN elsewhere
    assert vf.duplicates_ == {"x2": "x1"}
    assert vf.support_.tolist() == [False, True, False, True, False]


def test_negative_zero_equals_zero_for_duplicates():
    X = np.array([[0.0, -0.0], [1.0, 1.0], [2.0, 2.0]])
    assert VarianceFilter().fit(X).duplicates_ == {"x1": "x0"}


def test_all_constant_warns_and_next_step_explains():
    X = np.ones((30, 4))
    y = np.r_[np.zeros(15), np.ones(15)]
    with pytest.warns(SelectionWarning, match="all 4 features were dropped"):
        vf = VarianceFilter().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's own "No features were selected"
        empty = vf.transform(X)
    assert empty.shape == (30, 0)
    with pytest.raises(SelectionError, match=r"0 feature\(s\).*earlier step kept no feature"):
        UnivariateFilter().fit(empty, y)


@pytest.mark.parametrize("bad", [-1.0, "x", None])
def test_bad_threshold_names_parameter(bad):
    with pytest.raises(ValueError, match="parameter threshold must be a float >= 0, got"):
        VarianceFilter(threshold=bad).fit(np.eye(3))


def test_transform_checks_columns(frame):
    vf = VarianceFilter().fit(frame)
    with pytest.raises(ValueError):
        vf.transform(frame[["b", "a", "const", "a_copy", "all_nan", "b_copy"]])
    with pytest.raises(ValueError, match="features"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "X does not have valid feature names"
        vf.transform(frame.to_numpy()[:, :3])
