"""CohortTable.save / load: a later stage reads back the cohort and its recorded problems."""

import pandas as pd
import pytest

from workbench.cohort.table import CohortTable, Problem, validate_cohort
from workbench.errors import CohortError


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
