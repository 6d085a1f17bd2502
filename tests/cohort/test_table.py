"""The cohort table: save / load, the patient-ID rule, duplicates, exclusions, messages."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.cohort.table import (
    PATIENT_ID_RULE,
    CohortTable,
    Problem,
    patient_id_error,
    shown,
    validate_cohort,
)
from workbench.errors import CohortError
from workbench.rundir import check_component, safe_join


def small_cohort() -> CohortTable:
    df = pd.DataFrame({"patient_id": ["0012", "A7"], "pcr": [1, None], "age": [50, 61],
                       "image_pre": ["/x/0012/pre.nii.gz", "/x/A7/pre.nii.gz"],
                       "image_early": ["/x/0012/early.nii.gz", "/x/A7/early.nii.gz"],
                       "mask": ["/x/0012/mask.nii.gz", "/x/A7/mask.nii.gz"]})
    problems = [Problem("0012", "qc", "grid mismatch", "/x/pre.nii.gz"),
                Problem(None, "table1", "Table 1 skipped", None, "warning")]
    return validate_cohort(df, name="tiny", phases=("pre", "early"), source="/x/manifest.csv",
                           problems=problems, check_files=False)


def test_load_gives_back_what_save_wrote(tmp_path):
    cohort = small_cohort()
    cohort.save(tmp_path / "cohort")
    back = CohortTable.load(tmp_path / "cohort")
    assert (back.name, back.phases, back.source) == ("tiny", ("pre", "early"), "/x/manifest.csv")
    pd.testing.assert_frame_equal(back.df, cohort.df)
    assert back.problems == cohort.problems  # ids stay strings ("0012"), None stays None
    assert back.image_columns == ["image_pre", "image_early"]


def test_load_without_sidecar_infers_name_and_phases(tmp_path):
    cohort = small_cohort()
    cohort.save(tmp_path / "run" / "cohort")
    (tmp_path / "run" / "cohort" / "cohort.json").unlink()
    back = CohortTable.load(tmp_path / "run" / "cohort")
    assert back.name == "run" and back.phases == ("pre", "early")


def test_load_of_a_missing_cohort_says_which_stage_to_run(tmp_path):
    with pytest.raises(CohortError, match="run the cohort stage first"):
        CohortTable.load(tmp_path / "nothing")


def test_a_problem_found_again_is_recorded_once():
    cohort = small_cohort()
    again = Problem("0012", "qc", "grid mismatch", "/x/pre.nii.gz")
    cohort.add_problems([again, Problem("A7", "preprocess", "N4 failed")])
    assert len(cohort.problems) == 3
    assert sum(p == again for p in cohort.problems) == 1


# --------------------------------------------------------------------------- patient IDs
def _ids_table(ids, pcr=None) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": ids, "pcr": pcr if pcr is not None else [0] * len(ids)})


@pytest.mark.parametrize("bad", ["../escaped", "/abs/escaped", "a/b", "a\\b", ".hidden", "..",
                                 "-rf", "_x", "a b", "x" * 65, "é1", "P1\x00"])
def test_an_id_outside_the_rule_excludes_only_that_patient(bad):
    table = validate_cohort(_ids_table(["OK1", bad, "OK2"]), name="t", check_files=False)
    assert table.patient_ids == ["OK1", "OK2"]
    [problem] = table.problems
    assert problem.patient_id == bad and problem.severity == "error"
    assert problem.step == "validate" and "row 1" in problem.message
    assert PATIENT_ID_RULE in problem.message and repr(bad) in problem.message


def test_the_ids_real_datasets_use_are_allowed():
    ids = ["ISPY1_1001", "DUKE_001", "SYN0001", "0012", "A7", "NACT-01", "p.1", "x" * 64]
    assert validate_cohort(_ids_table(ids), name="t", check_files=False).patient_ids == ids


def test_duplicates_are_reported_never_collapsed_even_by_case():
    table = validate_cohort(_ids_table(["A", "B", "B", "c", "C", "D"]), name="t",
                            check_files=False)
    assert table.patient_ids == ["A", "D"]
    dup = {p.patient_id: p.message for p in table.problems}
    assert set(dup) == {"B", "c", "C"}
    assert "duplicate patient_id in rows [1, 2]" in dup["B"]
    assert "rows [3, 4]" in dup["c"] and "differ only in case" in dup["C"]
    assert table.known_patients() == ["A", "D", "B", "c", "C"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,70}",
                                                     fullmatch=True)))
def test_any_allowed_id_is_a_safe_file_name(pid):
    why = patient_id_error(pid)
    if why is None:
        root = Path("/tmp/out")
        assert safe_join(root, f"{pid}.png").parent == root
        assert check_component(pid) == pid and len(pid) <= 64
    else:
        assert isinstance(why, str) and why.startswith("it ")


def test_exclusions_name_every_patient_lost_upstream_with_the_root_cause():
    raw = pd.DataFrame({"patient_id": ["A", "B", "B", "C", None, "../x", "E"],
                        "pcr": [1, 0, 1, 7, 0, 0, 1]})
    table = validate_cohort(raw, name="t", check_files=False)
    table.add_problems([Problem("E", "qc", "empty mask", "/m.nii.gz"),
                        Problem("E", "preprocess", "later symptom")])
    assert table.known_patients() == ["A", "E", "../x", "B", "C", None]
    found = table.exclusions(["A"], "radiomics")
    by_id = {p.patient_id: p for p in found}
    assert set(by_id) == {"E", "../x", "B", "C", None}
    assert by_id["E"].message == "excluded upstream: qc: empty mask"
    assert by_id["E"].file == "/m.nii.gz" and by_id["E"].step == "radiomics"
    assert "pcr label 7" in by_id["C"].message and "no patient_id" in by_id[None].message


def test_messages_show_plain_values_not_numpy_reprs():
    raw = pd.DataFrame({"patient_id": ["a", "b", "c"], "pcr": [1, 0, 0],
                        "er": pd.Series([np.float64(2.0), "positive", np.int64(3)],
                                        dtype=object),
                        "age": pd.Series(["old", np.float64(50.0), 1], dtype=object)})
    table = validate_cohort(raw, name="t", check_files=False)
    text = " ".join(p.message for p in table.problems)
    assert "er value 2.0 is not" in text and "er value 3 is not" in text
    assert "np." not in text and shown(np.float64(7.5)) == "7.5"
