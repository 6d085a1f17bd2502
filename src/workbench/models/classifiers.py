"""The ten classifiers, with the study's fixed hyper-parameters, as a registry.

Each entry builds a Pipeline: median imputation → z-score → classifier, with balanced
classes (``class_weight="balanced"`` where the algorithm has it, XGBoost
``scale_pos_weight``, CatBoost ``auto_class_weights="Balanced"``, balanced sample weights for
AdaBoost, equal priors for LDA, minority oversampling for kNN and MLP). Heavy libraries
(XGBoost, CatBoost) are imported only when their classifier is built.

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


def _lr(seed: int):
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=10_000,
                              random_state=seed)


def _lda(seed: int):
    return LinearDiscriminantAnalysis(solver="svd", priors=[0.5, 0.5])


def _svm(seed: int):
    # Platt probabilities from 5-fold CV decision values (what SVC(probability=True) did
    # internally before scikit-learn 1.9 deprecated it), one SVC refitted on all rows.
    svc = SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced", random_state=seed)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=5, ensemble=False)


def _knn(seed: int):
    return ClassBalanced(KNeighborsClassifier(n_neighbors=5, metric="euclidean"),
                         method="oversample", random_state=seed)


def _rf(seed: int):
    return RandomForestClassifier(n_estimators=500, criterion="gini", class_weight="balanced",
                                  random_state=seed, n_jobs=1)


def _et(seed: int):
    return ExtraTreesClassifier(n_estimators=500, criterion="gini", class_weight="balanced",
                                random_state=seed, n_jobs=1)


def _ada(seed: int):
    return ClassBalanced(AdaBoostClassifier(n_estimators=100, learning_rate=1.0,
                                            random_state=seed), method="sample_weight")


def _xgb(seed: int):
    from xgboost import XGBClassifier

    return ClassBalanced(XGBClassifier(n_estimators=300, max_depth=3, learning_rate=0.05,
                                       subsample=0.8, colsample_bytree=1.0,
                                       eval_metric="logloss", random_state=seed, n_jobs=1,
                                       verbosity=0), method="scale_pos_weight")


def _cat(seed: int):
    from catboost import CatBoostClassifier

    return CatBoostClassifier(iterations=300, depth=4, learning_rate=0.05,
                              auto_class_weights="Balanced", random_seed=seed, verbose=0,
                              thread_count=1, allow_writing_files=False)


def _mlp(seed: int):
    return ClassBalanced(MLPClassifier(hidden_layer_sizes=(100,), activation="relu",
                                       solver="lbfgs", alpha=1e-4, max_iter=2000,
                                       random_state=seed),
                         method="oversample", random_state=seed)


CLASSIFIERS: dict[str, Callable[[int], object]] = {
    "lr": _lr, "lda": _lda, "svm_rbf": _svm, "knn": _knn, "rf": _rf, "extra_trees": _et,
    "adaboost": _ada, "xgboost": _xgb, "catboost": _cat, "mlp": _mlp,
}
check_registry("workbench.models.classifiers.CLASSIFIERS", CLASSIFIERS, CLASSIFIER_NAMES)
#: Display labels (:data:`workbench.names.CLASSIFIER_LABELS`).
LABELS = CLASSIFIER_LABELS


def make_classifier(name: str, *, seed: int = 42):
    """The bare classifier registered as ``name``.

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
    return factory(seed)


def make_pipeline(name: str, *, seed: int = 42):
    """Median imputation → z-score → the classifier ``name`` (a scikit-learn Pipeline)."""
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                     ("scale", StandardScaler()),
                     ("classifier", make_classifier(name, seed=seed))])
