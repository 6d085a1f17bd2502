"""CorrelationClusters, StabilitySelector and PrespecifiedColumns / check_patterns: what each
keeps and drops, and the errors that name the parameter or the closest column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.selection import (
    CorrelationClusters,
    PrespecifiedColumns,
    SelectionError,
    StabilitySelector,
    check_patterns,
    match_patterns,
)


# ----------------------------------------------------------------------------- clusters
def _families(n=80, seed=0, copies=4, noise=0.05):
    """3 groups of near-copies (rad__g<k>_c<j>), 4 independent columns, a clinical column
    that copies group 0 (passed through all the same)."""
    rng = np.random.default_rng(seed)
    cols = {}
    for g in range(3):
        z = rng.standard_normal(n)
        for c in range(copies):
            cols[f"rad__g{g}_c{c}"] = z + noise * rng.standard_normal(n)
    for i in range(4):
        cols[f"rad__ind{i}"] = rng.standard_normal(n)
    cols["clin__age"] = cols["rad__g0_c0"] * 10 + 50
    return pd.DataFrame(cols)


def test_one_representative_per_group_and_independent_columns_kept():
    X = _families()
    sel = CorrelationClusters(threshold=0.8).fit(X)
    kept = list(sel.get_feature_names_out())
    for g in range(3):
        assert sum(c.startswith(f"rad__g{g}_") for c in kept) == 1
    assert {f"rad__ind{i}" for i in range(4)} <= set(kept)
    assert "clin__age" in kept
    assert sel.n_clusters_ == 3 + 4
    assert list(sel.transform(X).columns) == kept

    table = sel.clusters_.set_index("feature")
    assert list(table.columns) == ["group", "cluster", "representative", "reason"]
    for g in range(3):
        members = table[table.index.str.startswith(f"rad__g{g}_")]
        assert members["cluster"].nunique() == 1  # one cluster per group ...
        rep = members.index[members["representative"]]
        assert len(rep) == 1  # ... one representative, which the others name
        others = members.drop(rep)
        assert (others["reason"] == f"represented by {rep[0]}").all()
        assert members.loc[rep[0], "reason"] == "representative"
    singles = table.loc[[f"rad__ind{i}" for i in range(4)]]
    assert singles["representative"].all() and singles["cluster"].nunique() == 4
    assert table.loc["clin__age", "reason"] == "passed through"
    assert not table.loc["clin__age", "representative"]


def test_threshold_one_keeps_every_column_that_is_not_a_rank_copy():
    X = _families()
    X["rad__dup"] = X["rad__ind0"]  # identical
    X["rad__exp"] = np.exp(X["rad__ind1"])  # identical ranks (Spearman rho = 1)
    sel = CorrelationClusters(threshold=1.0).fit(X)
    kept = set(sel.get_feature_names_out())
    assert kept == set(X.columns) - {"rad__dup", "rad__exp"}
    reasons = sel.clusters_.set_index("feature")["reason"]
    assert reasons["rad__dup"] == "represented by rad__ind0"
    assert reasons["rad__exp"] == "represented by rad__ind1"


def test_families_are_clustered_apart_by_prefix():
    rng = np.random.default_rng(1)
    z = rng.standard_normal(60)
    X = pd.DataFrame({"rad__a": z, "rad__b": z + 0.01 * rng.standard_normal(60),
                      "dl_x__a": z + 0.01 * rng.standard_normal(60),
                      "dl_x__b": rng.standard_normal(60)})
    apart = CorrelationClusters(threshold=0.8).fit(X)
    kept = list(apart.get_feature_names_out())
    assert sum(c.startswith("rad__") for c in kept) == 1
    assert "dl_x__a" in kept and "dl_x__b" in kept  # its near-copy lives in another family
    assert set(apart.clusters_["group"]) == {"rad", "dl_x"}
    together = CorrelationClusters(threshold=0.8, by_prefix=False).fit(X)
    assert len(together.get_feature_names_out()) == 2  # one of the three copies + dl_x__b


def test_constant_columns_are_dropped_with_a_reason():
    X = _families()
    X["rad__const"] = 3.0
    sel = CorrelationClusters().fit(X)
    assert "rad__const" not in sel.get_feature_names_out()
    row = sel.clusters_.set_index("feature").loc["rad__const"]
    assert row["reason"] == "constant" and row["cluster"] == -1


def test_clinical_columns_pass_through_even_when_constant_and_copied():
    X = _families()
    X["clin__site"] = 1.0
    sel = CorrelationClusters(threshold=0.5).fit(X)
    assert {"clin__age", "clin__site"} <= set(sel.get_feature_names_out())
    # and with no passthrough, the clinical copy of group 0 joins the clustering
    plain = CorrelationClusters(threshold=0.8, by_prefix=False, passthrough_prefix=None)
    plain.fit(X.drop(columns="clin__site"))
    table = plain.clusters_.set_index("feature")
    assert table.loc["clin__age", "cluster"] == table.loc["rad__g0_c0", "cluster"]


@pytest.mark.parametrize("threshold", [0, -0.1, 1.5, True, "0.8"])
def test_bad_threshold_is_named(threshold):
    with pytest.raises(SelectionError, match=r"parameter threshold must be a float in "
                                             r"\(0, 1\], got"):
        CorrelationClusters(threshold=threshold).fit(_families())


@pytest.mark.parametrize(("params", "name"), [({"method": "kendall"}, "method"),
                                              ({"linkage": "ward"}, "linkage")])
def test_bad_method_and_linkage_are_named(params, name):
    with pytest.raises(SelectionError, match=f"parameter {name} must be one of"):
        CorrelationClusters(**params).fit(_families())


# ----------------------------------------------------------------------------- stability
def _stability_data(seed, n=120, p=60, with_clinical=True, signal=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = 2.0 * (X[:, 0] - X[:, 1]) if signal else np.zeros(n)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    df = pd.DataFrame(X, columns=[f"rad__f{j:02d}" for j in range(p)])
    if with_clinical:
        df["clin__age"] = rng.standard_normal(n)  # no signal: kept all the same
    return df, y


FAST = {"n_subsamples": 20, "n_alphas": 10}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strong_features_are_stable_and_noise_is_not(seed):
    X, y = _stability_data(seed)
    sel = StabilitySelector(random_state=seed, **FAST).fit(X, y)
    freq = sel.frequencies_.set_index("feature")
    assert list(sel.frequencies_.columns) == ["feature", "frequency", "kept"]
    assert (freq.loc[["rad__f00", "rad__f01"], "frequency"] >= sel.threshold).all()
    assert freq.loc[["rad__f00", "rad__f01"], "kept"].all()
    noise = freq.loc[[f"rad__f{j:02d}" for j in range(2, 60)]]
    assert noise["kept"].sum() <= 1  # expected_false=1 bounds the false selections
    assert (noise["frequency"] >= noise["kept"] * sel.threshold).all()
    assert freq.loc["clin__age", "kept"] and np.isnan(freq.loc["clin__age", "frequency"])
    assert "clin__age" in sel.get_feature_names_out()
    assert sel.q_ == pytest.approx(np.sqrt(1.0 * (2 * 0.75 - 1) * 60))


def test_clinical_columns_are_kept_when_imaging_is_pure_noise():
    X, y = _stability_data(3, signal=False)
    sel = StabilitySelector(random_state=3, **FAST).fit(X, y)
    assert "clin__age" in sel.get_feature_names_out()
    assert sel.frequencies_["kept"].sum() <= 2


def test_nothing_stable_and_no_clinical_column_is_an_error():
    X, y = _stability_data(4, with_clinical=False, signal=False)
    with pytest.raises(SelectionError, match="kept no feature.*threshold=0.75"):
        StabilitySelector(random_state=4, **FAST).fit(X, y)


def test_half_samples_are_complementary_stratified_pairs():
    X, y = _stability_data(5, n=41)
    halves = StabilitySelector(n_subsamples=6)._halves(y)
    assert len(halves) == 6
    for a, b in zip(halves[::2], halves[1::2], strict=True):
        assert not set(a) & set(b) and len(a) + len(b) == len(y)
        assert abs(y[a].mean() - y[b].mean()) < 0.1


@pytest.mark.parametrize(("params", "name"), [
    ({"threshold": 0.5}, "threshold"), ({"threshold": 1.1}, "threshold"),
    ({"expected_false": 0}, "expected_false"), ({"n_subsamples": 1}, "n_subsamples"),
    ({"n_alphas": 1}, "n_alphas"),
])
def test_bad_stability_parameters_are_named(params, name):
    X, y = _stability_data(6, n=40, p=5)
    with pytest.raises(SelectionError, match=rf"parameter {name} must be"):
        StabilitySelector(**params).fit(X, y)


# ----------------------------------------------------------------------------- prespecified
COLUMNS = ["kin__ser_median", "kin__ser_mean", "kin__pe_max",
           "rad__early_original_shape_Volume", "rad__early_original_shape_Sphericity",
           "rad__early_original_firstorder_Mean", "rad__pre_original_shape_Volume",
           "clin__age", "clin__er_pos"]


def _table(columns=COLUMNS, n=12):
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.standard_normal((n, len(columns))), columns=columns)


def test_exact_names_and_globs_match_in_table_order():
    hits = match_patterns(["kin__pe_max", "rad__early_original_shape_*", "rad__*_Volume",
                           "kin__ser_me?n", "kin__pe"], COLUMNS)
    assert hits == {"kin__pe_max": ["kin__pe_max"],
                    "rad__early_original_shape_*": ["rad__early_original_shape_Volume",
                                                    "rad__early_original_shape_Sphericity"],
                    "rad__*_Volume": ["rad__early_original_shape_Volume",
                                      "rad__pre_original_shape_Volume"],
                    "kin__ser_me?n": ["kin__ser_mean"],
                    "kin__pe": []}  # an exact name is not a prefix
    check_patterns(["kin__pe_max", "rad__early_original_shape_*"], COLUMNS)  # no error


def test_a_typo_is_refused_with_the_closest_names():
    with pytest.raises(SelectionError) as info:
        check_patterns(["kin__ser_medain", "kin__pe_max", "rad__late_original_*"], COLUMNS,
                       where="the feature tables")
    text = str(info.value)
    assert "'kin__ser_medain' matches no column of the feature tables; closest: " \
           "kin__ser_median" in text
    assert "'rad__late_original_*' matches no column" in text
    assert "kin__pe_max" not in text.split("closest")[0]  # matched patterns not listed
    assert text.count("matches no column") == 2


def test_prespecified_columns_keep_the_list_and_the_clinical_columns():
    X = _table()
    sel = PrespecifiedColumns(features=("rad__early_original_shape_*", "kin__pe_max")).fit(X)
    assert list(sel.get_feature_names_out()) == [
        "kin__pe_max", "rad__early_original_shape_Volume",
        "rad__early_original_shape_Sphericity", "clin__age", "clin__er_pos"]
    assert list(sel.selected_) == ["kin__pe_max", "rad__early_original_shape_Volume",
                                   "rad__early_original_shape_Sphericity"]
    X.iloc[0, 0] = np.nan  # missing values are the imputer's job, after this step
    assert sel.fit(X).transform(X).shape == (len(X), 5)


@pytest.mark.parametrize("features", [("rad__late_*",), ("clin__age",), ()])
def test_no_imaging_match_keeps_no_feature(features):
    with pytest.raises(SelectionError, match="keeps no feature"):
        PrespecifiedColumns(features=features).fit(_table())


def test_a_bare_string_is_not_a_feature_list():
    with pytest.raises(SelectionError, match="parameter features must be a list"):
        PrespecifiedColumns(features="kin__pe_max").fit(_table())
