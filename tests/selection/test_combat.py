"""ComBat: neuroCombat oracle, held-out patients, pass-through features, errors, in a CV fold."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from neuroCombat import neuroCombat
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.selection import ComBat, SelectionError

LOCATION = {"A": 0.0, "B": 1.5, "C": -1.0}
SCALE = {"A": 1.0, "B": 2.0, "C": 0.6}
SUBTYPE_EFFECT = 0.8
AGE_EFFECT = 0.05


def cohort(n: int = 120, m: int = 25, seed: int = 0):
    """Features with site location + scale shifts and two protected covariates."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    site = rng.choice(list(LOCATION), n)
    subtype = rng.integers(0, 2, n).astype(float)
    # neuroCombat casts continuous covariates to float32: use ages it represents exactly
    age = rng.normal(50, 10, n).astype(np.float32).astype(float)
    noise = rng.normal(size=(n, m)) * rng.uniform(0.5, 2, m)
    values = (noise * np.array([SCALE[s] for s in site])[:, None]
              + np.array([LOCATION[s] for s in site])[:, None] * rng.uniform(0.5, 1.5, m)
              + SUBTYPE_EFFECT * subtype[:, None] + AGE_EFFECT * age[:, None] + rng.normal(0, 3, m))
    X = pd.DataFrame(values, index=ids, columns=[f"rad__f{j}" for j in range(m)])
    batch = pd.Series(site, index=ids, name="site")
    covariates = pd.DataFrame({"subtype_her2": subtype, "age": age}, index=ids)
    return X, batch, covariates


def site_f(X: pd.DataFrame, batch: pd.Series) -> np.ndarray:
    """One-way ANOVA F of site, per feature (about 1 when the site means agree)."""
    return stats.f_oneway(*[g.to_numpy() for _, g in X.groupby(batch.loc[X.index])]).statistic


def site_spread(X: pd.DataFrame, batch: pd.Series) -> float:
    """Mean over features of the largest |site mean - pooled mean|."""
    means = X.groupby(batch.loc[X.index]).mean()
    return float((means - X.mean()).abs().max().mean())


@pytest.mark.parametrize("mean_only", [False, True])
def test_in_sample_equals_neurocombat(mean_only):
    X, batch, cov = cohort()
    ours = ComBat(batch, cov, mean_only=mean_only).fit_transform(X)
    covars = pd.DataFrame({"site": batch, **cov}).reset_index(drop=True)
    # dat as float64 numpy: neuroCombat casts a DataFrame to float32
    ref = neuroCombat(dat=X.to_numpy().T, covars=covars, batch_col="site",
                      categorical_cols=["subtype_her2"], continuous_cols=["age"],
                      mean_only=mean_only)["data"].T
    np.testing.assert_allclose(ours.to_numpy(), ref, rtol=0, atol=1e-8)
    assert list(ours.columns) == list(X.columns) and ours.index.equals(X.index)


def test_fitted_attributes():
    X, batch, cov = cohort()
    est = ComBat(batch, cov).fit(X)
    assert list(est.batches_) == ["A", "B", "C"]
    assert est.covariate_columns_ == ["subtype_her2", "age"]
    assert est.gamma_star_.shape == est.delta_star_.shape == (3, 25)
    assert est.beta_.shape == (2, 25)
    assert est.grand_mean_.shape == est.var_pooled_.shape == (25,)
    assert est.harmonised_.all() and est.passthrough_ == {}
    assert abs(est.beta_[0].mean() - SUBTYPE_EFFECT) < 0.2
    assert abs(est.beta_[1].mean() - AGE_EFFECT) < 0.02
    # site B was simulated at twice the noise scale: its delta* is the largest
    assert (est.delta_star_[1] > est.delta_star_[0]).mean() > 0.9
    assert list(est.get_feature_names_out()) == list(X.columns)


def test_held_out_patients_use_training_estimates_and_keep_covariate_effect():
    X, batch, cov = cohort(n=400, m=20, seed=1)
    rng = np.random.default_rng(2)
    train = rng.permutation(X.index)[:280]
    test = X.index.difference(train)
    est = ComBat(batch, cov).fit(X.loc[train])
    out = est.transform(X.loc[test])
    assert out.index.equals(test)
    # held-out site means agree once the training sites' gamma* are removed
    before, after = np.median(site_f(X.loc[test], batch)), np.median(site_f(out, batch))
    assert before > 10 and after < 3, (before, after)
    # the scale shift too: site spreads after harmonisation are alike
    sd = out.groupby(batch.loc[test]).std().mean(axis=1)
    assert sd.max() / sd.min() < 1.3, sd
    # the protected subtype effect survives on held-out rows (OLS slope per feature)
    design = np.column_stack([np.ones(len(test)), cov.loc[test].to_numpy()])
    slopes = np.linalg.lstsq(design, out.to_numpy(), rcond=None)[0]
    assert abs(slopes[1].mean() - SUBTYPE_EFFECT) < 0.15, slopes[1].mean()
    assert abs(slopes[2].mean() - AGE_EFFECT) < 0.02, slopes[2].mean()


def test_transform_of_fit_rows_equals_fit_transform():
    X, batch, cov = cohort()
    est = ComBat(batch, cov).fit(X)
    pd.testing.assert_frame_equal(est.transform(X), ComBat(batch, cov).fit_transform(X))
    # row order and subsets do not matter: each row is harmonised on its own
    rows = X.index[::-3]
    pd.testing.assert_frame_equal(est.transform(X.loc[rows]), est.transform(X).loc[rows])


def test_nan_and_constant_features_pass_through(caplog):
    X, batch, cov = cohort()
    X["rad__const"] = 4.2
    X["rad__gappy"] = np.arange(len(X), dtype=float)
    X.iloc[3, X.columns.get_loc("rad__gappy")] = np.nan
    with caplog.at_level(logging.WARNING, logger="workbench.selection._combat"):
        est = ComBat(batch, cov).fit(X)
    out = est.transform(X)
    pd.testing.assert_series_equal(out["rad__const"], X["rad__const"])
    pd.testing.assert_series_equal(out["rad__gappy"], X["rad__gappy"])
    assert set(est.passthrough_) == {"rad__const", "rad__gappy"}
    assert "missing value" in est.passthrough_["rad__gappy"]
    assert "<= eps" in est.passthrough_["rad__const"]
    assert list(est.harmonised_).count(False) == 2
    [record] = caplog.records
    assert "2 of 27 features" in record.getMessage()
    # pass-through features stay out of the empirical-Bayes priors
    plain = ComBat(batch, cov).fit_transform(X.drop(columns=["rad__const", "rad__gappy"]))
    pd.testing.assert_frame_equal(out[plain.columns], plain)


def test_unknown_site_at_transform_names_patient_and_site():
    X, batch, cov = cohort()
    est = ComBat(batch, cov).fit(X)
    new = X.iloc[:2].rename(index={"P000": "NEW1", "P001": "NEW2"})
    sites = pd.concat([batch, pd.Series({"NEW1": "Z-scanner", "NEW2": "A"})])
    covs = pd.concat([cov, cov.iloc[:2].set_axis(["NEW1", "NEW2"])])
    est.set_params(batch=sites, covariates=covs)
    with pytest.raises(SelectionError, match=r"site 'Z-scanner': NEW1.*cannot place a site"):
        est.transform(new)


def test_missing_patient_in_batch_or_covariates_is_named():
    X, batch, cov = cohort()
    with pytest.raises(SelectionError, match=r"1 patient\(s\) have no site in batch: P005"):
        ComBat(batch.drop("P005"), cov).fit(X)
    with pytest.raises(SelectionError, match=r"missing from covariates: P007, P009"):
        ComBat(batch, cov.drop(["P007", "P009"])).fit(X)
    gappy = cov.copy()
    gappy.loc["P011", "age"] = np.nan
    with pytest.raises(SelectionError, match=r"missing or infinite covariate value: P011"):
        ComBat(batch, gappy).fit(X)


def test_sites_needed_in_the_fit_rows():
    X, batch, cov = cohort()
    only_a = batch.index[batch == "A"]
    with pytest.raises(SelectionError, match="ComBat needs two sites.*'A'.*Stratify"):
        ComBat(batch, cov).fit(X.loc[only_a])
    lone_b = only_a.append(batch.index[batch == "B"][:1])
    with pytest.raises(SelectionError, match=r"at least 2 patients.*'B' \(P"):
        ComBat(batch, cov).fit(X.loc[lone_b])


def test_parameter_and_design_errors():
    X, batch, cov = cohort()
    with pytest.raises(SelectionError, match="parametric must be True.*not implemented"):
        ComBat(batch, parametric=False).fit(X)
    with pytest.raises(SelectionError, match="eps must be a float >= 0"):
        ComBat(batch, eps=-1).fit(X)
    with pytest.raises(SelectionError, match="covariates must be numeric.*one-hot"):
        ComBat(batch, cov.assign(subtype="HER2+")).fit(X)
    with pytest.raises(SelectionError, match="rank-deficient.*'flat'"):
        ComBat(batch, cov.assign(flat=1.0)).fit(X)
    with pytest.raises(SelectionError, match="X must be a DataFrame indexed by patient ID"):
        ComBat(batch).fit(X.to_numpy())


def test_numpy_input_with_positional_batch():
    X, batch, cov = cohort()
    ref = ComBat(batch, cov).fit_transform(X)
    est = ComBat(batch.to_numpy(), cov.to_numpy())
    out = est.fit_transform(X.to_numpy())
    np.testing.assert_allclose(out, ref.to_numpy(), atol=1e-12)
    assert est.covariate_columns_ == ["c0", "c1"]
    assert list(est.get_feature_names_out())[:2] == ["x0", "x1"]
    with pytest.raises(SelectionError, match="aligned with the rows by position"):
        est.transform(X.to_numpy()[:10])
    pandas_out = ComBat(batch, cov).set_output(transform="pandas").fit_transform(X)
    pd.testing.assert_frame_equal(pandas_out, ref)


def test_batch_none_is_the_identity():
    X, _, _ = cohort()
    est = ComBat().fit(X)
    pd.testing.assert_frame_equal(est.transform(X), X)
    assert not est.harmonised_.any()


def test_label_free_permuted_y_gives_identical_output():
    X, batch, cov = cohort()
    y = np.random.default_rng(3).integers(0, 2, len(X))
    a = ComBat(batch, cov).fit(X, y).transform(X)
    b = ComBat(batch, cov).fit(X, np.random.default_rng(4).permutation(y)).transform(X)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, ComBat(batch, cov).fit_transform(X))


def test_inside_cross_validation_recovers_signal_masked_by_sites():
    rng = np.random.default_rng(5)
    n, m, n_sites = 200, 30, 4
    ids = pd.Index([f"P{i:03d}" for i in range(n)])
    site = np.array([f"S{k}" for k in rng.integers(0, n_sites, n)])
    y = rng.integers(0, 2, n)
    # a weak signal on every feature; site offsets along the same direction (a scanner that
    # brightens every feature) and site scales, independent of pCR
    offsets = {s: rng.normal(0, 1.5) + rng.normal(0, 0.5, m) for s in np.unique(site)}
    scales = {s: rng.uniform(0.5, 2.5) for s in np.unique(site)}
    noise = rng.normal(size=(n, m)) * np.array([scales[s] for s in site])[:, None]
    values = 0.3 * y[:, None] + noise + np.vstack([offsets[s] for s in site])
    X = pd.DataFrame(values, index=ids, columns=[f"f{j}" for j in range(m)])
    batch = pd.Series(site, index=ids)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    model = LogisticRegression(C=0.1, max_iter=2000)
    raw = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=cv,
                          scoring="roc_auc").mean()
    harmonised = cross_val_score(make_pipeline(ComBat(batch), StandardScaler(), model), X, y,
                                 cv=cv, scoring="roc_auc").mean()
    # measured: raw 0.54, harmonised 0.79
    assert harmonised > 0.7 and harmonised > raw + 0.15, (raw, harmonised)


def test_demo_size_matrix():
    # the size of the demo run's radiomics + deep feature table
    rng = np.random.default_rng(6)
    n, m = 163, 1702
    ids = pd.Index([f"P{i:03d}" for i in range(n)])
    site = pd.Series(rng.choice(["A", "B", "C"], n), index=ids)
    shift = site.map({"A": 0.0, "B": 2.0, "C": -1.0}).to_numpy()[:, None]
    X = pd.DataFrame(rng.normal(size=(n, m)) + shift, index=ids,
                     columns=[f"rad__f{j}" for j in range(m)])
    cov = pd.DataFrame({"age": rng.normal(50, 10, n)}, index=ids)
    out = ComBat(site, cov).fit_transform(X)
    assert site_spread(out, site) < 0.1 * site_spread(X, site)
