"""SHAP explanations for any fitted binary classifier or Pipeline, in its input features.

Which explainer (final estimator's class name looked up in :data:`EXPLAINER_KINDS`):

* ``"linear"`` — LogisticRegression, LDA: ``shap.LinearExplainer`` (exact, interventional);
  ``output_space = "log_odds"`` (the ``decision_function``).
* ``"tree"`` — RandomForest, ExtraTrees, XGBoost, CatBoost (also DecisionTree,
  GradientBoosting, LightGBM): ``shap.TreeExplainer`` with ``feature_perturbation=
  "interventional"`` and ``model_output="probability"`` (exact);
  ``output_space = "probability"`` of pCR.
* ``"kernel"`` — everything else (SVM, kNN, AdaBoost, MLP, calibrated wrappers...):
  ``shap.KernelExplainer`` on ``predict_proba[:, 1]``; ``output_space = "probability"``.

Probability is explained wherever the explainer supports it exactly; the linear explainer is
exact only on the linear predictor, so linear models are explained in log-odds (the sign and
ranking of attributions are the same; magnitudes are on the logit scale).

**Pipelines** (imputer → scaler → classifier): the preprocessing steps are applied to the
training and test data and the final estimator is explained on the transformed data. This
is done only when the preprocessing maps each input feature to one output feature of the
same name (``get_feature_names_out``): then an attribution to transformed column *j* is an
attribution to input feature *j*, and the ``feature_value`` reported is the raw input value.
Otherwise (a step adds, drops or mixes columns) the whole pipeline is explained with the
model-agnostic explainer in the input space.

**Background** (the reference distribution that "absent" features are drawn from): a seeded
random sample of ``background_size`` training patients for the tree and kernel
explainers; the full training mean for the linear explainer (exact and cheap). The base
value is the mean model output over that background, so that, for every patient,
``base_value + sum(shap) = model output`` in ``output_space`` (up to float error for all
three explainers: KernelSHAP enforces the sum as a constraint of its weighted regression).
KernelSHAP is used rather than the permutation explainer because the latter JIT-compiles its
masker with numba on first use (10–20 s per process on a 2-core machine), and because it is exact for the small
signatures we explain (every coalition enumerated up to ~11 features).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from workbench.errors import WorkbenchError

#: Final-estimator class name -> explainer kind. Names, not classes, so that XGBoost and
#: CatBoost are not imported unless used.
EXPLAINER_KINDS: dict[str, str] = {
    "LogisticRegression": "linear",
    "LogisticRegressionCV": "linear",
    "LinearDiscriminantAnalysis": "linear",
    "RandomForestClassifier": "tree",
    "ExtraTreesClassifier": "tree",
    "DecisionTreeClassifier": "tree",
    "GradientBoostingClassifier": "tree",
    "XGBClassifier": "tree",
    "CatBoostClassifier": "tree",
    "LGBMClassifier": "tree",
}
#: Explainer kind -> the space its values are in.
OUTPUT_SPACES = {"linear": "log_odds", "tree": "probability", "kernel": "probability"}


class ExplainError(WorkbenchError):
    """A model cannot be explained with the given data."""


@dataclass(frozen=True)
class ShapExplanation:
    """SHAP values of a set of patients.

    Attributes
    ----------
    values
        Patients × input features, indexed like ``X_test``.
    base_value
        Mean model output over the background, in ``output_space``.
    output_space
        ``"probability"`` (of pCR) or ``"log_odds"``.
    explainer
        ``"linear"``, ``"tree"`` or ``"kernel"``.
    feature_values
        The explained patients' raw input features (same shape as ``values``).
    """

    values: pd.DataFrame
    base_value: float
    output_space: str
    explainer: str
    feature_values: pd.DataFrame

    def wide(self) -> pd.DataFrame:
        """Patients × features plus a ``base_value`` column; ``attrs`` record the space."""
        out = self.values.copy()
        out["base_value"] = self.base_value
        out.attrs.update(output_space=self.output_space, explainer=self.explainer)
        return out

    def long(self) -> pd.DataFrame:
        """Tidy table ``patient_id, feature, shap, feature_value`` for the run directory."""
        ids = self.values.index.to_numpy()
        n, k = self.values.shape
        return pd.DataFrame({
            "patient_id": np.repeat(ids, k),
            "feature": np.tile(self.values.columns.to_numpy(), n),
            "shap": self.values.to_numpy(dtype=float).ravel(),
            "feature_value": self.feature_values.to_numpy(dtype=float).ravel(),
        })

    def model_output(self) -> pd.Series:
        """``base_value + sum(shap)`` per patient (the reconstructed model output)."""
        return self.values.sum(axis=1) + self.base_value


def _shap():
    """Import shap lazily (slow import), hiding the matplotlib deprecation noise of its import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import shap
    return shap


def _final_estimator(model):
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def explainer_kind(model) -> str:
    """Explainer kind used for ``model`` (a classifier or a Pipeline ending in one)."""
    return EXPLAINER_KINDS.get(type(_final_estimator(model)).__name__, "kernel")


def _as_frame(X, columns=None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise ExplainError(f"X must be 2-D, got shape {arr.shape}.", step="shap")
    cols = list(columns) if columns is not None else [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


def _split_pipeline(model, X_train: pd.DataFrame, X_test: pd.DataFrame):
    """Return (estimator, train, test, kind): preprocessing applied when it is column-wise."""
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return model, X_train, X_test, explainer_kind(model)
    pre, est = model[:-1], model.steps[-1][1]
    try:
        names = [str(c) for c in pre.get_feature_names_out(list(map(str, X_train.columns)))]
    except Exception:  # a step without get_feature_names_out: cannot prove a 1:1 mapping
        names = None
    if names != list(map(str, X_train.columns)):
        return model, X_train, X_test, "kernel"
    cols = X_train.columns
    t_train = pd.DataFrame(np.asarray(pre.transform(X_train), dtype=float), columns=cols,
                           index=X_train.index)
    t_test = pd.DataFrame(np.asarray(pre.transform(X_test), dtype=float), columns=cols,
                          index=X_test.index)
    return est, t_train, t_test, explainer_kind(est)


def _positive_column(est) -> int:
    classes = list(getattr(est, "classes_", [0, 1]))
    if len(classes) != 2:
        raise ExplainError(f"only binary classifiers are supported, got classes {classes}.",
                           step="shap")
    return classes.index(1) if 1 in classes else 1


def _predict_positive(est, columns):
    """``f(A) = predict_proba(A)[:, positive]`` accepting numpy rows from SHAP."""
    pos = _positive_column(est)
    named = hasattr(est, "feature_names_in_")

    def f(A):
        data = pd.DataFrame(A, columns=columns) if named else np.asarray(A, dtype=float)
        return est.predict_proba(data)[:, pos]

    return f


def _explain_linear(est, train: pd.DataFrame, test: pd.DataFrame):
    shap = _shap()

    X = train.to_numpy(dtype=float)
    explainer = shap.LinearExplainer(est, (X.mean(axis=0), np.atleast_2d(np.cov(X.T))))
    values = np.asarray(explainer.shap_values(test.to_numpy(dtype=float)), dtype=float)
    base = float(np.ravel(explainer.expected_value)[0])
    return values.reshape(len(test), -1), base


def _explain_tree(est, background: np.ndarray, test: pd.DataFrame):
    shap = _shap()

    explainer = shap.TreeExplainer(est, data=background, feature_perturbation="interventional",
                                   model_output="probability")
    values = np.asarray(explainer.shap_values(test.to_numpy(dtype=float)), dtype=float)
    base = np.ravel(explainer.expected_value)
    if values.ndim == 3:  # one output per class (scikit-learn forests): keep the positive one
        pos = _positive_column(est)
        return values[:, :, pos], float(base[pos])
    return values, float(base[-1])


def _explain_kernel(model, background: np.ndarray, test: pd.DataFrame, *, seed: int,
                    nsamples: int | str):
    shap = _shap()

    f = _predict_positive(model, list(test.columns))
    state = np.random.get_state()  # KernelSHAP samples coalitions from numpy's global
    np.random.seed(seed)            # generator: seed it for reproducibility, then restore it
    try:
        explainer = shap.KernelExplainer(f, background)
        values = explainer.shap_values(test.to_numpy(dtype=float), nsamples=nsamples,
                                       l1_reg=False, silent=True)
    finally:
        np.random.set_state(state)
    return np.asarray(values, dtype=float).reshape(len(test), -1), float(
        np.ravel(explainer.expected_value)[0])


def explain(model, X_test, X_train, *, background_size: int = 50, seed: int = 0,
            nsamples: int | str = "auto") -> ShapExplanation:
    """SHAP values of ``X_test`` patients for a fitted binary classifier or Pipeline.

    Parameters
    ----------
    model
        Fitted scikit-learn-compatible classifier or Pipeline (labels 0/1).
    X_test
        Patients to explain (DataFrame indexed by patient id, columns = input features).
    X_train
        Training features of the same columns: the background distribution.
    background_size
        Training patients sampled (seeded) as background for the tree and kernel explainers.
    seed
        Seed of the background sample and of KernelSHAP's coalition sampling.
    nsamples
        Coalitions evaluated per patient by the model-agnostic KernelSHAP explainer
        (``"auto"`` = 2 · n_features + 2048; every coalition is enumerated, so values are
        exact, when 2^n_features − 2 fits). Cost: ``nsamples · background_size`` predictions
        per patient.

    Returns
    -------
    ShapExplanation
        See the module docstring for the explainer and output space of each model family.
    """
    X_test = _as_frame(X_test, getattr(model, "feature_names_in_", None))
    X_train = _as_frame(X_train, X_test.columns)
    if list(X_train.columns) != list(X_test.columns):
        raise ExplainError("X_train and X_test must have the same columns in the same order.",
                           step="shap")
    if int(background_size) < 1:
        raise ExplainError(f"background_size must be >= 1, got {background_size}.", step="shap")
    est, train, test, kind = _split_pipeline(model, X_train, X_test)
    rng = np.random.default_rng(seed)
    n_bg = min(int(background_size), len(train))
    background = train.to_numpy(dtype=float)[np.sort(rng.choice(len(train), n_bg, replace=False))]
    if kind == "linear":
        values, base = _explain_linear(est, train, test)
    elif kind == "tree":
        values, base = _explain_tree(est, background, test)
    else:
        values, base = _explain_kernel(est, background, test, seed=seed, nsamples=nsamples)
    frame = pd.DataFrame(values, index=X_test.index, columns=X_test.columns)
    return ShapExplanation(frame, base, OUTPUT_SPACES[kind], kind, X_test.copy())


def shap_values(model, X_test, X_train, *, background_size: int = 50,
                seed: int = 0) -> pd.DataFrame:
    """SHAP values as patients × features plus a ``base_value`` column.

    Shortcut for ``explain(...).wide()``; ``attrs["output_space"]`` and
    ``attrs["explainer"]`` say what the numbers mean. Use :func:`explain` and
    :meth:`ShapExplanation.long` for the tidy table written to the run directory.
    """
    return explain(model, X_test, X_train, background_size=background_size, seed=seed).wide()
