"""The classifier registry (ten pipelines) and ClassBalanced, the balancing wrapper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

from workbench.errors import ConfigError
from workbench.models.balancing import ClassBalanced
from workbench.models.classifiers import CLASSIFIERS, LABELS, make_classifier, make_pipeline
from workbench.names import CLASSIFIER_NAMES as ALL_CLASSIFIERS


@pytest.fixture(scope="module")
def imbalanced() -> tuple[pd.DataFrame, pd.Series]:
    """60 patients, 15 pCR, a weak signal in two of four columns, scattered NaNs."""
    rng = np.random.default_rng(0)
    n = 60
    y = pd.Series((np.arange(n) % 4 == 0).astype(int), index=[f"P{i:02d}" for i in range(n)])
    X = pd.DataFrame(rng.standard_normal((n, 4)), index=y.index,
                     columns=["sig__radiomics", "sig__kinetic", "clin__age", "clin__her2_pos"])
    X["sig__radiomics"] += 1.5 * y
    X["clin__her2_pos"] = (rng.random(n) < 0.3).astype(float)
    X = X.mask(rng.random(X.shape) < 0.1)  # ~10 % missing, every column
    X.iloc[:3, 2] = np.nan
    return X, y


def test_registry_matches_the_config_and_has_labels():
    assert tuple(CLASSIFIERS) == ALL_CLASSIFIERS
    assert set(LABELS) == set(CLASSIFIERS)


@pytest.mark.parametrize("name", ALL_CLASSIFIERS)
def test_every_classifier_is_impute_scale_classify_and_predicts_probabilities(name, imbalanced):
    X, y = imbalanced
    pipe = make_pipeline(name, seed=0)
    assert isinstance(pipe, Pipeline)
    assert [step for step, _ in pipe.steps] == ["impute", "scale", "classifier"]
    pipe.fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.all((proba >= 0) & (proba <= 1)) and np.allclose(proba.sum(axis=1), 1)
    assert set(pipe.predict(X)) <= {0, 1}


def test_same_seed_same_probabilities():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.standard_normal((40, 3)), columns=["a", "b", "c"])
    y = (X["a"] + rng.standard_normal(40) > 0.5).astype(int)
    p1 = make_pipeline("rf", seed=3).fit(X, y).predict_proba(X)
    p2 = make_pipeline("rf", seed=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)


def test_unknown_classifier_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        make_classifier("random_forest")
    for name in ALL_CLASSIFIERS:
        assert name in str(err.value)
    assert "'random_forest'" in str(err.value)
    with pytest.raises(ConfigError):
        make_pipeline("svm")


@pytest.mark.parametrize(("name", "check"), [
    ("lr", lambda c: c.class_weight == "balanced"),
    ("svm_rbf", lambda c: c.estimator.class_weight == "balanced"),
    ("rf", lambda c: c.class_weight == "balanced"),
    ("extra_trees", lambda c: c.class_weight == "balanced"),
    ("lda", lambda c: list(c.priors) == [0.5, 0.5]),
    ("catboost", lambda c: c.get_params()["auto_class_weights"] == "Balanced"),
    ("knn", lambda c: isinstance(c, ClassBalanced) and c.method == "oversample"),
    ("mlp", lambda c: isinstance(c, ClassBalanced) and c.method == "oversample"),
    ("adaboost", lambda c: isinstance(c, ClassBalanced) and c.method == "sample_weight"),
    ("xgboost", lambda c: isinstance(c, ClassBalanced) and c.method == "scale_pos_weight"),
])
def test_every_classifier_balances_classes_when_asked(name, check):
    assert check(make_classifier(name, seed=0, balance="balanced"))


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_no_class_balancing_by_default(name):
    clf = make_classifier(name, seed=0)
    assert not isinstance(clf, ClassBalanced)
    params = clf.get_params()
    for key in ("class_weight", "estimator__class_weight", "auto_class_weights"):
        assert params.get(key) in (None, "none"), (name, key, params.get(key))
    if name == "lda":
        assert clf.priors is None


def test_recalibration_wraps_the_classifier_inside_the_pipeline():
    pipe = make_pipeline("rf", seed=0, recalibration="isotonic")
    clf = pipe.named_steps["classifier"]
    assert clf.method == "isotonic" and clf.estimator.__class__.__name__ == \
        "RandomForestClassifier"
    with pytest.raises(ConfigError, match="recalibration"):
        make_pipeline("lr", recalibration="beta")
    with pytest.raises(ConfigError, match="class balance"):
        make_classifier("lr", balance="weighted")


class _Recorder(ClassifierMixin, BaseEstimator):
    """Remembers what ``fit`` received."""

    def fit(self, X, y, sample_weight=None):
        self.X_seen_ = np.asarray(X)
        self.y_seen_ = np.asarray(y)
        self.sample_weight_ = sample_weight
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.tile([0.5, 0.5], (len(X), 1))

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def _skewed(n=50, n_pos=10):
    y = np.r_[np.ones(n_pos, int), np.zeros(n - n_pos, int)]
    X = pd.DataFrame({"label_copy": y.astype(float), "row": np.arange(n, dtype=float)})
    return X, pd.Series(y)


def test_oversampling_makes_classes_equal_and_keeps_rows_intact():
    X, y = _skewed()
    model = ClassBalanced(_Recorder(), method="oversample", random_state=0).fit(X, y)
    seen_X, seen_y = model.estimator_.X_seen_, model.estimator_.y_seen_
    assert np.bincount(seen_y).tolist() == [40, 40]
    np.testing.assert_array_equal(seen_X[:, 0], seen_y)  # each row kept with its own label
    assert set(seen_X[:, 1]) == set(range(50))  # every original row is still there
    assert model.estimator_.sample_weight_ is None
    np.testing.assert_array_equal(model.classes_, [0, 1])


def test_oversampling_is_seeded_and_leaves_the_template_unfitted():
    X, y = _skewed()
    template = _Recorder()
    a = ClassBalanced(template, method="oversample", random_state=5).fit(X, y)
    b = ClassBalanced(template, method="oversample", random_state=5).fit(X, y)
    np.testing.assert_array_equal(a.estimator_.X_seen_, b.estimator_.X_seen_)
    assert not hasattr(template, "X_seen_")  # fit works on a clone


def test_sample_weight_path_passes_balanced_weights():
    X, y = _skewed()
    model = ClassBalanced(_Recorder(), method="sample_weight").fit(X, y)
    w = model.estimator_.sample_weight_
    np.testing.assert_allclose(w, compute_sample_weight("balanced", y))
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    assert len(model.estimator_.y_seen_) == 50  # no resampling


def test_scale_pos_weight_is_set_for_xgboost():
    from xgboost import XGBClassifier

    X, y = _skewed()
    model = ClassBalanced(XGBClassifier(n_estimators=5, n_jobs=1, verbosity=0),
                          method="scale_pos_weight").fit(X, y)
    assert model.estimator_.get_params()["scale_pos_weight"] == pytest.approx(40 / 10)
    assert model.estimator.get_params()["scale_pos_weight"] is None  # template untouched
    assert model.predict_proba(X).shape == (50, 2)


def test_registry_xgboost_gets_its_weight_from_the_training_labels():
    X, y = _skewed(n=40, n_pos=8)
    pipe = make_pipeline("xgboost", seed=0, balance="balanced").fit(X, y)
    assert pipe.named_steps["classifier"].estimator_.get_params()["scale_pos_weight"] == 4.0


def test_unknown_balancing_method_is_named():
    X, y = _skewed()
    with pytest.raises(ValueError, match="method must be one of"):
        ClassBalanced(_Recorder(), method="smote").fit(X, y)


# sklearn's own check feeds NaN labels through an integer cast; its warning is not ours
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@parametrize_with_checks([
    ClassBalanced(LogisticRegression(), method="sample_weight"),
    ClassBalanced(KNeighborsClassifier(), method="oversample"),
])
def test_class_balanced_is_sklearn_compatible(estimator, check):
    check(estimator)
