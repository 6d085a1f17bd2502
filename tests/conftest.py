"""Shared test fixtures: the reference data shipped in ``workbench.data``, the small run
directory of ``fixtures.run_dir`` (tiny NIfTI patients: ``fixtures.images``)."""

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
def run_facts() -> dict[str, str]:
    """What :func:`fixtures.run_dir.build_run_dir` put in the run, for assertions."""
    from fixtures.run_dir import run_facts

    return run_facts()
