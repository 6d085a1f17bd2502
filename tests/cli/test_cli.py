import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from fixtures.images import write_tiny_patient
from workbench.cli import main

BIN = Path(sys.executable).parent


def test_help_is_fast_and_imports_nothing_heavy():
    start = time.perf_counter()
    out = subprocess.run([str(BIN / "workbench"), "--help"], capture_output=True, text=True,
                         check=True)
    elapsed = time.perf_counter() - start
    assert "synth" in out.stdout and "cohort" in out.stdout and "table1" in out.stdout
    assert elapsed < 2.0, f"workbench --help took {elapsed:.2f} s"
    code = ("import sys, workbench.cli; heavy = {'tensorflow', 'SimpleITK', 'catboost', "
            "'pandas', 'sklearn', 'radiomics', 'panel'} & set(sys.modules); print(sorted(heavy))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_config_check_reports_unknown_key(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("cohort:\n  formt: manifest\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cohort.formt: unknown key" in err and str(bad) in err


def test_cohort_check_prints_every_problem(tmp_path, capsys):
    good = write_tiny_patient(tmp_path, "A")
    bad = write_tiny_patient(tmp_path, "B")
    Path(bad["mask"]).write_bytes(b"garbage")
    rows = [{"patient_id": "A", "pcr": 1, **good}, {"patient_id": "B", "pcr": 0, **bad},
            {"patient_id": "C", "pcr": 0, **good, "image_pre": str(tmp_path / "missing.nii.gz")}]
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    code = main(["-q", "cohort", "check", str(tmp_path / "manifest.csv"), "--jobs", "1",
                 "--out", str(tmp_path / "qc"), "--strict"])
    out = capsys.readouterr().out
    assert code == 1
    assert "passing image QC       : 1" in out
    assert "[patient B] mask" in out or "[patient B] read" in out
    assert "[patient C] load: phase 'pre' file does not exist" in out
    problems = pd.read_csv(tmp_path / "qc" / "qc_problems.csv")
    assert set(problems["patient_id"]) == {"B", "C"}
