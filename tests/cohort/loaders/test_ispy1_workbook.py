"""I-SPY1 clinical workbook: the real TCIA workbook (shipped with the package) and a bare one."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.layouts import ispy1_clinical_rows, write_ispy1_clinical
from workbench.cohort.loaders.ispy1_workbook import load_ispy1_clinical, parse_dictionary
from workbench.data import ispy1_clinical_workbook
from workbench.errors import CohortError

WORKBOOK = ispy1_clinical_workbook()


# --------------------------------------------------------------------------------------------
# the real workbook


@pytest.fixture(scope="module")
def real():
    return load_ispy1_clinical(WORKBOOK)


def test_real_workbook_patients_and_labels(real) -> None:
    df = real.df
    assert len(df) == 221 and df["patient_id"].is_unique
    assert df["patient_id"].str.fullmatch(r"ISPY1_1\d{3}").all()
    assert "ISPY1_1001" in set(df["patient_id"])
    assert int(df["pcr"].notna().sum()) == 215
    assert int((df["pcr"] == 1).sum()) == 58
    assert not [p for p in real.problems if p.severity == "error"]


def test_real_workbook_codes_are_decoded_from_its_dictionary(real) -> None:
    df = real.df

    def counts(column):
        return df[column].value_counts(dropna=False).to_dict()

    assert counts("hr_her2") == {"HR+/HER2-": 96, "HER2+": 67, "triple negative": 53, None: 5}
    assert counts("race") == {"Caucasian": 165, "African American": 42, "Asian": 9,
                              "Multiple race": 2, "Native Hawaiian/Pacific Islander": 1,
                              None: 2}
    assert counts("er") == {"positive": 125, "negative": 94, None: 2}
    assert counts("hr") == {"positive": 131, "negative": 88, None: 2}
    assert counts("her2") == {"negative": 149, "positive": 67, None: 5}
    assert counts("laterality") == {"right": 114, "left": 107}
    assert df["age"].between(20, 80).all() and df["mri_ld_mm"].notna().sum() == 219


def test_real_workbook_undefined_race_code_is_a_warning_naming_the_patient(real) -> None:
    # race_id 0 is used but not defined by the workbook: the one documented exception to
    # "an undefined code is a coding error" (UNDEFINED_CODES)
    race = [p for p in real.problems if "race code 0 (workbook column 'race_id')" in p.message]
    assert len(race) == 2 and all(p.severity == "warning" for p in race)
    assert real.problems == race
    assert {p.patient_id for p in race} == set(
        real.df.loc[real.df["race"].isna(), "patient_id"])
    assert all(p.file == str(WORKBOOK) for p in race)


def test_real_dictionary_sheet_is_parsed() -> None:
    import pandas as pd

    sheet = pd.read_excel(WORKBOOK, sheet_name="Clinical Data Dictionary", header=None)
    codes = parse_dictionary(sheet)
    assert codes["raceid"]["1"] == "Caucasian" and codes["raceid"]["3"] == "African American"
    assert codes["laterality"] == {"1": "Left", "2": "Right"}
    assert codes["hrher2status"]["TripleNeg"] == "Triple Negative"
    assert "0" in codes["her2mostpos"] and "blank" not in {k.lower() for k in codes["her2mostpos"]}


# --------------------------------------------------------------------------------------------
# malformed workbooks


def test_workbook_without_dictionary_sheets_is_refused(tmp_path: Path) -> None:
    write_ispy1_clinical(tmp_path / "bare.xlsx", *ispy1_clinical_rows((1001,)),
                         with_dictionaries=False)
    with pytest.raises(CohortError, match="sheet 'Clinical Data Dictionary' not found"):
        load_ispy1_clinical(tmp_path / "bare.xlsx")
