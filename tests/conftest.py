"""Shared test fixtures: the ../shared reference data, the small run directory of
``fixtures.run_dir`` (tiny NIfTI patients: ``fixtures.images``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
ISPY1_XLSX = SHARED / "data" / "ispy1_clinical" / "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"


@pytest.fixture
def ispy1_xlsx() -> Path:
    """The real I-SPY1 clinical spreadsheet, or a skip saying why it is absent."""
    if not ISPY1_XLSX.is_file():
        pytest.skip(f"real I-SPY1 spreadsheet not found at {ISPY1_XLSX} "
                    "(../shared is absent in a fresh clone; CI provides it)")
    return ISPY1_XLSX


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
