"""The import graph of ``src/workbench`` against its layer contract (AST only, no import).

Packages only look down the data flow (STYLE.md, rule 9). The contract is data, below: the
layers, lowest first (a package may import itself and packages of lower layers only), extra
limits on the leaf packages, where a function may import a workbench module, and which
third-party libraries may be imported inside functions (the heavy optional ones, so
``workbench --help`` and ``import workbench.<x>`` stay cheap). Three checks:

* every import of a workbench module, at module level or inside a function, respects the
  layers and the leaf limits;
* module-level imports between modules form no cycle;
* imports inside functions are of heavy optional libraries (or the standard library) only,
  except in the modules listed.

Each failure lists every offending ``importer -> imported (file:line)``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "workbench"

# --------------------------------------------------------------------------- the contract
#: Top-level packages / modules of ``workbench``, lowest layer first. A package may import
#: itself and the packages of lower layers; packages of one layer may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "files"),                  # exceptions; atomic writes (both import nothing)
    ("names", "hashing", "data"),         # registries, content hashes (and their cache), package data
    ("provenance",),
    ("batch", "rundir"),                  # the per-patient runner; the run-directory contract
    ("rundata",),                         # cached reading of a run directory
    ("imaging",),
    ("cohort",),
    ("features", "selection"),
    ("evaluation",),
    ("models",),
    ("external",),                        # carrying a saved model to another cohort
    ("plots",),
    ("report", "app"),
    ("config",),                          # only the pipeline and the CLI unpack the config
    ("pipeline",),
    ("cli",),
)
#: The root ``workbench/__init__.py`` (version only): importable from anywhere.
ROOT_MODULE = ROOT

#: Packages that may import only these (dotted names below ``workbench``; a name allows its
#: submodules), on top of the layers: leaves render tables and arrays, they do not compute
#: features, fit models or read images.
ONLY_IMPORTS: dict[str, tuple[str, ...]] = {
    "evaluation": ("errors", "names"),
    "plots": ("errors", "names", "evaluation"),
    "report": ("errors", "names", "evaluation", "plots", "rundir", "rundata"),
    "app": ("errors", "names", "evaluation", "plots", "rundir", "rundata", "imaging.slices"),
}

#: Modules (a package: all its modules) whose imports are inside functions by design:
#: ``workbench --help`` must not load the stages.
LAZY_BY_DESIGN: frozenset[str] = frozenset({"workbench.cli"})
#: Other function-level imports of workbench modules, ``(importer, imported)``: keep it short.
#: The report stage imports the report (HoloViews, Bokeh, Panel: seconds) only when it
#: rebuilds it, so a warm run with a current report does not pay for them.
FUNCTION_LEVEL_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("workbench.pipeline.stages", "workbench.report"),
    ("workbench.pipeline.external", "workbench.report.validation")})
#: Third-party libraries that may be imported inside functions: slow to import and needed
#: by one optional path only (a network, a classifier, SHAP, saved models, the dashboard and
#: its figures, a browser, a cluster, PyRadiomics, DICOM / NIfTI-fallback readers). The core
#: stack (numpy, pandas, scipy, scikit-learn, SimpleITK, joblib, tqdm, yaml) is imported at
#: module level: ``workbench --help`` does not depend on it (the CLI imports lazily, see
#: :data:`LAZY_BY_DESIGN` and ``test_the_cli_starts_without_the_stack``).
HEAVY_OPTIONAL: frozenset[str] = frozenset({
    "tensorflow", "keras", "catboost", "xgboost", "shap", "skops", "panel", "bokeh",
    "holoviews", "playwright", "distributed", "dask", "radiomics", "pywt", "pydicom", "nibabel",
})
#: What ``import workbench.cli`` (hence ``workbench --help``) must not load.
NOT_FOR_HELP: frozenset[str] = HEAVY_OPTIONAL | {"numpy", "pandas", "scipy", "sklearn",
                                                  "SimpleITK", "pydantic", "yaml"}


# --------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class Import:
    importer: str          # dotted module name
    imported: str          # dotted module name (the module, not the name imported from it)
    path: Path
    line: int
    in_function: bool
    type_checking: bool    # under ``if TYPE_CHECKING:`` (no runtime effect)

    def __str__(self) -> str:
        where = "function-level" if self.in_function else "module-level"
        return (f"{self.importer} -> {self.imported} ({self.path.relative_to(SRC.parent)}:"
                f"{self.line}, {where})")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute dotted names an import statement loads (``from a import b``: ``a.b`` when
    that is a module of ours, else ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not source.startswith(ROOT):
        return [source]
    out = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        out.append(sub if sub in MODULES else source)
    return list(dict.fromkeys(out))


def _walk(node: ast.AST, in_function: bool, type_checking: bool):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function, type_checking
        inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                          | ast.Lambda)
        guarded = type_checking or (isinstance(child, ast.If) and _is_type_checking(child.test))
        yield from _walk(child, inner, guarded)


def _imports() -> list[Import]:
    out = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function, type_checking in _walk(tree, False, False):
            for target in _targets(node, module, path.name == "__init__.py"):
                out.append(Import(module, target, path, node.lineno, in_function,
                                  type_checking))
    return out


IMPORTS = _imports()
INTERNAL = [i for i in IMPORTS if i.imported == ROOT or i.imported.startswith(ROOT + ".")]


def _package(module: str) -> str:
    """``workbench.features.deep.extract`` -> ``features``; the root -> ``workbench``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


# --------------------------------------------------------------------------- the checks
def test_the_contract_names_every_package():
    unknown = sorted({_package(m) for m in MODULES} - set(LAYER_OF) - {ROOT_MODULE})
    assert not unknown, f"packages missing from LAYERS (place them in a layer): {unknown}"
    duplicated = [p for p in LAYER_OF if sum(p in layer for layer in LAYERS) > 1]
    assert not duplicated, f"packages in two layers: {duplicated}"
    assert set(ONLY_IMPORTS) <= set(LAYER_OF)


def _layer_violations() -> list[str]:
    bad = []
    for imp in INTERNAL:
        src, dst = _package(imp.importer), _package(imp.imported)
        if dst == ROOT_MODULE or src == dst or src not in LAYER_OF or dst not in LAYER_OF:
            continue  # unknown packages are reported by test_the_contract_names_every_package
        if LAYER_OF[dst] >= LAYER_OF[src]:
            side = "same layer" if LAYER_OF[dst] == LAYER_OF[src] else "higher layer"
            bad.append(f"{imp}: {dst} is a {side} than {src}")
    return bad


def _leaf_violations() -> list[str]:
    bad = []
    for imp in INTERNAL:
        src = _package(imp.importer)
        allowed = ONLY_IMPORTS.get(src)
        if allowed is None or _package(imp.imported) in (src, ROOT_MODULE):
            continue
        rel = imp.imported.removeprefix(ROOT + ".")
        if not any(rel == a or rel.startswith(a + ".") for a in allowed):
            bad.append(f"{imp}: {src} may import only {', '.join(allowed)}")
    return bad


def test_packages_only_import_lower_layers():
    bad = _layer_violations()
    assert not bad, "imports against the layers (LAYERS):\n  " + "\n  ".join(bad)


def test_leaf_packages_import_only_what_they_render():
    bad = _leaf_violations()
    assert not bad, "leaf imports outside ONLY_IMPORTS:\n  " + "\n  ".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components (size > 1, or a self-import) of the module-level graph."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in INTERNAL:
        if not imp.in_function and not imp.type_checking and imp.imported in MODULES:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(MODULES)))

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles_between_modules():
    cycles = _cycles()
    assert not cycles, "module-level import cycles:\n  " + "\n  ".join(
        " <-> ".join(c) for c in cycles)


def _function_level_violations() -> list[str]:
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for imp in IMPORTS:
        if not imp.in_function or any(imp.importer == m or imp.importer.startswith(m + ".")
                                      for m in LAZY_BY_DESIGN):
            continue
        top = imp.imported.split(".")[0]
        if imp.imported == ROOT or top == ROOT:
            if (imp.importer, imp.imported) not in FUNCTION_LEVEL_ALLOWED:
                bad.append(f"{imp}: import workbench modules at module level")
        elif top not in stdlib and top not in HEAVY_OPTIONAL:
            bad.append(f"{imp}: {top} is not in HEAVY_OPTIONAL; import it at module level")
    return bad


def test_function_level_imports_only_for_heavy_optional_libraries():
    bad = _function_level_violations()
    assert not bad, "function-level imports:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("module", sorted(m for m in LAZY_BY_DESIGN | {
    i for i, _ in FUNCTION_LEVEL_ALLOWED}))
def test_allow_lists_name_existing_modules(module):
    assert module in MODULES, f"{module} is listed in the contract but does not exist"


def test_the_graph_sees_the_imports_it_checks():
    """The parser itself: relative, ``from workbench import x`` and function-level imports."""
    tree = ast.parse("from . import a\nfrom ..b import c\nfrom workbench import plots\n"
                     "def f():\n    import keras\n")
    found = list(_walk(tree, False, False))
    assert [f for _, f, _ in found] == [False, False, False, True]
    assert _targets(found[0][0], "workbench.features.deep", True) == ["workbench.features.deep"]
    assert _targets(found[1][0], "workbench.app.views.x", False) == ["workbench.app.b"]
    assert _targets(found[2][0], "workbench.app.store", False) == ["workbench.plots"]
    assert any(i.imported == "workbench.names" for i in INTERNAL)


def test_the_cli_starts_without_the_stack():
    """``workbench --help`` stays instant: importing the CLI loads none of the stack."""
    code = ("import sys, workbench.cli; print(' '.join(sorted({m.split('.')[0] for m in "
            "sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & NOT_FOR_HELP, f"import workbench.cli loads {sorted(loaded & NOT_FOR_HELP)}"


def test_a_run_loads_no_plotting_stack_until_it_builds_a_report():
    """A warm run whose report is current never imports HoloViews, Bokeh or Panel (seconds)."""
    code = ("import sys, workbench.cli.commands, workbench.pipeline.run; print(' '.join(sorted("
            "{m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    plotting = {"holoviews", "bokeh", "panel"}
    assert not loaded & plotting, f"the pipeline imports {sorted(loaded & plotting)}"
