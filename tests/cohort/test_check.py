"""Cohort QC on hostile inputs: one problem line per bad file, the others still pass.

Truncated files, a header claiming billions of voxels, a FIFO, a 4-D volume, one file used
for two phases (by path or by content) and a phase off the grid: ``check_cohort`` reports each
with the file it concerns, never hangs or allocates gigabytes, and the CLI prints the report
without a traceback (``--strict`` exits 1).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from fixtures.images import write_tiny_patient
from workbench.cohort.check import check_cohort, format_report
from workbench.cohort.loaders.manifest import load_manifest

BOMB = b"NDims = 3\nDimSize = 3000 3000 300\nElementType = MET_USHORT\nElementDataFile = LOCAL\n"


def _hostile_cohort(tmp_path: Path) -> Path:
    patients = {pid: write_tiny_patient(tmp_path, pid, seed=i) for i, pid in enumerate(
        ("GOOD", "TRUNC", "BOMB", "FIFO", "FOURD", "SAME", "COPY", "GRID"))}
    trunc = patients["TRUNC"]
    plain = Path(trunc["image_pre"].replace(".nii.gz", ".nii"))
    sitk.WriteImage(sitk.ReadImage(trunc["image_pre"]), str(plain), False)
    plain.write_bytes(plain.read_bytes()[:-500])
    trunc["image_pre"] = str(plain)
    bomb = tmp_path / "BOMB" / "early.mha"
    bomb.write_bytes(BOMB)
    patients["BOMB"]["image_early"] = str(bomb)
    fifo = tmp_path / "FIFO" / "late.nii"
    os.mkfifo(fifo)
    patients["FIFO"]["image_late"] = str(fifo)
    four = patients["FOURD"]
    pre = sitk.ReadImage(four["image_pre"])
    sitk.WriteImage(sitk.JoinSeries([pre, pre]), four["image_pre"])
    patients["SAME"]["image_early"] = patients["SAME"]["image_pre"]
    copy = patients["COPY"]
    shutil.copy(copy["image_pre"], tmp_path / "COPY" / "late.nii.gz")
    grid = patients["GRID"]
    late = sitk.ReadImage(grid["image_late"])
    late.SetOrigin((0.0, 0.0, 0.0))
    sitk.WriteImage(late, grid["image_late"])
    rows = [{"patient_id": pid, "pcr": i % 2, "age": 50, "hr_her2": "HER2+", **paths}
            for i, (pid, paths) in enumerate(patients.items())]
    csv = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


@pytest.mark.timeout(120)
def test_every_bad_file_is_one_problem_naming_it(tmp_path):
    report = check_cohort(load_manifest(_hostile_cohort(tmp_path)), jobs=1, progress=False)
    found = {(p.patient_id, Path(p.file).name): p.message for p in report.problems}
    assert ("TRUNC", "pre.nii") in found and "is truncated" in found["TRUNC", "pre.nii"]
    assert "claims 2,700,000,000 voxels" in found["BOMB", "early.mha"]
    assert "is a FIFO" in found["FIFO", "late.nii"]
    assert "is 4-D" in found["FOURD", "pre.nii.gz"]
    assert found["SAME", "pre.nii.gz"].startswith(
        "phase 'early' and phase 'pre' are the same input (same file")
    assert "identical content" in found["COPY", "late.nii.gz"]
    assert found["GRID", "late.nii.gz"].startswith(
        "phase 'late' does not match phase 'pre' grid: origin (0.0, 0.0, 0.0) != (-10.0, 5.0, "
        "30.0)")
    assert len(report.problems) == 7, report.problems  # one per bad file, nothing else
    assert report.ok_patients == ["GOOD"]
    text = format_report(report)
    assert "passing image QC       : 1" in text and "np.float64" not in text


def test_the_voxel_cap_is_a_keyword_of_check_cohort(tmp_path):
    paths = write_tiny_patient(tmp_path, "P1")
    csv = tmp_path / "manifest.csv"
    pd.DataFrame([{"patient_id": "P1", "pcr": 1, **paths}]).to_csv(csv, index=False)
    report = check_cohort(load_manifest(csv), jobs=1, progress=False, max_voxels=100)
    assert len(report.problems) == 4  # three phases and the mask
    assert all("more than the limit of 100" in p.message for p in report.problems)


@pytest.mark.timeout(120)
def test_the_cli_prints_the_report_without_a_traceback(tmp_path, capsys):
    from workbench.cli import main

    csv = _hostile_cohort(tmp_path)
    assert main(["-q", "cohort", "check", str(csv), "--jobs", "1"]) == 0
    assert main(["-q", "cohort", "check", str(csv), "--jobs", "1", "--strict"]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert out.out.count("  - ERROR: ") == 2 * 7
    assert "passing image QC       : 1" in out.out


@pytest.mark.timeout(180)
def test_stored_results_are_reused_until_an_input_or_the_cap_changes(tmp_path, monkeypatch):
    import numpy as np

    from workbench.cohort import check

    cohort = load_manifest(_hostile_cohort(tmp_path))
    store = tmp_path / "qc"
    unstored = check_cohort(cohort, jobs=1, progress=False)
    first = check_cohort(cohort, jobs=1, progress=False, store=store)
    checked = []
    real = check.check_patient

    def counting(row, *args):
        checked.append(row["patient_id"])
        return real(row, *args)

    monkeypatch.setattr(check, "check_patient", counting)
    second = check_cohort(cohort, jobs=1, progress=False, store=store)
    assert checked == ["FIFO"]  # an input that cannot be hashed is checked every time
    for report in (first, second):  # the stored results are exactly the computed ones
        pd.testing.assert_frame_equal(report.images, unstored.images)
        assert report.problems == unstored.problems

    good = Path(cohort.df.set_index("patient_id").loc["GOOD", "image_early"])
    image = sitk.ReadImage(str(good))
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    arr[0, 0, 0] = np.nan
    changed = sitk.GetImageFromArray(arr)
    changed.CopyInformation(image)
    sitk.WriteImage(changed, str(good))
    checked.clear()
    third = check_cohort(cohort, jobs=1, progress=False, store=store)
    assert sorted(checked) == ["FIFO", "GOOD"]
    (nan,) = [p for p in third.problems if p.patient_id == "GOOD"]
    assert "phase 'early' has 1 NaN/inf voxels" in nan.message and nan.file == str(good)

    checked.clear()
    check_cohort(cohort, jobs=1, progress=False, store=store, max_voxels=100)
    assert sorted(checked) == sorted(cohort.imaging_ready()["patient_id"])
