"""UnivariateFilter: the test chosen per feature, scipy-equal p-values, speed, bad input."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.selection import SelectionError, SelectionWarning, UnivariateFilter

N0, N1 = 40, 40


def _normal(n, loc=0.0, scale=1.0, seed=0):
    """Exact normal quantiles in random order: Shapiro-Wilk p is close to 1."""
    q = stats.norm.ppf((np.arange(n) + 0.5) / n)
    return loc + scale * np.random.default_rng(seed).permutation(q)


def _skewed(n, loc=0.0, seed=0):
    q = stats.expon.ppf((np.arange(n) + 0.5) / n)
    return loc + np.random.default_rng(seed).permutation(q)


@pytest.fixture
def known() -> tuple[pd.DataFrame, np.ndarray]:
    y = np.r_[np.zeros(N0, int), np.ones(N1, int)]
    df = pd.DataFrame({
        "shifted": np.r_[_normal(N0, seed=1), _normal(N1, loc=1.0, seed=2)],
        "unequal_var": np.r_[_normal(N0, scale=1.0, seed=3), _normal(N1, 1.0, 4.0, seed=4)],
        "skewed": np.r_[_skewed(N0, seed=5), _skewed(N1, loc=1.0, seed=6)],
        "null": np.r_[_normal(N0, seed=7), _normal(N1, seed=8)],
    }, index=[f"P{i}" for i in range(N0 + N1)])
    return df, y


def test_decision_tree_on_known_features(known):
    df, y = known
    res = UnivariateFilter().fit(df, y).results_.set_index("feature")
    assert res.loc["shifted", "test"] == "t"
    assert res.loc["unequal_var", "test"] == "welch"
    assert res.loc["skewed", "test"] == "mannwhitney"
    assert res.loc["null", "test"] == "t"
    assert res.loc["shifted", ["normal_0", "normal_1"]].all()
    assert not res.loc["skewed", ["normal_0", "normal_1"]].any()
    assert res.loc["shifted", "levene_p"] >= 0.05 > res.loc["unequal_var", "levene_p"]
    assert np.isnan(res.loc["skewed", "levene_p"])
    assert res["kept"].to_dict() == {"shifted": True, "unequal_var": False, "skewed": True,
                                     "null": False}
    assert res.loc["null", "reason"].startswith("dropped: p=")
    assert res.loc["shifted", "reason"].startswith("kept: p=")


def test_p_values_equal_direct_scipy_calls(known):
    df, y = known
    a, b = df[y == 0], df[y == 1]
    res = UnivariateFilter().fit(df, y).results_.set_index("feature")
    assert res.loc["shifted", "p"] == pytest.approx(
        stats.ttest_ind(a["shifted"], b["shifted"]).pvalue, rel=1e-12)
    assert res.loc["unequal_var", "p"] == pytest.approx(
        stats.ttest_ind(a["unequal_var"], b["unequal_var"], equal_var=False).pvalue, rel=1e-12)
    assert res.loc["unequal_var", "levene_p"] == pytest.approx(
        stats.levene(a["unequal_var"], b["unequal_var"], center="mean").pvalue, rel=1e-12)
    assert res.loc["skewed", "p"] == pytest.approx(
        stats.mannwhitneyu(a["skewed"], b["skewed"], alternative="two-sided").pvalue, rel=1e-12)


def _reference(x0: np.ndarray, x1: np.ndarray, alpha=0.05) -> tuple[str, float]:
    """The decision tree written the slow way, one feature at a time."""
    x0, x1 = x0[~np.isnan(x0)], x1[~np.isnan(x1)]

    def normal(x):
        return 4 <= len(x) <= 5000 and np.ptp(x) > 0 and stats.shapiro(x).pvalue >= alpha

    if normal(x0) and normal(x1):
        equal = stats.levene(x0, x1, center="mean").pvalue >= alpha
        return ("t" if equal else "welch"), stats.ttest_ind(x0, x1, equal_var=equal).pvalue
    return "mannwhitney", stats.mannwhitneyu(x0, x1, alternative="two-sided").pvalue


def test_vectorised_equals_feature_by_feature_with_scattered_nans():
    rng = np.random.default_rng(1)
    n, p = 60, 120
    y = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(size=(n, p))
    X[:, ::3] = np.exp(X[:, ::3])  # log-normal: Mann-Whitney
    X[:, 1::4] *= np.where(y == 1, 3.0, 1.0)[:, None]  # unequal variances: Welch
    X[:, :30] += 0.7 * y[:, None]
    X[rng.random(X.shape) < 0.05] = np.nan
    res = UnivariateFilter().fit(X, y).results_
    for j in range(p):
        test, pval = _reference(X[y == 0, j], X[y == 1, j])
        assert res.loc[j, "test"] == test, j
        assert res.loc[j, "p"] == pytest.approx(pval, rel=1e-9, abs=1e-300), j
    assert set(res["test"]) == {"t", "welch", "mannwhitney"}
    assert res["n_0"].min() < (y == 0).sum()  # NaNs were really dropped


def test_speed_8576_features_150_patients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 8576))
    X[:, ::3] = np.exp(X[:, ::3])
    y = (rng.random(150) < 0.3).astype(int)
    X[:, :50] += 0.8 * y[:, None]
    start = time.perf_counter()
    res = UnivariateFilter().fit(X, y).results_
    elapsed = time.perf_counter() - start
    print(f"UnivariateFilter on 8576 features x 150 patients: {elapsed:.2f} s "
          f"({res['test'].value_counts().to_dict()})")
    assert elapsed < 10.0  # ~0.4 s measured on 2 shared cores; generous on purpose
    assert res.loc[:49, "kept"].mean() > 0.8


def test_dataframe_in_dataframe_out(known):
    df, y = known
    out = UnivariateFilter().fit_transform(df, y)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["shifted", "skewed"]
    assert out.index.equals(df.index)
    arr = UnivariateFilter().fit(df.to_numpy(), y)
    assert list(arr.get_feature_names_out()) == ["x0", "x2"]
    assert isinstance(arr.transform(df.to_numpy()), np.ndarray)


def test_small_classes_and_missing_values_skip_features():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(10, int), np.ones(3, int)]
    X = rng.normal(size=(13, 2))
    X[:, 0] += 3 * y
    X[10, 1] = np.nan  # class 1 keeps only 2 values of feature x1
    res = UnivariateFilter().fit(X, y).results_
    # class 1 has 3 < 4 samples: not Shapiro-tested, so treated as non-normal
    assert res.loc[0, "test"] == "mannwhitney" and not res.loc[0, "normal_1"]
    assert res.loc[1, "test"] == "skipped" and not res.loc[1, "kept"]
    assert "class 1 has 2 non-missing values < min_per_class=3" in res.loc[1, "reason"]


def test_constant_feature_is_dropped_with_reason():
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    X = np.c_[np.ones(20), np.arange(20.0)]
    res = UnivariateFilter().fit(X, y).results_
    assert not res.loc[0, "kept"]
    assert res.loc[0, "test"] == "mannwhitney"
    assert res.loc[1, "kept"]


def test_nothing_survives_empty_selection_with_warning():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    with pytest.warns(SelectionWarning, match="selection is empty"):
        uf = UnivariateFilter(alpha=1e-6).fit(df, y)
    out = uf.transform(df)
    assert out.shape == (60, 0) and out.index.equals(df.index)
    with pytest.warns(SelectionWarning, match="smallest p-values"):
        uf = UnivariateFilter(alpha=1e-6, keep_at_least=1).fit(df, y)
    best = uf.results_["p"].idxmin()
    assert uf.support_.sum() == 1 and uf.support_[best]
    assert "keep_at_least" in uf.results_.loc[best, "reason"]


@pytest.mark.parametrize("y, match", [
    (np.zeros(20), "one class only"),
    (np.r_[np.zeros(18), np.ones(2)], r"min_per_class=3 samples, got class counts \{0.0: 18, 1.0: 2\}"),
    (np.r_[np.zeros(10), np.ones(5), 2 * np.ones(5)], "multiclass"),
])
def test_bad_targets_raise_clear_errors(y, match):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(SelectionError, match=match):
        UnivariateFilter().fit(X, y)


def test_bad_targets_are_value_errors():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="step UnivariateFilter"):
        UnivariateFilter().fit(X, np.zeros(20))


@pytest.mark.parametrize("params, match", [
    ({"alpha": 0.0}, r"alpha must be a float in \(0, 1\], got 0.0"),
    ({"min_per_class": 1}, "min_per_class must be an int >= 2, got 1"),
    ({"levene_center": "trimmed"}, "levene_center must be 'mean' or 'median'"),
    ({"keep_at_least": -1}, "keep_at_least must be an int >= 0"),
])
def test_bad_parameters_name_the_parameter(params, match):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.r_[np.zeros(10), np.ones(10)]
    with pytest.raises(SelectionError, match=match):
        UnivariateFilter(**params).fit(X, y)


def test_nan_only_column_is_skipped_not_crashing():
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    X = np.c_[np.full(20, np.nan), np.arange(20.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = UnivariateFilter().fit(X, y).results_
    assert res.loc[0, "test"] == "skipped" and "0 non-missing" in res.loc[0, "reason"]
