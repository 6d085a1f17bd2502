"""Shared test fixtures: the ../shared reference data (tiny NIfTI patients: fixtures.images)."""

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
