"""Explicit, checked clinical value coding, and image-less (clinical-only) cohorts.

A receptor column coded 0/1 instead of negative/positive once became missing with a warning,
was median-imputed and took an external AUC to 0.505: every value is now read by a documented
spelling or a configured map, or is an error that names it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fixtures.layouts import ispy1_clinical_rows, write_ispy1_clinical
from workbench.cohort import load_cohort
from workbench.cohort.check import check_cohort, format_report
from workbench.cohort.coding import MISSING_SPELLINGS, SPELLINGS, check_coding, coding_key
from workbench.cohort.loaders.ispy1_workbook import load_ispy1_clinical
from workbench.cohort.loaders.manifest import load_manifest
from workbench.cohort.table import CohortTable, decode_status, validate_cohort
from workbench.data import dataset_path
from workbench.errors import CohortError

CODED = ("race", "er", "pgr", "hr", "her2", "hr_her2", "laterality")


def _table(column: str, values: list, **kwargs) -> CohortTable:
    raw = pd.DataFrame({"patient_id": [f"P{i}" for i in range(len(values))], column: values})
    return validate_cohort(raw, name="t", phases=(), source="/x/clinical.csv", **kwargs)


def _coding_errors(table: CohortTable) -> list:
    return [p for p in table.problems if p.step == "coding"]


# --------------------------------------------------------------------------- spellings
_EXAMPLES = [(col, spelling, canonical) for col in CODED if col != "race"
             for canonical, spellings in SPELLINGS[col].items()
             for spelling in (canonical, *spellings)]


@pytest.mark.parametrize(("column", "spelling", "canonical"), _EXAMPLES)
def test_every_documented_spelling_reads_as_its_canonical_value(column, spelling, canonical):
    for variant in (spelling, f"  {spelling.upper()} ", spelling.title()):
        table = _table(column, [variant])
        assert table.df[column].tolist() == [canonical], variant
        assert table.problems == []


@pytest.mark.parametrize("value", [1, 1.0, "1", "1.0", " 1 ", True, np.int64(1),
                                   np.float64(1.0), "+", "ER+", "er positive", "Pos"])
def test_numbers_read_as_numbers_and_markers_may_lead(value):
    assert _table("er", [value]).df["er"].tolist() == ["positive"]


@pytest.mark.parametrize("value", [0, 0.0, "0", False, "-", "\u2212", "\u2013", "ER-", "neg"])
def test_negative_spellings(value):
    assert _table("er", [value]).df["er"].tolist() == ["negative"]


def test_receptor_markers_must_be_the_columns_own():
    table = _table("pgr", ["PR+", "PgR: neg", "ER+", "HER2-"])
    assert table.df["pgr"].tolist() == ["positive", "negative", None, None]
    assert [p.patient_id for p in _coding_errors(table)] == ["P2", "P3"]


@pytest.mark.parametrize("value", [*MISSING_SPELLINGS, "N/A", "Not Done", "UNKNOWN", None,
                                   np.nan, pd.NA])
def test_explicit_missing_spellings_are_missing_without_a_problem(value):
    for column in CODED:
        table = _table(column, [value])
        assert table.df[column].tolist() == [None] and table.problems == []


def test_hr_her2_ignores_spaces_underscores_slashes_and_commas():
    values = ["hr+/her2\u2212", "HR+ HER2-", "HR positive, HER2 negative", "HRposHER2neg",
              "her2 pos", "HR-/HER2+", "TNBC", "triple_negative", "Triple Neg", "tn"]
    assert _table("hr_her2", values).df["hr_her2"].tolist() == [
        "HR+/HER2-"] * 4 + ["HER2+"] * 2 + ["triple negative"] * 4


def test_race_labels_the_model_tells_apart_are_canonical_other_text_is_kept():
    table = _table("race", ["white", "Black", "african-american", "ASIAN", " Multiple   race ",
                            "Hispanic", "unknown"])
    assert table.df["race"].tolist() == ["Caucasian", "African American", "African American",
                                         "Asian", "Multiple race", "Hispanic", None]
    assert table.problems == []


def test_a_numeric_race_is_a_code_not_a_label():
    table = _table("race", [3, "1"])
    assert table.df["race"].tolist() == [None, None]
    assert [p.message.startswith("race value ") for p in _coding_errors(table)] == [True, True]
    mapped = _table("race", [3, "1"], coding={"race": {"3": "African American", "1": "white"}})
    assert mapped.df["race"].tolist() == ["African American", "Caucasian"]


def test_laterality_numbers_are_not_guessed():
    table = _table("laterality", [1, 2])
    assert table.df["laterality"].tolist() == [None, None]
    assert len(_coding_errors(table)) == 2


# --------------------------------------------------------------------------- coding errors
def test_an_unreadable_value_is_an_error_naming_column_value_patient_and_file():
    table = _table("er", ["positive", "pos.", "negative"])
    [problem] = table.problems
    assert (problem.patient_id, problem.step, problem.severity, problem.file) == (
        "P1", "coding", "error", "/x/clinical.csv")
    # starts with the cohort column: the predict coverage table counts errors by this prefix
    assert problem.message.startswith("er value 'pos.' is not an accepted spelling (accepted: "
                                      "positive (pos, +, 1, yes, y, true, p); negative")
    assert ("set to missing, patient excluded from modelling: fix the source, or map it with "
            "cohort.coding: {er: {'pos.': <positive | negative | indeterminate>}}"
            ) in problem.message
    assert "[patient P1]" in str(problem) and "(file /x/clinical.csv)" in str(problem)
    # the value is missing, the patient stays (counted, listed) and is excluded downstream
    assert table.df["er"].tolist() == ["positive", None, "negative"]
    assert table.patient_ids == ["P0", "P1", "P2"]
    assert table.patients_with_errors() == {"P1"}


def test_numeric_columns_that_are_not_numbers_stay_warnings():
    raw = pd.DataFrame({"patient_id": ["A"], "age": ["fifty"], "mri_ld_mm": ["n/a"]})
    table = validate_cohort(raw, name="t", phases=())
    assert [(p.step, p.severity) for p in table.problems] == [("validate", "warning")] * 2
    assert table.df[["age", "mri_ld_mm"]].isna().all(axis=None)


# --------------------------------------------------------------------------- cohort.coding
def test_zero_one_receptors_of_a_manifest_decode(tmp_path):
    csv = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["A", "B", "C"], "pcr": [1, 0, None], "er": [1, 0, None],
                  "her2": [0.0, 1.0, None]}).to_csv(csv, index=False)
    table = load_manifest(csv)
    assert table.df["er"].tolist() == ["positive", "negative", None]
    assert table.df["her2"].tolist() == ["negative", "positive", None]
    assert table.problems == []


def test_the_per_column_map_comes_first_and_matches_numbers_as_numbers(tmp_path):
    csv = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["A", "B", "C", "D"], "laterality": [1, 2, 2, 1],
                  "er": ["pos.", "NEG.", "2", "0"]}).to_csv(csv, index=False)
    coding = {"laterality": {"1": "left", "2.0": "Right"},
              "er": {"Pos.": "positive", "neg.": "negative", "2": "missing",
                     "0": "positive"}}  # the map wins over the spellings
    table = load_manifest(csv, coding=coding)
    assert table.df["laterality"].tolist() == ["left", "right", "right", "left"]
    assert table.df["er"].tolist() == ["positive", "negative", None, "positive"]
    assert table.problems == []
    assert coding_key(1) == coding_key("1") == coding_key(1.0) == coding_key(" 1.0 ") == "1"


@pytest.mark.parametrize(("coding", "match"), [
    ({"er": {"3": "pos"}}, r"cohort\.coding\.er: target 'pos' \(for '3'\) is not one of"),
    ({"laterality": {"1": "L"}}, r"cohort\.coding\.laterality: target 'L'"),
    ({"hr_her2": {"1": "luminal"}}, r"cohort\.coding\.hr_her2: target 'luminal'"),
    ({"race": {"1": "2"}}, r"cohort\.coding\.race: target '2' .* not a label"),
    ({"er": {"x": "positive", "X": "negative"}}, r"cohort\.coding\.er: keys reading as 'x'"),
    ({"age": {"1": "2"}}, r"cohort\.coding\.age: 'age' is not a coded clinical column"),
])
def test_a_bad_map_is_refused_before_anything_else(tmp_path, coding, match):
    with pytest.raises(CohortError, match=match):
        check_coding(coding)
    with pytest.raises(CohortError, match=match):  # even before a table without patient_id
        validate_cohort(pd.DataFrame({"id": [1]}), name="t", coding=coding)
    with pytest.raises(CohortError, match=match):  # and before the file is looked for
        load_cohort(tmp_path / "nowhere.csv", fmt="manifest", coding=coding)


def test_targets_are_canonical_up_to_case_or_missing():
    assert check_coding({"er": {"3": "Positive", "9": "NA"}, "hr_her2": {"1": "hr+/her2-"}}) == {
        "er": {"3": "positive", "9": None}, "hr_her2": {"1": "HR+/HER2-"}}


def test_decode_status_reads_spellings_maps_and_reports_the_sheet_column():
    sheet = pd.DataFrame({"PR": [1, 0, "pos", 7, None]})
    pids = pd.Series(list("ABCDE"))
    values, problems = decode_status(sheet, "PR", pids, "/x/meta.csv", target="pgr")
    assert values == ["positive", "negative", "positive", None, None]
    [problem] = problems
    assert (problem.patient_id, problem.step, problem.severity, problem.file) == (
        "D", "coding", "error", "/x/meta.csv")
    assert problem.message.startswith("pgr value 7 (column 'PR') is not an accepted spelling")
    values, problems = decode_status(sheet, "PR", pids, "/x/meta.csv", target="pgr",
                                     coding={"pgr": {"7": "indeterminate"}})
    assert values[3] == "indeterminate" and problems == []


# --------------------------------------------------------------------------- extra columns
def test_unknown_columns_are_dropped_with_one_warning_documented_extras_kept():
    raw = pd.DataFrame({"patient_id": ["A", "B"], "er": [1, 0], "centre": ["x", "y"],
                        "Scanner": ["GE", "GE"], "source_dataset": ["ispy1", "duke"],
                        "mask_space": ["grid", "physical"]})
    table = validate_cohort(raw, name="t", phases=(), source="/x/c.csv")
    [note] = table.problems
    assert (note.patient_id, note.step, note.severity, note.file) == (
        None, "validate", "warning", "/x/c.csv")
    assert note.message.startswith("columns ['centre', 'Scanner'] are not cohort columns; ignored")
    assert "centre" not in table.df and "Scanner" not in table.df
    assert table.df["source_dataset"].tolist() == ["ispy1", "duke"]
    assert table.df["mask_space"].tolist() == ["grid", "physical"]


# --------------------------------------------------------------------------- image-less
def test_an_image_less_manifest_loads_and_round_trips(tmp_path):
    csv = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["A", "B"], "pcr": [1, 0], "age": [40, 50],
                  "er": ["pos", "neg"]}).to_csv(csv, index=False)
    for phases in (None, ("pre", "early", "late")):  # asked-for phases cannot invent columns
        table = load_manifest(csv, phases=phases)
        assert table.phases == () and not table.has_images
        assert table.problems == [] and table.image_columns == []
        assert not any(c.startswith("image_") or c == "mask" for c in table.df.columns)
        assert table.imaging_ready().empty and list(table.imaging_ready().columns) == list(
            table.df.columns)
    table.save(tmp_path / "cohort")
    back = CohortTable.load(tmp_path / "cohort")
    assert back.phases == () and not back.has_images
    pd.testing.assert_frame_equal(back.df, table.df, check_dtype=False)  # str comes back str
    report = check_cohort(back, progress=False, store=tmp_path / "qc")
    assert report.problems == [] and report.images.empty and report.ok_patients == []
    assert "none (image-less cohort)" in format_report(report)


def test_a_mask_without_images_is_still_refused(tmp_path):
    csv = tmp_path / "m.csv"
    pd.DataFrame({"patient_id": ["A"], "mask": ["a.nii.gz"]}).to_csv(csv, index=False)
    with pytest.raises(CohortError, match="'mask' column but no image_<phase> column"):
        load_manifest(csv)


def test_validate_with_no_phases_checks_no_path():
    raw = pd.DataFrame({"patient_id": ["A"], "pcr": [1]})
    table = validate_cohort(raw, name="t", phases=(), check_files=True)
    assert table.problems == [] and table.imaging_ready().empty
    assert list(table.df.columns) == ["patient_id", "pcr", "age", "race", "er", "pgr", "hr",
                                      "her2", "hr_her2", "laterality", "mri_ld_mm"]


# --------------------------------------------------------------------------- I-SPY1 workbook
@pytest.fixture(scope="module")
def shipped() -> CohortTable:
    return load_ispy1_clinical(dataset_path("ispy1_clinical"))


def test_the_shipped_workbook_is_an_image_less_cohort_without_coding_errors(shipped):
    assert shipped.phases == () and not shipped.has_images and shipped.imaging_ready().empty
    assert len(shipped.df) == 221 and int(shipped.df["pcr"].notna().sum()) == 215
    assert not [p for p in shipped.problems if p.severity == "error"]
    # the only notes: race_id 0, used by the workbook without a definition (UNDEFINED_CODES)
    assert [(p.patient_id, p.severity) for p in shipped.problems] == [
        ("ISPY1_1070", "warning"), ("ISPY1_1106", "warning")]


def test_the_shipped_workbook_through_load_cohort_with_a_coding():
    path = dataset_path("ispy1_clinical")
    coding = {"race": {"0": "Other"}, "laterality": {"1": "left", "2": "right"}}
    table = load_cohort(path, fmt="ispy1_clinical", coding=coding)
    assert table.phases == () and table.problems == []
    race = table.df.set_index("patient_id")["race"]
    assert race[["ISPY1_1070", "ISPY1_1106"]].tolist() == ["Other", "Other"]
    assert table.df["laterality"].value_counts().to_dict() == {"right": 114, "left": 107}


def test_a_workbook_code_outside_its_dictionary_is_an_error_keeping_the_patient(tmp_path):
    predictors, outcomes = ispy1_clinical_rows((1001, 1002, 1003))
    predictors[0]["ERpos"] = 3
    predictors[1]["Laterality"] = 9
    xlsx = write_ispy1_clinical(tmp_path / "ispy1.xlsx", predictors, outcomes)
    table = load_ispy1_clinical(xlsx)
    errors = {p.patient_id: p for p in table.problems if p.severity == "error"}
    assert set(errors) == {"ISPY1_1001", "ISPY1_1002"}
    er = errors["ISPY1_1001"]
    assert (er.step, er.file) == ("coding", str(xlsx))
    assert er.message.startswith("er code 3 (workbook column 'ERpos') is not in the workbook's "
                                 "dictionary (0=Negative, 1=Positive, 2=Indeterminate)")
    assert "cohort.coding: {er: {'3': <value>}}" in er.message
    assert errors["ISPY1_1002"].message.startswith("laterality code 9 (workbook column")
    df = table.df.set_index("patient_id")
    assert pd.isna(df.loc["ISPY1_1001", "er"]) and pd.isna(df.loc["ISPY1_1002", "laterality"])
    assert table.patient_ids == ["ISPY1_1001", "ISPY1_1002", "ISPY1_1003"]
    # the run config's map reads the raw code
    fixed = load_ispy1_clinical(xlsx, coding={"er": {"3": "positive"},
                                              "laterality": {"9": "missing"}})
    assert not [p for p in fixed.problems if p.severity == "error"]
    assert fixed.df.set_index("patient_id").loc["ISPY1_1001", "er"] == "positive"


def test_the_workbook_with_phases_keeps_its_old_empty_image_columns(tmp_path: Path):
    xlsx = write_ispy1_clinical(tmp_path / "ispy1.xlsx", *ispy1_clinical_rows((1001,)))
    table = load_ispy1_clinical(xlsx, phases=("pre", "early"))
    assert table.has_images and table.image_columns == ["image_pre", "image_early"]
    assert table.df[["image_pre", "image_early", "mask"]].isna().all(axis=None)
    assert table.imaging_ready().empty
