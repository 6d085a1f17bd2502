"""A fitted fusion model: block signatures + clinical columns → classifier, as one object.

:class:`FusionModel` is what ``workbench predict`` applies to a new cohort: it takes a raw
feature table (block columns by prefix plus ``clin__`` columns), computes each block's
signature with the selection pipeline fitted on the training patients, and returns the
classifier's probability of pCR. It is saved with skops (never pickle) by :func:`save_model`
and read back by :func:`load_model`, which first checks every type in the file against the
exact list in :mod:`workbench.models.model_file` and refuses anything else unloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from workbench.errors import WorkbenchError
from workbench.models.feature_sets import CLINICAL_PREFIX, block_columns
from workbench.models.model_file import audit_model_file


class FusionModel(ClassifierMixin, BaseEstimator):
    """Signatures of fitted blocks (+ clinical columns) fed to a fitted classifier pipeline.

    Parameters
    ----------
    blocks
        ``{block: fitted selection pipeline}`` (each maps its columns to ``sig__<block>``).
    classifier
        Fitted classifier pipeline over ``design_columns``.
    design_columns
        Column order the classifier was fitted on (signatures, then clinical columns).
    block_inputs
        ``{block: [input columns]}`` as seen at fit time.
    feature_set, classifier_name, protocol
        What the model is, for provenance.
    metadata
        Free-form provenance (config, versions, weights source, training patients...).
    """

    def __init__(self, blocks=None, classifier=None, design_columns=None, block_inputs=None,
                 feature_set="", classifier_name="", protocol="honest", metadata=None):
        self.blocks = blocks
        self.classifier = classifier
        self.design_columns = design_columns
        self.block_inputs = block_inputs
        self.feature_set = feature_set
        self.classifier_name = classifier_name
        self.protocol = protocol
        self.metadata = metadata

    def fit(self, X, y=None):  # assembled from already fitted parts
        self.classes_ = np.array([0, 1])
        return self

    def design(self, features: pd.DataFrame) -> pd.DataFrame:
        """Signatures + clinical columns in the order the classifier was fitted on."""
        cols = {}
        for block, est in (self.blocks or {}).items():
            wanted = self.block_inputs[block]
            missing = [c for c in wanted if c not in features.columns]
            if missing:
                raise WorkbenchError(f"feature table lacks {len(missing)} '{block}' columns "
                                     f"the model was trained on (e.g. {missing[:3]}); extract "
                                     "features with the model's settings", step="predict")
            out = est.transform(features[wanted])
            cols[f"sig__{block}"] = np.asarray(out, dtype=float)[:, 0]
        design = pd.DataFrame(cols, index=features.index)
        clin = [c for c in self.design_columns if c.startswith(CLINICAL_PREFIX)]
        for c in clin:
            design[c] = features[c] if c in features.columns else np.nan
        # a strategy model (no blocks) reads the raw feature columns it was fitted on
        raw = [c for c in self.design_columns
               if not c.startswith(CLINICAL_PREFIX) and c not in design.columns]
        missing = [c for c in raw if c not in features.columns]
        if missing:
            raise WorkbenchError(f"feature table lacks {len(missing)} columns the model was "
                                 f"trained on (e.g. {missing[:3]}); extract features with the "
                                 "model's settings", step="predict")
        if raw:
            design = pd.concat([design, features[raw]], axis=1)
        return design[list(self.design_columns)]

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "classes_")
        return self.classifier.predict_proba(self.design(features))

    def predict(self, features: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(features)[:, 1] >= threshold).astype(int)


def assemble(fitted_blocks: dict, classifier, features: pd.DataFrame, design_columns,
             *, feature_set: str, classifier_name: str, protocol: str,
             metadata: dict | None = None) -> FusionModel:
    """Build a :class:`FusionModel` from the parts a protocol fitted."""
    used = [c.removeprefix("sig__") for c in design_columns if c.startswith("sig__")]
    model = FusionModel(blocks={b: fitted_blocks[b] for b in used}, classifier=classifier,
                        design_columns=list(design_columns),
                        block_inputs={b: block_columns(features.columns, b) for b in used},
                        feature_set=feature_set, classifier_name=classifier_name,
                        protocol=protocol, metadata=metadata or {})
    return model.fit(None)


def _compact(values) -> np.ndarray:
    """Numbers and booleans as they are; anything else as a fixed-width str array.

    skops writes a numeric or str ndarray as one binary .npy member, but every element of a
    list or object array as its own JSON node: a univariate table over 10,000 features then
    weighed ~10 MB of schema per block, and a fusion model ~60 MB.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr
    return np.array([str(v) for v in arr.ravel()], dtype=str).reshape(arr.shape)


def _plain(value):
    """pandas tables (fit diagnostics such as ``results_``) as plain dicts of arrays, and
    long lists or object arrays of names as str arrays: skops cannot serialise pandas'
    internals, prediction never needs the tables, and arrays are stored compactly."""
    if isinstance(value, pd.DataFrame):
        return {"__table__": True, "index": _compact(value.index.to_numpy()),
                "columns": {str(c): _compact(value[c].to_numpy()) for c in value.columns}}
    if isinstance(value, pd.Series):
        return {"__series__": True, "index": _compact(value.index.to_numpy()),
                "values": _compact(value.to_numpy())}
    if isinstance(value, list) and len(value) > 16 and all(isinstance(v, str) for v in value):
        return _compact(value)
    if isinstance(value, np.ndarray) and value.dtype == object and all(
            isinstance(v, str) for v in value.ravel()):
        return _compact(value)
    return value


def _strip_pandas(obj, seen: set[int] | None = None):
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            obj[key] = _plain(value)
            _strip_pandas(obj[key], seen)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _strip_pandas(item, seen)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith(("sklearn", "workbench")):
        for key, value in list(vars(obj).items()):
            if isinstance(obj, FusionModel) and key == "metadata":
                continue  # the user's provenance record, kept as written
            setattr(obj, key, _plain(value))
            _strip_pandas(getattr(obj, key), seen)


def save_model(model: FusionModel, path: str | Path) -> Path:
    """Save with skops (a safe, inspectable format; never pickle).

    A copy is saved in which fit diagnostics held as pandas tables become plain dicts; the
    in-memory model is left as it is.
    """
    import copy
    import zipfile

    import skops.io as sio

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean = copy.deepcopy(model)
    _strip_pandas(clean)
    sio.dump(clean, out, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    return out


def load_model(path: str | Path) -> FusionModel:
    """Load a skops model after checking every type it holds against the exact trust list.

    Raises
    ------
    WorkbenchError
        If the file is not a skops archive, holds any type or node kind outside
        :data:`~workbench.models.model_file.TRUSTED_TYPES` (it is then not loaded at all), or
        does not hold a :class:`FusionModel`.
    """
    import skops.io as sio

    p = Path(path)
    types = audit_model_file(p)
    try:
        model = sio.load(p, trusted=types)
    except Exception as exc:  # a schema that passed the audit but does not rebuild
        raise WorkbenchError(f"model file cannot be rebuilt ({type(exc).__name__}: "
                             f"{str(exc)[:160]})", step="model file", path=p) from exc
    if not isinstance(model, FusionModel):
        raise WorkbenchError(f"model file holds a {type(model).__name__}, not a workbench "
                             "fusion model", step="model file", path=p)
    return model
