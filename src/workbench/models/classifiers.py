"""The ten classifiers, with the study's fixed hyper-parameters, as a registry.

Each entry builds a Pipeline: median imputation → z-score → classifier. Class balancing is
**off by default** (``protocol.class_balance: none``): a balanced fit estimates the risk of
a cohort with as many pCR as non-pCR patients, so its probabilities are systematically too
high for the minority class (on the embedded cohort the study's balanced models had
calibration slopes of 0.03-0.39) and a threshold or decision curve read from them misleads.
``class_balance: balanced`` restores the study's setting (``configs/paper.yaml``):
``class_weight="balanced"`` where the algorithm has it, XGBoost ``scale_pos_weight``,
CatBoost ``auto_class_weights="Balanced"``, balanced sample weights for AdaBoost, equal
priors for LDA, minority oversampling for kNN and MLP. ``protocol.recalibration`` (Platt or
isotonic) recalibrates inside the fold. Heavy libraries (XGBoost, CatBoost) are imported
only when their classifier is built.

============  ==============================================================================
name          classifier
============  ==============================================================================
lr            LogisticRegression, L2, C = 1
lda           LinearDiscriminantAnalysis, SVD solver, equal class priors
svm_rbf       SVC, RBF kernel, C = 1, gamma = "scale", Platt probabilities
knn           KNeighborsClassifier, k = 5, Euclidean (balanced by oversampling)
rf            RandomForest, 500 trees, Gini
extra_trees   ExtraTrees, 500 trees, Gini
adaboost      AdaBoost (decision stumps), 100 estimators, learning rate 1 (balanced weights)
xgboost       XGBoost, 300 trees, depth 3, learning rate 0.05, subsample 0.8
catboost      CatBoost, 300 iterations, depth 4, learning rate 0.05
mlp           MLP, one hidden layer of 100 ReLU, L-BFGS, L2 1e-4 (balanced by oversampling)
============  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from workbench.errors import ConfigError
from workbench.models.balancing import ClassBalanced
from workbench.names import CLASSIFIER_LABELS, CLASSIFIER_NAMES, check_registry


def _lr(seed: int, balanced: bool):
    return LogisticRegression(C=1.0, class_weight="balanced" if balanced else None,
                              max_iter=10_000, random_state=seed)


def _lda(seed: int, balanced: bool):
    return LinearDiscriminantAnalysis(solver="svd", priors=[0.5, 0.5] if balanced else None)


def _svm(seed: int, balanced: bool):
    # Platt probabilities from 5-fold CV decision values (what SVC(probability=True) did
    # internally before scikit-learn 1.9 deprecated it), one SVC refitted on all rows.
    svc = SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced" if balanced else None,
              random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=5, ensemble=False)


def _balanced(est, balanced: bool, method: str, seed: int):
    return ClassBalanced(est, method=method, random_state=seed) if balanced else est


def _knn(seed: int, balanced: bool):
    return _balanced(KNeighborsClassifier(n_neighbors=5, metric="euclidean"), balanced,
                     "oversample", seed)


def _rf(seed: int, balanced: bool):
    return RandomForestClassifier(n_estimators=500, criterion="gini",
                                  class_weight="balanced" if balanced else None,
                                  random_state=seed, n_jobs=1)


def _et(seed: int, balanced: bool):
    return ExtraTreesClassifier(n_estimators=500, criterion="gini",
                                class_weight="balanced" if balanced else None,
                                random_state=seed, n_jobs=1)


def _ada(seed: int, balanced: bool):
    return _balanced(AdaBoostClassifier(n_estimators=100, learning_rate=1.0,
                                        random_state=seed), balanced, "sample_weight", seed)


def _xgb(seed: int, balanced: bool):
    from xgboost import XGBClassifier

    return _balanced(XGBClassifier(n_estimators=300, max_depth=3, learning_rate=0.05,
                                   subsample=0.8, colsample_bytree=1.0, eval_metric="logloss",
                                   random_state=seed, n_jobs=1, verbosity=0),
                     balanced, "scale_pos_weight", seed)


def _cat(seed: int, balanced: bool):
    from catboost import CatBoostClassifier

    return CatBoostClassifier(iterations=300, depth=4, learning_rate=0.05,
                              auto_class_weights="Balanced" if balanced else None,
                              random_seed=seed, verbose=0, thread_count=1,
                              allow_writing_files=False)


def _mlp(seed: int, balanced: bool):
    return _balanced(MLPClassifier(hidden_layer_sizes=(100,), activation="relu",
                                   solver="lbfgs", alpha=1e-4, max_iter=2000,
                                   random_state=seed), balanced, "oversample", seed)


CLASSIFIERS: dict[str, Callable[[int, bool], object]] = {
    "lr": _lr, "lda": _lda, "svm_rbf": _svm, "knn": _knn, "rf": _rf, "extra_trees": _et,
    "adaboost": _ada, "xgboost": _xgb, "catboost": _cat, "mlp": _mlp,
}
check_registry("workbench.models.classifiers.CLASSIFIERS", CLASSIFIERS, CLASSIFIER_NAMES)
#: Display labels (:data:`workbench.names.CLASSIFIER_LABELS`).
LABELS = CLASSIFIER_LABELS


BALANCE = ("none", "balanced")
RECALIBRATION = ("none", "platt", "isotonic")


def make_classifier(name: str, *, seed: int = 42, balance: str = "none"):
    """The bare classifier registered as ``name``; ``balance="balanced"`` gives the study's
    class weighting (see the module docstring).

    Raises
    ------
    ConfigError
        For an unknown name, listing the valid ones.
    """
    try:
        factory = CLASSIFIERS[name]
    except KeyError:
        raise ConfigError(f"unknown classifier {name!r}; valid names: "
                          f"{', '.join(CLASSIFIERS)}", step="config") from None
    if balance not in BALANCE:
        raise ConfigError(f"class balance must be one of {BALANCE}, got {balance!r}",
                          step="config")
    return factory(seed, balance == "balanced")


def make_pipeline(name: str, *, seed: int = 42, balance: str = "none",
                  recalibration: str = "none"):
    """Median imputation → z-score → the classifier ``name`` (a scikit-learn Pipeline).

    ``recalibration`` ``"platt"`` or ``"isotonic"`` wraps the classifier in a
    :class:`~sklearn.calibration.CalibratedClassifierCV` (5 internal folds, one model
    refitted on all rows): fitted on the pipeline's training rows only, so inside every CV
    fold.
    """
    if recalibration not in RECALIBRATION:
        raise ConfigError(f"recalibration must be one of {RECALIBRATION}, got "
                          f"{recalibration!r}", step="config")
    clf = make_classifier(name, seed=seed, balance=balance)
    if recalibration != "none":
        clf = CalibratedClassifierCV(clf, method="sigmoid" if recalibration == "platt"
                                     else "isotonic", cv=5, ensemble=False)
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler()),
                     ("classifier", clf)])
