"""Shared test fixtures: the reference data shipped in ``workbench.data``, the small run
directory of ``fixtures.run_dir``, the demo-size one of ``fixtures.demo_run`` (tiny NIfTI
patients: ``fixtures.images``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.data import ispy1_clinical_workbook

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ispy1_xlsx() -> Path:
    """The real I-SPY1 clinical spreadsheet, shipped with the package (``workbench.data``)."""
    return ispy1_clinical_workbook()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A complete small run directory (models, audit, IBSI, manifest; no images), built once
    per session by :func:`fixtures.run_dir.build_run_dir` for the report and dashboard tests."""
    import warnings

    from fixtures.run_dir import build_run_dir
    from workbench.selection import SelectionWarning

    with warnings.catch_warnings():  # tiny noisy blocks: the filters' fallbacks are expected
        warnings.simplefilter("ignore", SelectionWarning)
        return build_run_dir(tmp_path_factory.mktemp("report_run") / "run")


@pytest.fixture(scope="session")
def demo_run_dir(tmp_path_factory) -> Path:
    """A run directory of the demo's shape (163 patients, 12 feature sets x 10 classifiers x
    both protocols, SHAP, audit, IBSI, manifest; no images): a copy of the committed
    ``fixtures/data/demo_run_163`` that :func:`fixtures.demo_run.build_demo_run` generated
    with the real modelling stage (12 CPU-minutes, too slow to rebuild per session;
    ``tests/app/test_demo_run_fixture.py`` fails when the code's tables drift from it, and
    says how to regenerate it)."""
    import shutil

    from fixtures.demo_run import COMMITTED

    return Path(shutil.copytree(COMMITTED, tmp_path_factory.mktemp("demo_run") / "run"))


@pytest.fixture(scope="session")
def run_facts() -> dict[str, str]:
    """What :func:`fixtures.run_dir.build_run_dir` put in the run, for assertions."""
    from fixtures.run_dir import run_facts

    return run_facts()


@pytest.fixture(scope="session")
def demo_run_facts() -> dict[str, str]:
    """What :func:`fixtures.demo_run.build_demo_run` put in the run, for assertions."""
    from fixtures.demo_run import demo_run_facts

    return demo_run_facts()
