"""models/excluded.csv: every patient of the cohort left out of modelling is listed, with why."""

import pandas as pd

from workbench.cohort.table import Problem, validate_cohort
from workbench.pipeline.models import exclusion_line, load_modelling_inputs, modelling_exclusions
from workbench.rundir import RunDir


def test_every_patient_left_out_of_modelling_is_listed(tmp_path):
    raw = pd.DataFrame({"patient_id": ["A", "B", "U", "D", "D"], "pcr": [1, 0, None, 1, 0]})
    cohort = validate_cohort(raw, name="t", check_files=False)
    cohort.add_problems([Problem("B", "preprocess", "N4 failed", "/b/pre.nii.gz")])
    run = RunDir(tmp_path / "run")
    cohort.save(run.path("cohort").parent)
    run.write("kinetic", pd.DataFrame({"kin__x": [1.0]},
                                      index=pd.Index(["A"], name="patient_id")))
    features, _, y = load_modelling_inputs(run)
    excluded = modelling_exclusions(run, None, features, y)
    rows = {r.patient_id: (r.reason, r.message) for r in excluded.itertuples()}
    assert list(y.index) == ["A"] and set(rows) == {"B", "U", "D"}
    assert rows["U"] == ("unlabelled", "no pCR label: prediction only")
    assert rows["B"][0] == "excluded upstream"
    assert "features/kinetic.parquet" in rows["B"][1] and "N4 failed" in rows["B"][1]
    assert "duplicate patient_id" in rows["D"][1]
    assert exclusion_line(excluded, len(y)) == (
        "model inputs: 4 patients: 1 used, 3 excluded (1 without a pCR label, 2 excluded "
        "upstream)")
