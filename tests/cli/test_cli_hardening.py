"""Hardening of the command line (issue 11): patient IDs never become paths outside --out,
no patient vanishes without a row and a count, and every failure is one line and an exit code."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from fixtures.images import write_tiny_patient
from workbench.cli import EXIT_CODES, main

REPO = Path(__file__).resolve().parents[2]


def _config(root: Path, **extra) -> Path:
    """A tiny run config: no N4, kinetic features, no deep networks, one classifier."""
    cfg = {"name": "tiny", "jobs": 1, "cohort": {"format": "manifest", "path": "x"},
           "preprocessing": {"n4": False},
           "radiomics": {"phases": ["pre"],
                         "params": str(REPO / "configs" / "radiomics" / "paper.yaml")},
           "deep": {"networks": []}, "feature_sets": ["clinical"], "classifiers": ["lr"],
           **extra}
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _manifest(root: Path, rows: list[dict]) -> Path:
    path = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_patient_ids_never_write_outside_the_output_folder(tmp_path, capsys):
    sandbox = tmp_path / "sandbox"  # everything the command may touch lives here
    good = write_tiny_patient(sandbox / "img", "OK1")
    evil = ["../escaped", "../../escaped2", str(tmp_path / "abs_escaped"), "a/b", ".hidden"]
    rows = [{"patient_id": "OK1", "pcr": 1, **good}]
    rows += [{"patient_id": pid, "pcr": 0, **good} for pid in evil]
    csv = _manifest(sandbox, rows)
    cfg = _config(sandbox)
    out, cache = sandbox / "run", sandbox / "cache"
    before = _files(tmp_path)

    code = main(["-q", "extract", "kinetic", "--cohort", str(csv), "--config", str(cfg),
                 "--out", str(out), "--cache", str(cache), "--strict"])

    text = capsys.readouterr().out
    assert code == 1  # --strict: patients were excluded
    new = _files(tmp_path) - before
    assert new and all(p.is_relative_to(out) or p.is_relative_to(cache) for p in new), new
    assert not list(tmp_path.glob("*escaped*")) and not list(sandbox.glob("*escaped*"))
    assert "6 patients: 1 done, 5 excluded (0 failed here, 5 excluded upstream)" in text
    errors = pd.read_csv(out / "features" / "kinetic.errors.csv", keep_default_na=False)
    assert set(errors["patient_id"]) == set(evil)
    assert set(errors["step"]) == {"excluded upstream"}
    assert errors["message"].str.contains("is not allowed").all()
    problems = pd.read_csv(out / "cohort" / "problems.csv", keep_default_na=False)
    assert set(evil) <= set(problems["patient_id"])  # the cohort is saved for `model`


def test_a_deep_crop_of_an_unsafe_id_is_an_error_row_not_a_file(tmp_path):
    from workbench.features.deep.crops import CropSettings
    from workbench.features.deep.extract import _crop_units

    paths = write_tiny_patient(tmp_path / "img", "P1")
    phases = {p: paths[f"image_{p}"] for p in ("pre", "early", "late")}
    crops = tmp_path / "run" / "features" / "crops"
    crops.mkdir(parents=True)
    bad = ["../../escaped", str(tmp_path / "abs_escaped")]
    records, computed, errors = _crop_units(
        CropSettings(image_size=32), tmp_path / "store", crops,
        {pid: (phases, paths["mask"]) for pid in bad}, {pid: ["d"] for pid in bad}, set(),
        progress=False)
    assert records == {} and computed == {}
    assert [e["patient_id"] for e in errors] == bad
    assert all("cannot be part of a file name" in e["message"] for e in errors)
    assert not list(tmp_path.rglob("*.png"))


def test_duplicates_and_bad_labels_are_counted_and_listed(tmp_path, capsys):
    a = write_tiny_patient(tmp_path / "img", "A")
    csv = _manifest(tmp_path, [{"patient_id": "A", "pcr": 1, **a},
                               {"patient_id": "B", "pcr": 0, **a},
                               {"patient_id": "B", "pcr": 1, **a},
                               {"patient_id": "C", "pcr": 7, **a}])
    cfg = _config(tmp_path)
    args = ["-q", "preprocess", str(csv), "--config", str(cfg), "--out", str(tmp_path / "pre")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "3 patients in the source: 1 kept" in text
    assert "preprocess: 3 patients: 1 done, 2 excluded (0 failed here, 2 excluded upstream)" \
        in text
    assert "duplicate patient_id in rows [1, 2]" in text and "pcr label 7" in text
    problems = pd.read_csv(tmp_path / "pre" / "preprocess_problems.csv")
    assert set(problems["patient_id"]) == {"B", "C"}
    assert main(args + ["--strict"]) == 1  # the second run is cached: still counted
    assert "--strict: 2 patient(s) excluded" in capsys.readouterr().out


def test_a_patient_lost_in_preprocessing_is_in_the_extraction_errors(tmp_path, capsys):
    good = write_tiny_patient(tmp_path / "img", "A")
    bad = write_tiny_patient(tmp_path / "img", "B", seed=1)
    Path(bad["mask"]).write_bytes(b"garbage")
    csv = _manifest(tmp_path, [{"patient_id": "A", "pcr": 1, **good},
                               {"patient_id": "B", "pcr": 0, **bad}])
    out = tmp_path / "run"
    code = main(["-q", "extract", "kinetic", "--cohort", str(csv), "--config",
                 str(_config(tmp_path)), "--out", str(out), "--cache", str(tmp_path / "c")])
    text = capsys.readouterr().out
    assert code == 0
    assert "preprocess: 2 patients: 1 done, 1 excluded (1 failed here, 0 excluded upstream)" \
        in text
    assert "kinetic: 17 features; 2 patients: 1 done, 1 excluded (0 failed here, 1 excluded " \
           "upstream)" in text
    errors = pd.read_csv(out / "features" / "kinetic.errors.csv")
    assert errors[["patient_id", "step"]].values.tolist() == [["B", "excluded upstream"]]
    assert (out / "cohort" / "cohort.parquet").is_file()


# --------------------------------------------------------------------------- one line, a code
def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_run_directory_without_its_cohort_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "features").mkdir(parents=True)
    pd.DataFrame({"kin__a": [1.0]}, index=pd.Index(["A"], name="patient_id")).to_parquet(
        run / "features" / "kinetic.parquet")
    cfg = str(_config(tmp_path))
    for argv in (["model", "--run", str(run), "--config", cfg],
                 ["audit", "--run", str(run), "--config", cfg]):
        assert main(["-q", *argv]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "cohort/cohort.parquet not found" in line and "workbench run / extract" in line
    assert main(["-q", "report", str(run)]) == 2
    assert "run_manifest.json not found" in _one_line(capsys.readouterr().err)


def test_out_must_be_a_folder_or_a_file_as_the_command_says(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    cfg = str(_config(tmp_path))
    csv = str(_manifest(tmp_path, [{"patient_id": "A", "image_pre": "a.nii.gz",
                                    "mask": "m.nii.gz"}]))
    for argv in (["synth", "--n", "1", "--out", str(a_file)],
                 ["preprocess", csv, "--config", cfg, "--out", str(a_file)],
                 ["extract", "kinetic", "--cohort", csv, "--config", cfg, "--out", str(a_file)],
                 ["cohort", "check", csv, "--out", str(a_file)],
                 ["table1", csv, "--out", str(a_file)],
                 ["run", "--config", cfg, "--out", str(a_file)]):
        assert main(["-q", *argv]) == 2, argv
        assert "is an existing file, not a folder" in _one_line(capsys.readouterr().err)
    assert main(["-q", "report", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is an existing folder" in _one_line(capsys.readouterr().err)
    assert a_file.read_text() == "x"


def test_an_unknown_headline_classifier_is_an_error_naming_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["model", "--run", str(tmp_path), "--headline-classifier", "nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'lr'" in err and "'rf'" in err
    cfg = str(_config(tmp_path))  # classifiers: [lr]
    assert main(["-q", "model", "--run", str(tmp_path), "--config", cfg,
                 "--headline-classifier", "rf"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--headline-classifier 'rf' is not one of the classifiers" in line and "['lr']" in line


def test_synth_of_one_class_says_the_oracle_auc_is_undefined(tmp_path, capsys):
    assert main(["-q", "synth", "--n", "1", "--jobs", "1", "--out", str(tmp_path / "s")]) == 0
    assert "cohort undefined (one class only" in capsys.readouterr().out


def test_unexpected_errors_are_one_line_and_exit_3(monkeypatch, capsys):
    from workbench.cli import commands

    def boom(args):
        raise TypeError("unsupported format string\nsecond line")

    monkeypatch.setattr(commands, "cmd_data", boom)
    assert main(["data"]) == 3
    line = _one_line(capsys.readouterr().err)
    assert line == ("internal error: TypeError: unsupported format string (run with -v for the "
                    "traceback)")
    assert main(["-v", "data"]) == 3
    assert "Traceback" in capsys.readouterr().err

    def denied(args):
        raise PermissionError(13, "Permission denied", "/x/out")

    monkeypatch.setattr(commands, "cmd_data", denied)
    assert main(["data"]) == 2
    assert _one_line(capsys.readouterr().err) == "error: Permission denied: /x/out"


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(f"{code} " in out for code in EXIT_CODES) and "exit codes:" in out
    with pytest.raises(SystemExit):
        main(["extract", "kinetic", "--help"])
    assert "--strict" in capsys.readouterr().out
