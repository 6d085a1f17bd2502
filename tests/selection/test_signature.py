"""Signature, the four-step selection pipeline, its trace and the honest-CV property."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from workbench.selection import (
    LassoSelector,
    SelectionError,
    Signature,
    UnivariateFilter,
    VarianceFilter,
    selection_pipeline,
    selection_trace,
)


@pytest.fixture
def informative() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=120, n_features=60, n_informative=4, n_redundant=0,
                               class_sep=1.5, shuffle=False, random_state=0)
    df = pd.DataFrame(X, columns=[f"rad__f{i:02d}" for i in range(60)],
                      index=[f"P{i:03d}" for i in range(120)])
    df["rad__const"] = 1.0
    df["rad__copy"] = df["rad__f00"]
    df["rad__nan"] = np.nan
    return df, y


def test_signature_is_standardised_logistic_score():
    X, y = make_classification(n_samples=80, n_features=3, n_informative=3, n_redundant=0,
                               random_state=1)
    sig = Signature(name="kinetic").fit(X, y)
    out = sig.transform(X)
    assert out.shape == (80, 1)
    ref = LogisticRegression().fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(out[:, 0], ref.decision_function(StandardScaler()
                                                                .fit_transform(X)), rtol=1e-6)
    np.testing.assert_allclose(sig.coef_, ref.coef_.ravel(), rtol=1e-6)
    assert list(sig.get_feature_names_out()) == ["sig__kinetic"]


def test_signature_dataframe_keeps_index():
    X, y = make_classification(n_samples=40, n_features=2, n_informative=2, n_redundant=0,
                               random_state=2)
    df = pd.DataFrame(X, columns=["a", "b"], index=[f"P{i}" for i in range(40)])
    out = Signature(name="dl_resnet50").fit(df, y).transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["sig__dl_resnet50"] and out.index.equals(df.index)


@pytest.mark.parametrize("params, match", [
    ({"name": ""}, "parameter name must be a non-empty str"),
    ({"C": 0}, "parameter C must be a float > 0, got 0"),
])
def test_signature_bad_parameters(params, match):
    X, y = np.eye(4), np.array([0, 0, 1, 1])
    with pytest.raises(SelectionError, match=match):
        Signature(**params).fit(X, y)


def test_signature_single_class_is_clear():
    with pytest.raises(SelectionError, match="one class only"):
        Signature().fit(np.random.default_rng(0).normal(size=(10, 2)), np.ones(10))


def test_selection_pipeline_steps_and_pandas_output(informative):
    df, y = informative
    pipe = selection_pipeline("radiomics", lasso_kwargs={"alphas": 30, "cv": 5})
    assert [name for name, _ in pipe.steps] == ["variance", "univariate", "lasso", "signature"]
    assert isinstance(pipe.named_steps["variance"], VarianceFilter)
    assert isinstance(pipe.named_steps["univariate"], UnivariateFilter)
    assert pipe.named_steps["univariate"].keep_at_least == 1
    assert isinstance(pipe.named_steps["lasso"], LassoSelector)
    out = pipe.fit_transform(df, y)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["sig__radiomics"] and out.index.equals(df.index)
    assert list(pipe.get_feature_names_out()) == ["sig__radiomics"]
    assert roc_auc_score(y, out["sig__radiomics"]) > 0.75  # training AUC
    dropped = pipe.named_steps["variance"].dropped_
    assert set(dropped) == {"rad__const", "rad__copy", "rad__nan"}
    selected = set(pipe.named_steps["lasso"].selected_)
    assert selected & {f"rad__f{i:02d}" for i in range(4)}


def test_selection_trace_is_tidy(informative):
    df, y = informative
    pipe = selection_pipeline("radiomics", lasso_kwargs={"alphas": 30, "cv": 5}).fit(df, y)
    trace = selection_trace(pipe)
    assert list(trace.columns) == ["stage", "feature", "kept", "test", "p", "coefficient",
                                   "reason"]
    assert list(trace["stage"].unique()) == ["variance", "univariate", "lasso", "signature"]
    variance = trace[trace["stage"] == "variance"].set_index("feature")
    assert len(variance) == df.shape[1]
    assert not variance.loc["rad__copy", "kept"]
    assert variance.loc["rad__copy", "reason"] == "duplicate of rad__f00"
    univariate = trace[trace["stage"] == "univariate"]
    assert univariate["test"].isin(["t", "welch", "mannwhitney", "skipped"]).all()
    assert univariate["p"].notna().all()
    lasso = trace[trace["stage"] == "lasso"]
    assert list(lasso.loc[lasso["kept"], "feature"]) == list(pipe.named_steps["lasso"].selected_)
    assert (lasso.loc[~lasso["kept"], "coefficient"] == 0).all()
    signature = trace[trace["stage"] == "signature"]
    assert list(signature["feature"]) == list(pipe.named_steps["lasso"].selected_)
    np.testing.assert_allclose(signature["coefficient"], pipe.named_steps["signature"].coef_)


def test_pipeline_survives_an_uninformative_feature_set():
    """Nothing passes the filters: the pipeline still yields a signature, with warnings."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde"))
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    pipe = selection_pipeline("noise", alpha=1e-6, lasso_kwargs={"alphas": 10, "cv": 3,
                                                                 "alpha_min": 0.5})
    with pytest.warns(UserWarning):
        out = pipe.fit_transform(df, y)
    assert list(out.columns) == ["sig__noise"]
    assert pipe.named_steps["univariate"].support_.sum() == 1
    assert pipe.named_steps["lasso"].fallback_used_


def test_pipeline_all_constant_features_is_explained():
    df = pd.DataFrame(np.ones((40, 3)), columns=["a", "b", "c"])
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    with pytest.raises(SelectionError, match=r"0 feature\(s\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selection_pipeline("flat").fit(df, y)


def test_pipeline_single_class_is_explained(informative):
    df, _ = informative
    with pytest.raises(SelectionError, match="one class only"):
        selection_pipeline("radiomics").fit(df, np.zeros(len(df), int))


@pytest.mark.slow
def test_cross_validated_pipeline_on_pure_noise_is_chance():
    """The honest protocol: selection refitted inside every fold cannot find signal in noise.

    n=150, 2,000 noise features, 5 folds; the signature's AUC on held-out folds is ~0.5.
    (Selecting on all data first and cross-validating afterwards would score far above.)
    """
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(150, 2000)),
                      columns=[f"rad__f{i:04d}" for i in range(2000)])
    y = (rng.random(150) < 0.3).astype(int)

    def signature_auc(estimator, X, y_true):
        return roc_auc_score(y_true, np.asarray(estimator.transform(X))[:, 0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fallbacks on noise are expected
        scores = cross_val_score(selection_pipeline("radiomics"), df, y, scoring=signature_auc,
                                 cv=StratifiedKFold(5, shuffle=True, random_state=0))
    print(f"noise AUC per fold: {np.round(scores, 3)}; mean {scores.mean():.3f}")
    assert abs(scores.mean() - 0.5) <= 0.12
