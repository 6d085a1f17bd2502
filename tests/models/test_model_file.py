"""The trust model for saved model files: every classifier's model loads, crafted files never.

Each crafted file is a real saved model with one node changed (or a file that only looks like
one). A sentinel command (``touch SENTINEL``) is planted wherever a payload could carry one;
the test checks both the refusal (naming the type) and that the sentinel never appeared.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.models.fusion import FusionModel, load_model
from workbench.models.model_file import TRUSTED_NODES, TRUSTED_TYPES, audit_model_file

pytestmark = [pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """One saved fusion model per classifier (honest protocol, radiomics + kinetic blocks)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
    from test_models import small_table

    from workbench.config import RunConfig
    from workbench.names import CLASSIFIER_NAMES
    from workbench.pipeline.models import run_models

    cfg = RunConfig(feature_sets=["radiomics"],
                    classifiers=list(CLASSIFIER_NAMES), jobs=1,
                    protocol={"cv_folds": 3, "kinds": ["honest"]},
                    selection={"lasso": {"n_alphas": 10, "cv_folds": 3}})
    features, clinical, y = small_table()
    out = tmp_path_factory.mktemp("saved")
    run_models(cfg, features, clinical, y, out, n_boot=10)
    return {clf: out / "models" / "honest" / f"radiomics__{clf}.skops"
            for clf in CLASSIFIER_NAMES}


def test_every_classifier_saves_only_trusted_types_and_loads(saved):
    seen: set[str] = set()
    for clf, path in saved.items():
        types = audit_model_file(path)  # raises on any name outside the exact list
        seen |= set(types)
        model = load_model(path)
        assert isinstance(model, FusionModel) and model.classifier_name == clf
    # the list holds exact names only, and most of them are really used
    assert all("*" not in t and not t.endswith(".") for t in TRUSTED_TYPES)
    assert len(seen) >= 30, sorted(seen)


# -- crafting -------------------------------------------------------------------------------

def _rewrite(src: Path, dst: Path, mutate=None, extra: dict[str, bytes] | None = None,
             replace: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "schema.json" and mutate is not None:
                schema = json.loads(data)
                mutate(schema)
                data = json.dumps(schema).encode()
            if replace and info.filename in replace:
                data = replace[info.filename]
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def _node(module: str, cls: str, loader: str, **more) -> dict:
    return {"__class__": cls, "__module__": module, "__loader__": loader, "__id__": 1, **more}


def _str(text: str) -> dict:
    return _node("builtins", "str", "JsonNode", content=json.dumps(text), is_json=True)


def _into_metadata(node: dict, depth: int = 1):
    """Put ``node`` ``depth`` levels deep into the fusion model's metadata dict."""
    def mutate(schema):
        meta = schema["content"]["content"]["metadata"]
        for _ in range(depth - 1):
            inner = _node("builtins", "dict", "DictNode", content={},
                          key_types=_node("builtins", "list", "ListNode", content=[]))
            meta["content"]["x"] = inner
            meta = inner
        meta["content"]["payload"] = node
    return mutate


def _at_top(node: dict):
    def mutate(schema):
        keep = {k: schema[k] for k in ("protocol", "_skops_version") if k in schema}
        schema.clear()
        schema.update(node, **keep)
    return mutate


class Boom:
    """Pickles to ``os.system('touch SENTINEL')``."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def _pickled_npy(sentinel: Path) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([Boom(sentinel)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _cmd(sentinel: Path) -> dict:
    return _str(f"touch {sentinel}")


def _planted(module: str, cls: str, loader: str, *, depth: int = 1, content=None):
    """A builder that plants one node (``content(sentinel)`` if given) into a saved model's
    metadata, ``depth`` dicts deep."""
    def build(src: Path, dst: Path, sentinel: Path) -> Path:
        more = {} if content is None else {"content": content(sentinel)}
        return _rewrite(src, dst, _into_metadata(_node(module, cls, loader, **more), depth))
    return build


CASES = {
    # name: (builder(src, dst, sentinel) -> Path, text the refusal must contain)
    "eval-as-type": (lambda s, d, t: _rewrite(s, d, _at_top(_node("builtins", "eval", "TypeNode"))),
                     "builtins.eval"),
    "exec-in-metadata": (_planted("builtins", "exec", "TypeNode"), "builtins.exec"),
    "read-pickle-function": (_planted("pandas", "read_pickle", "FunctionNode"),
                             "pandas.read_pickle"),
    "os-system-function": (_planted("os", "system", "FunctionNode"), "os.system"),
    "posix-system-type": (_planted("posix", "system", "TypeNode"), "posix.system"),
    "nested-5-deep": (_planted("builtins", "eval", "TypeNode", depth=5), "builtins.eval"),
    "partial-eval": (_planted("functools", "partial", "PartialNode", content=lambda t: {
        "func": _node("builtins", "eval", "TypeNode"),
        "args": _node("builtins", "tuple", "TupleNode", content=[_cmd(t)])}),
        "functools.partial"),
    "operator-methodcaller": (_planted("operator", "methodcaller", "OperatorFuncNode"),
                              "operator.methodcaller"),
    "getattr-type": (_planted("builtins", "getattr", "TypeNode"), "builtins.getattr"),
    "numpy-load-function": (_planted("numpy", "load", "FunctionNode"), "numpy.load"),
    "workbench-function": (_planted("workbench.models.fusion", "load_model", "FunctionNode"),
                           "workbench.models.fusion.load_model"),
    "sklearn-namespace-function": (_planted("sklearn.utils", "_joblib", "ObjectNode",
                                            content=lambda t: {}), "sklearn.utils._joblib"),
    "subprocess-object": (_planted("subprocess", "Popen", "ObjectNode",
                                   content=lambda t: {"args": _cmd(t)}), "subprocess.Popen"),
    "renamed-class-eval-as-object": (_planted("builtins", "eval", "ObjectNode", content=_cmd),
                                     "builtins.eval"),
    "trusted-type-unknown-loader": (_planted("sklearn.pipeline", "Pipeline",
                                             "ConstructorFromReduceNode"),
                                    "ConstructorFromReduceNode"),
    "pickle-renamed-skops": (lambda s, d, t: (d.write_bytes(pickle.dumps(Boom(t))), d)[1],
                             "not a readable skops model file"),
    "text-renamed-skops": (lambda s, d, t: (d.write_text("print('hi')\n"), d)[1],
                           "not a readable skops model file"),
    "zip-without-schema": (lambda s, d, t: (zipfile.ZipFile(d, "w").close(), d)[1],
                           "no schema.json"),
    "schema-not-json": (lambda s, d, t: _rewrite(s, d, replace={"schema.json": b"{nope"}),
                        "not a readable skops model file"),
    "extra-pickle-member": (lambda s, d, t: _rewrite(s, d, extra={
        "payload.pkl": pickle.dumps(Boom(t))}), "unexpected members"),
    "pickled-npy-member": (lambda s, d, t: _rewrite(s, d, replace={
        _first_npy(s): _pickled_npy(t)}), "cannot be rebuilt"),
}


def _first_npy(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return next(n for n in zf.namelist() if n.endswith(".npy"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_model_files_are_refused(case, saved, tmp_path):
    build, expected = CASES[case]
    sentinel = tmp_path / "SENTINEL"
    crafted = build(saved["lr"], tmp_path / "model.skops", sentinel)
    with pytest.raises(WorkbenchError) as err:
        load_model(crafted)
    assert expected in str(err.value), str(err.value)
    assert "model.skops" in str(err.value)
    assert not sentinel.exists()


def test_trusted_file_of_another_kind_is_refused(tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    clf = LogisticRegression().fit(np.arange(8.0).reshape(-1, 1), [0, 1] * 4)
    sio.dump(clf, tmp_path / "plain.skops")
    with pytest.raises(WorkbenchError, match="not a workbench fusion model"):
        load_model(tmp_path / "plain.skops")


def test_trust_lists_have_no_callables_or_wildcards():
    assert not {"FunctionNode", "MethodNode", "PartialNode", "OperatorFuncNode",
                "ConstructorFromReduceNode"} & TRUSTED_NODES
    assert not any(t.startswith(("os.", "posix.", "subprocess.", "pandas.", "pickle."))
                   or t in {"builtins.eval", "builtins.exec", "builtins.getattr",
                            "builtins.__import__", "builtins.open", "builtins.compile"}
                   for t in TRUSTED_TYPES)


def test_predict_refuses_crafted_model_with_one_line(saved, tmp_path):
    sentinel = tmp_path / "SENTINEL"
    crafted = CASES["os-system-function"][0](saved["lr"], tmp_path / "evil.skops", sentinel)
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("patient_id,pcr\n")
    res = subprocess.run([str(BIN / "workbench"), "predict", "--model", str(crafted),
                          "--cohort", str(manifest), "--out", str(tmp_path / "p.csv")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "os.system" in res.stderr and "evil.skops" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not sentinel.exists() and not (tmp_path / "p.csv").exists()
