import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.feature_selection import SelectKBest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from workbench.evaluation.explain import ExplainError, explain, explainer_kind, shap_values


def _svc():
    return SVC(probability=True, random_state=0)


def _xgb():
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)


def _catboost():
    from catboost import CatBoostClassifier

    return CatBoostClassifier(iterations=20, depth=3, verbose=0, random_seed=0, thread_count=1,
                              allow_writing_files=False)


# name -> (factory, expected explainer, expected output space)
MODELS = {
    "LR": (lambda: LogisticRegression(), "linear", "log_odds"),
    "LDA": (lambda: LinearDiscriminantAnalysis(), "linear", "log_odds"),
    "SVC": (_svc, "kernel", "probability"),
    "KNN": (lambda: KNeighborsClassifier(5), "kernel", "probability"),
    "RF": (lambda: RandomForestClassifier(20, max_depth=4, random_state=0), "tree", "probability"),
    "ExtraTrees": (lambda: ExtraTreesClassifier(20, max_depth=4, random_state=0), "tree",
                   "probability"),
    "AdaBoost": (lambda: AdaBoostClassifier(n_estimators=20, random_state=0), "kernel",
                 "probability"),
    "XGBoost": (_xgb, "tree", "probability"),
    "CatBoost": (_catboost, "tree", "probability"),
    "MLP": (lambda: MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=300,
                                  random_state=0), "kernel", "probability"),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"rad__f{i}" for i in range(5)],
                     index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"))
    score = X["rad__f0"] + 0.7 * X["rad__f1"] * X["rad__f2"] + rng.normal(0, 0.7, n)
    y = (score > 0).astype(int)
    return X.iloc[:45], y.iloc[:45], X.iloc[45:]


def _pipeline(estimator):
    return make_pipeline(SimpleImputer(), StandardScaler(), estimator)


def _model_output(model, X, space):
    return model.decision_function(X) if space == "log_odds" else model.predict_proba(X)[:, 1]


# scikit-learn 1.9 deprecates SVC(probability=True) in favour of CalibratedClassifierCV
@pytest.mark.filterwarnings("ignore:The `probability` parameter:FutureWarning")
@pytest.mark.parametrize("name", list(MODELS))
def test_explainer_choice_and_additivity_for_the_ten_models(name, data):
    X_train, y_train, X_test = data
    factory, kind, space = MODELS[name]
    model = _pipeline(factory()).fit(X_train, y_train)
    assert explainer_kind(model) == kind
    e = explain(model, X_test, X_train, background_size=30)
    assert (e.explainer, e.output_space) == (kind, space)
    assert e.values.shape == X_test.shape
    assert list(e.values.columns) == list(X_test.columns)
    assert list(e.values.index) == list(X_test.index)
    np.testing.assert_allclose(e.model_output(), _model_output(model, X_test, space), atol=1e-6)


def _brute_force_shapley(f, x, background):
    """Exact interventional Shapley values of f at x against a background, by enumeration."""
    m = x.size
    value = {}
    for size in range(m + 1):
        for subset in itertools.combinations(range(m), size):
            rows = background.copy()
            rows[:, list(subset)] = x[list(subset)]
            value[subset] = f(rows).mean()
    phi = np.zeros(m)
    for i in range(m):
        for subset, v in value.items():
            if i in subset:
                continue
            s = len(subset)
            with_i = tuple(sorted((*subset, i)))
            weight = math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m)
            phi[i] += weight * (value[with_i] - v)
    return phi, value[()]


@pytest.mark.parametrize("name", ["RF", "KNN"])
def test_values_equal_exact_shapley_in_the_input_space(name, data):
    X_train, y_train, X_test = data
    model = _pipeline(MODELS[name][0]()).fit(X_train, y_train)
    # background_size >= n_train: the background is the whole training set
    e = explain(model, X_test.iloc[:3], X_train, background_size=1000)
    f = lambda A: model.predict_proba(pd.DataFrame(A, columns=X_train.columns))[:, 1]  # noqa: E731
    for pid in e.values.index:
        phi, base = _brute_force_shapley(f, X_test.loc[pid].to_numpy(), X_train.to_numpy())
        np.testing.assert_allclose(e.values.loc[pid], phi, atol=1e-6)
        assert e.base_value == pytest.approx(base, abs=1e-6)


def test_linear_values_are_coefficient_times_centred_input(data):
    X_train, y_train, X_test = data
    model = _pipeline(LogisticRegression()).fit(X_train, y_train)
    e = explain(model, X_test, X_train)
    z_test = model[:-1].transform(X_test)
    z_mean = model[:-1].transform(X_train).mean(axis=0)
    np.testing.assert_allclose(e.values.to_numpy(), (z_test - z_mean) * model[-1].coef_[0],
                               atol=1e-10)


def test_wide_and_long_tables(data):
    X_train, y_train, X_test = data
    X_test = X_test.copy()
    X_test.iloc[0, 2] = np.nan  # the imputer fills it; the long table reports the raw NaN
    model = _pipeline(RandomForestClassifier(10, random_state=0)).fit(X_train, y_train)
    wide = shap_values(model, X_test, X_train)
    assert list(wide.columns) == [*X_test.columns, "base_value"]
    assert wide.attrs == {"output_space": "probability", "explainer": "tree"}
    assert wide["base_value"].nunique() == 1
    long = explain(model, X_test, X_train).long()
    assert list(long.columns) == ["patient_id", "feature", "shap", "feature_value"]
    assert len(long) == X_test.size
    first = long[long.patient_id == X_test.index[0]].set_index("feature")
    assert np.isnan(first.loc["rad__f2", "feature_value"])
    assert first.loc["rad__f0", "feature_value"] == X_test.iloc[0, 0]
    np.testing.assert_allclose(first["shap"], wide.drop(columns="base_value").iloc[0])


def test_non_columnwise_pipeline_is_explained_model_agnostically(data):
    X_train, y_train, X_test = data
    model = make_pipeline(StandardScaler(), SelectKBest(k=3),
                          LogisticRegression()).fit(X_train, y_train)
    e = explain(model, X_test, X_train, background_size=20)
    assert (e.explainer, e.output_space) == ("kernel", "probability")
    assert list(e.values.columns) == list(X_test.columns)
    dropped = [c for c in X_test.columns if c not in model[:-1].get_feature_names_out()]
    np.testing.assert_allclose(e.values[dropped], 0, atol=1e-8)  # unused features get nothing
    np.testing.assert_allclose(e.model_output(), model.predict_proba(X_test)[:, 1], atol=1e-6)


def test_reproducible_and_leaves_global_rng_alone(data):
    X_train, y_train, X_test = data
    model = _pipeline(KNeighborsClassifier(5)).fit(X_train, y_train)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    a = explain(model, X_test, X_train, background_size=10, seed=1, nsamples=20)
    assert np.random.random() == expected_next
    b = explain(model, X_test, X_train, background_size=10, seed=1, nsamples=20)
    pd.testing.assert_frame_equal(a.values, b.values)


def test_plain_estimator_and_numpy_input(data):
    X_train, y_train, X_test = data
    model = RandomForestClassifier(10, random_state=0).fit(X_train.to_numpy(), y_train)
    e = explain(model, X_test.to_numpy(), X_train.to_numpy())
    assert list(e.values.columns) == [f"x{i}" for i in range(5)]
    np.testing.assert_allclose(e.model_output(), model.predict_proba(X_test.to_numpy())[:, 1],
                               atol=1e-6)
    with pytest.raises(ExplainError, match="same columns"):
        explain(model, X_test, X_train.iloc[:, ::-1])
