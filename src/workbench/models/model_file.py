"""The trust model for saved model files (``models/<protocol>/<set>__<clf>.skops``).

A skops file is a zip archive: ``schema.json`` describes a tree of nodes, each naming the
Python object it rebuilds (``__module__`` + ``__class__``) and how (``__loader__``), and
binary members hold numeric arrays. Loading imports what the nodes name, so a crafted file
could name ``builtins.eval``, ``os.system`` or ``pandas.read_pickle``.

:func:`audit_model_file` reads the schema **without importing anything** and checks every node
against two exact lists:

* :data:`TRUSTED_TYPES`: the ``module.Name`` of every type the models we save contain (the ten
  classifiers, their pipelines, our selection steps, the fusion model), nothing by namespace;
* :data:`TRUSTED_NODES`: the skops node kinds those types are stored as. Functions, methods,
  ``functools.partial``, ``operator`` callables and reduce-constructors are never accepted.

Anything else is refused with the offending names listed, and the file is not loaded.
:func:`workbench.models.fusion.load_model` then hands skops exactly the names found, so skops
checks the same list a second time while it loads. Binary members are read by skops with
``allow_pickle=False``.

To add a classifier whose fitted form holds a new type, add that exact name here; the test
``tests/models/test_model_file.py`` saves every classifier and fails on any name missing.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import WorkbenchError

TRUSTED_TYPES: frozenset[str] = frozenset({
    # containers and scalars of the schema itself
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int",
    "builtins.float", "builtins.bool", "builtins.NoneType", "builtins.bytes",
    "builtins.bytearray",
    # numpy arrays, scalars, dtypes and the legacy random state some estimators keep
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.int64",
    "numpy.int32", "numpy.bool", "numpy.bool_", "numpy.str_",
    "numpy.random.mtrand.RandomState",
    # scikit-learn parts of the ten classifier pipelines
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelBinarizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.svm._classes.SVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._weight_boosting.AdaBoostClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    # gradient boosting libraries
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    "catboost.core.CatBoostClassifier",
    # the workbench's own estimators
    "workbench.models.fusion.FusionModel",
    "workbench.models.balancing.ClassBalanced",
    "workbench.selection._variance.VarianceFilter",
    "workbench.selection._univariate.UnivariateFilter",
    "workbench.selection._lasso.LassoSelector",
    "workbench.selection._signature.Signature",
    # the modelling strategies (workbench.selection.strategy_pipeline)
    "workbench.selection._penalised.PenalisedLogistic",
    "workbench.selection._cluster.CorrelationClusters",
    "workbench.selection._stability.StabilitySelector",
    "workbench.selection._prespecified.PrespecifiedColumns",
    # isotonic recalibration (protocol.recalibration: isotonic)
    "sklearn.calibration._IsotonicCalibration",
    "sklearn.isotonic.IsotonicRegression",
})

TRUSTED_NODES: frozenset[str] = frozenset({
    "DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode", "DTypeNode",
    "ObjectNode", "RandomStateNode", "TreeNode", "BytesNode", "BytearrayNode",
})

SCHEMA = "schema.json"
MAX_UNPACKED_BYTES = 4 * 1024**3  # a model of ours is a few MB; refuse zip bombs


def _nodes(node: object) -> Iterator[dict]:
    """Every schema node (a dict naming ``__class__``), depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item or "__loader__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _refuse(path: Path, message: str) -> WorkbenchError:
    return WorkbenchError(f"{message}; refusing to load it (only models saved by this "
                          "workbench are accepted)", step="model file", path=path)


def read_schema(path: str | Path) -> dict:
    """The parsed ``schema.json`` of a skops file, with the archive's sanity checked."""
    p = Path(path)
    if not p.is_file():
        raise WorkbenchError("model file not found (or not a regular file)",
                             step="model file", path=p)
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            if SCHEMA not in zf.namelist():
                raise _refuse(p, f"not a skops model file (no {SCHEMA} inside)")
            unpacked = sum(i.file_size for i in infos)
            if unpacked > MAX_UNPACKED_BYTES:
                raise _refuse(p, f"archive unpacks to {unpacked / 1024**3:.1f} GiB "
                                 f"(limit {MAX_UNPACKED_BYTES / 1024**3:.0f} GiB)")
            bad = [i.filename for i in infos
                   if i.filename != SCHEMA and not i.filename.endswith(".npy")
                   and not i.filename.endswith(".bin")]
            if bad:
                raise _refuse(p, f"unexpected members in the archive: {bad[:5]}")
            schema = json.loads(zf.read(SCHEMA))
    except WorkbenchError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as exc:
        raise _refuse(p, f"not a readable skops model file ({type(exc).__name__}: "
                         f"{str(exc)[:120]})") from exc
    if not isinstance(schema, dict):
        raise _refuse(p, f"{SCHEMA} is not an object")
    return schema


def audit_model_file(path: str | Path) -> list[str]:
    """Check every node of a skops file against the exact trust lists, importing nothing.

    Returns
    -------
    list of str
        The sorted ``module.Name`` of every type the file holds (all in :data:`TRUSTED_TYPES`).

    Raises
    ------
    WorkbenchError
        Naming every type or node kind outside the lists; the file must then not be loaded.
    """
    p = Path(path)
    schema = read_schema(p)
    types: set[str] = set()
    untrusted: set[str] = set()
    for node in _nodes(schema):
        name = f"{node.get('__module__')}.{node.get('__class__')}"
        loader = node.get("__loader__")
        if loader not in TRUSTED_NODES:
            untrusted.add(f"{name} (stored as {loader})")
        elif name not in TRUSTED_TYPES:
            untrusted.add(name)
        else:
            types.add(name)
    if untrusted:
        listed = sorted(untrusted)
        raise _refuse(p, f"model file holds {len(listed)} untrusted type(s): "
                         f"{', '.join(listed[:8])}" + (" ..." if len(listed) > 8 else ""))
    if not types:
        raise _refuse(p, "model file holds no objects")
    return sorted(types)
