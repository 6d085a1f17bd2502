"""The ordered notebooks: committed clean, written by the rules, and executed in order on a tiny
synthetic cohort (parameters through WORKBENCH_* environment variables), each notebook reading
the run directory the earlier ones wrote.

The execution runs once per session (module fixture, ≈ 2-3 min on 2 cores); each notebook then
has its own test, so a failure names the notebook, the cell, its source and the error.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
import yaml

pytestmark = pytest.mark.tf  # 04_deep_features runs a random-weight network

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["00_overview", "01_cohort", "02_preprocessing", "03_radiomics", "04_deep_features",
            "05_selection", "06_models", "07_report", "08_teaching_leakage"]
MAX_CELL_LINES = 15
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# The tiny cohort: seed 1's first 20 synthetic patients hold 8 pCR, enough for every training
# fold of a 3-fold CV to keep 3 patients of each class (the univariate filter's minimum).
TINY_CONFIG = {
    "name": "tiny-notebooks", "seed": 42, "jobs": 1,
    "cohort": {"format": "synthetic", "path": "raw", "synthetic": {"n": 20, "seed": 1}},
    "preprocessing": {"n4": False, "image_interpolator": "linear"},
    "radiomics": {"params": "radiomics_small.yaml"},
    "deep": {"networks": ["efficientnetb0"], "weights": "random", "image_size": 64,
             "batch_size": 8},
    "feature_sets": ["clinical", "radiomics", "kinetic", "efficientnetb0"],
    "classifiers": ["lr"],
    "selection": {"lasso": {"n_alphas": 10, "cv_folds": 3}},
    "protocol": {"cv_folds": 3},
    "audit": {"permutations": 2},
}
TINY_RADIOMICS = {
    "version": 1, "description": "notebook test: shape and first order on the original image",
    "setting": {"binWidth": 0.1, "label": 1, "normalize": False, "preCrop": True,
                "padDistance": 5, "correctMask": False, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {"shape": None, "firstorder": None},
}


def code_cells(nb) -> list[tuple[int, object]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


# ----------------------------------------------------------------------------- static rules
def test_the_ordered_notebooks_are_all_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in code_cells(nb) if c.outputs or c.execution_count is not None]
    assert not dirty, (f"{path.name}: cells {dirty} have outputs or execution counts; clear "
                       "them before committing (Jupyter: Edit > Clear Outputs of All Cells)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_rules(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: starts with a markdown intro"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [1], f"{path.name}: one parameters cell, right after the intro: {tagged}"
    assert "os.environ.get(" in nb.cells[1].source, f"{path.name}: parameters from the env"
    for i, cell in code_cells(nb):
        lines = cell.source.splitlines()
        assert len(lines) <= MAX_CELL_LINES, (f"{path.name} cell {i}: {len(lines)} lines; "
                                              "move the logic into src/workbench")
        bad = [ln for ln in lines if re.match(r"\s*(async\s+)?(def|class)\s", ln)]
        assert not bad, f"{path.name} cell {i}: {bad[0]!r}; functions belong in src/workbench"
    assert nb.metadata.kernelspec.name == "python3"


# ----------------------------------------------------------------------------- execution
def _failure(path: Path, nb, exc: Exception) -> str:
    """Name the notebook and the failing cell: index, source and the error's last lines."""
    for i, cell in code_cells(nb):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = ANSI.sub("", "\n".join(out.get("traceback", [])))
                return (f"{path.name}, cell {i} failed: {out['ename']}: {out['evalue']}\n"
                        f"--- cell {i} source ---\n{cell.source}\n"
                        f"--- traceback (end) ---\n{tb[-3000:]}")
    return f"{path.name} failed outside a cell: {type(exc).__name__}: {exc}"


def _hidden_tracebacks(path: Path, nb) -> str | None:
    """Tracebacks that did not stop the cell: stderr, or a figure that failed to render."""
    for i, cell in code_cells(nb):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [str(v) for v in out.get("data", {}).values()]
            if any("Traceback (most recent call last)" in t for t in texts):
                return (f"{path.name}, cell {i} printed a traceback:\n{cell.source}\n---\n"
                        + ANSI.sub("", "\n".join(texts))[-3000:])
    return None


def run_notebook(path: Path, env: dict) -> tuple[float, str | None]:
    """Execute ``path`` in a fresh ``python3`` kernel with cwd ``notebooks/``; return the
    seconds it took and ``None``, or a message naming the notebook and the failing cell."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    try:
        client.execute(env=env)
        problem = _hidden_tracebacks(path, nb)
    except Exception as exc:  # CellExecutionError, a dead kernel, a timeout
        problem = _failure(path, nb, exc)
    return time.perf_counter() - start, problem


def test_a_failing_notebook_is_reported_with_its_cell(tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# broken"), new_code_cell("x = 1"),
                             new_code_cell("y = x + undefined_name")])
    nbformat.write(nb, tmp_path / "99_broken.ipynb")
    _, problem = run_notebook(tmp_path / "99_broken.ipynb", dict(os.environ))
    assert problem.startswith("99_broken.ipynb, cell 2 failed: NameError")
    assert "undefined_name" in problem and "--- cell 2 source ---" in problem


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict:
    """Execute every notebook in order on the tiny run; ``{stem: (seconds, problem)}``."""
    root = tmp_path_factory.mktemp("notebooks")
    (root / "radiomics_small.yaml").write_text(yaml.safe_dump(TINY_RADIOMICS))
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    env = {**os.environ, "WORKBENCH_CONFIG": str(root / "tiny.yaml"),
           "WORKBENCH_RUN_DIR": str(root / "run"), "WORKBENCH_CACHE_DIR": str(root / "cache"),
           "WORKBENCH_JOBS": "1", "WORKBENCH_REFIT": "1", "WORKBENCH_N_CROPS": "2",
           "WORKBENCH_NOISE_PATIENTS": "40", "WORKBENCH_NOISE_FEATURES": "60",
           "WORKBENCH_NOISE_DRAWS": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    results: dict[str, tuple[float, str | None]] = {}
    failed = None
    for path in NOTEBOOKS:
        if failed:
            results[path.stem] = (0.0, f"{path.name} not run: {failed} failed before it")
            continue
        results[path.stem] = run_notebook(path, env)
        if results[path.stem][1]:
            failed = path.name
    results["run_dir"] = root / "run"
    timings = ", ".join(f"{k} {v[0]:.0f} s" for k, v in results.items() if k != "run_dir")
    print(f"\nnotebook execution: {timings}")
    return results


@pytest.mark.slow
@pytest.mark.parametrize("stem", EXPECTED)
def test_notebook_runs_on_a_tiny_cohort(executed, stem):
    seconds, problem = executed[stem]
    assert problem is None, problem


@pytest.mark.slow
def test_the_notebooks_leave_a_complete_run_directory(executed):

    from workbench.rundata import RunData

    run = RunData(executed["run_dir"])
    for name in ("cohort", "table1", "radiomics", "kinetic", "deep", "deep_weights",
                 "metrics", "predictions", "selection", "signatures", "audit",
                 "audit_summary", "manifest"):
        assert run.has(name), run.missing(name)
    assert len(run.cohort) == TINY_CONFIG["cohort"]["synthetic"]["n"]
    assert set(run.metrics["protocol"]) == {"honest", "paper"}
    assert run.audit["permutation"].nunique() == 2
    assert run.weights_label.startswith("RANDOM")
    manifest = run.manifest
    assert manifest["config"]["name"] == "tiny-notebooks"
    assert manifest["features"]["radiomics"]["patients"] == len(run.cohort)
    assert run.path("report").stat().st_size > 100_000
