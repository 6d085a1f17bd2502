"""Refit a saved model's pipeline on the whole development cohort, for deployment.

The model files of a run are fitted on the 70 % training split, so that the 30 % test split
and the cross-validation give honest estimates. A model carried to another site is better
fitted on every labelled development patient; its performance is then estimated by the same
honest numbers of the run (they describe the procedure, not this one fit), and the model file
says so: ``metadata["fitted_on"]`` and ``metadata["estimates_from"]``.

Every model file a run or a refit writes also records its ``model_format`` and the versions
that wrote it; :func:`check_model_file` refuses one written by a newer format, or an image
model without its run config (its extraction settings would be guessed), with a clear message.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import sklearn

import workbench
from workbench.errors import WorkbenchError
from workbench.models.feature_sets import FEATURE_SETS, block_columns
from workbench.models.fusion import FusionModel, assemble
from workbench.models.strategy_runs import strategy_design
from workbench.names import MODEL_STRATEGIES

__all__ = ["MODEL_FORMAT", "check_model_file", "model_metadata", "needs_image_features",
           "refit_on_development"]


def needs_image_features(model: FusionModel) -> bool:
    """Whether the model reads image features (a block, or a strategy's raw image columns)."""
    raw = [c for c in model.design_columns if not c.startswith(("clin__", "sig__"))]
    return bool(model.blocks) or bool(raw)


#: Version of what a run writes into a model file's metadata (``model_format``): 2 adds
#: ``fitted_on`` and the versions; files without the key are format 1 (config, seed, training
#: patients, warning), still read.
MODEL_FORMAT = 2


def model_metadata(version: str | None = None) -> dict:
    """The format and versions a run records in every model file it saves."""
    return {"model_format": MODEL_FORMAT,
            "versions": {"workbench": version or workbench.__version__,
                         "scikit-learn": sklearn.__version__}}


def check_model_file(model: FusionModel, source: str) -> list[str]:
    """Refuse a model file this workbench cannot use correctly; return notes on one it can
    (another scikit-learn version).

    Raises
    ------
    WorkbenchError
        A file written by a newer workbench (a later ``model_format``), or an image model
        whose file holds no run config (its extraction settings would be guessed).
    """
    meta = model.metadata or {}
    fmt = int(meta.get("model_format", 1))
    written = (meta.get("versions") or {}).get("workbench", "an older version")
    if fmt > MODEL_FORMAT:
        raise WorkbenchError(f"model file format {fmt} was written by workbench {written}; "
                             f"this workbench ({workbench.__version__}) reads formats up to "
                             f"{MODEL_FORMAT}: upgrade, or refit the model with this version",
                             step="model file", path=source)
    if needs_image_features(model) and not meta.get("config"):
        raise WorkbenchError("model file holds no run config (written by an older "
                             "workbench): the settings its image features were extracted "
                             "with are unknown, and default ones would silently differ; "
                             "refit the model with this version", step="model file",
                             path=source)
    notes = []
    trained = (meta.get("versions") or {}).get("scikit-learn")
    if trained and trained.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        notes.append(f"model fitted with scikit-learn {trained}, read with "
                     f"{sklearn.__version__}: predictions may differ slightly")
    return notes


def _fit(est, X: pd.DataFrame, y: pd.Series, what: str):
    """``est`` fitted on ``X, y``; a failure names ``what`` and the patient count."""
    try:
        return est.fit(X, y)
    except (ValueError, WorkbenchError) as exc:
        raise WorkbenchError(f"refitting {what} on {len(y)} patients failed: {exc}",
                             step="refit") from exc


def refit_on_development(model: FusionModel, features: pd.DataFrame, clinical: pd.DataFrame,
                         y: pd.Series, *, selector: Callable, make_clf: Callable,
                         make_strategy: Callable, seed: int) -> FusionModel:
    """The same pipeline as ``model`` (feature set, selection, classifier or strategy, with
    the factories of its own config) fitted on every patient of ``y``.

    Raises
    ------
    WorkbenchError
        When a block's selection keeps nothing or the classifier cannot fit, naming which.
    """
    fs = FEATURE_SETS[model.feature_set]
    ids = list(y.index)
    what = f"{model.feature_set}/{model.classifier_name}"
    if model.classifier_name in MODEL_STRATEGIES:
        X = strategy_design(features, clinical, fs, ids)
        est = _fit(make_strategy(model.classifier_name, seed), X, y.loc[ids], what)
        columns = list(getattr(est, "feature_names_in_", X.columns))
        return FusionModel(blocks={}, classifier=est, design_columns=columns, block_inputs={},
                           feature_set=model.feature_set,
                           classifier_name=model.classifier_name,
                           protocol=model.protocol).fit(None)
    fitted, signatures = {}, []
    for block in fs.blocks:
        cols = block_columns(features.columns, block)
        est = _fit(selector(block, seed), features.loc[ids, cols], y.loc[ids],
                   f"block '{block}' of {model.feature_set}")
        fitted[block] = est
        values = np.asarray(est.transform(features.loc[ids, cols]), dtype=float)[:, 0]
        signatures.append(pd.Series(values, index=ids, name=f"sig__{block}"))
    parts = signatures + ([clinical.loc[ids]] if fs.clinical else [])
    design = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=ids)
    design = design[[c for c in model.design_columns if c in design.columns]]
    clf = _fit(make_clf(model.classifier_name, seed), design, y.loc[ids], what)
    return assemble(fitted, clf, features, list(design.columns), feature_set=model.feature_set,
                    classifier_name=model.classifier_name, protocol=model.protocol)
