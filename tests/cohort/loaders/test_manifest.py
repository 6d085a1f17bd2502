"""The manifest loader and cohort QC, including every bad-input case of the foundation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fixtures.images import write_tiny_patient
from workbench.cohort.check import check_cohort, format_report
from workbench.cohort.loaders.manifest import load_manifest
from workbench.errors import CohortError


def _manifest(tmp_path: Path, rows: list[dict]) -> Path:
    csv = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def _row(pid, paths, **extra):
    return {"patient_id": pid, "pcr": 1, "age": 50, "hr_her2": "HER2+", **paths, **extra}


def _relative(paths, base):
    return {k: str(Path(v).relative_to(base)) for k, v in paths.items()}


def test_loads_relative_paths_and_phase_order(tmp_path):
    p = _relative(write_tiny_patient(tmp_path, "P1"), tmp_path)
    cohort = load_manifest(_manifest(tmp_path, [_row("P1", p)]))
    assert cohort.phases == ("pre", "early", "late")
    assert cohort.problems == []
    row = cohort.df.iloc[0]
    assert Path(row["image_early"]).is_absolute() and Path(row["image_early"]).is_file()
    assert row["pcr"] == 1 and row["hr_her2"] == "HER2+" and row["age"] == 50.0
    assert len(cohort.imaging_ready()) == 1


def test_folder_argument_and_missing_manifest(tmp_path):
    p = write_tiny_patient(tmp_path, "P1")
    _manifest(tmp_path, [_row("P1", p)])
    assert load_manifest(tmp_path).patient_ids == ["P1"]
    with pytest.raises(CohortError, match="manifest CSV not found"):
        load_manifest(tmp_path / "elsewhere")


def test_duplicates_bad_labels_and_missing_files_are_reported(tmp_path):
    good = write_tiny_patient(tmp_path, "GOOD")
    dup = write_tiny_patient(tmp_path, "DUP")
    lost = write_tiny_patient(tmp_path, "LOST")
    Path(lost["image_late"]).unlink()
    nophase = dict(write_tiny_patient(tmp_path, "NOPHASE"))
    nophase["image_early"] = ""
    rows = [_row("GOOD", good), _row("DUP", dup), _row("DUP", dup),
            _row("BADLABEL", good, pcr=2), _row("TEXTLABEL", good, pcr="yes"),
            _row("LOST", lost), _row("NOPHASE", nophase), _row("NOLABEL", good, pcr=None),
            _row("WEIRD", good, hr_her2="luminal B", age="fifty")]
    cohort = load_manifest(_manifest(tmp_path, rows))
    by_patient = {}
    for prob in cohort.problems:
        by_patient.setdefault(prob.patient_id, []).append(prob)
    assert "duplicate patient_id" in by_patient["DUP"][0].message
    assert "manifest.csv" in by_patient["DUP"][0].file
    assert "pcr label '2'" in by_patient["BADLABEL"][0].message
    assert "'yes'" in by_patient["TEXTLABEL"][0].message
    assert by_patient["LOST"][0].file.endswith("late.nii.gz")
    assert "does not exist" in by_patient["LOST"][0].message
    assert "missing phase 'early'" in by_patient["NOPHASE"][0].message
    # a value that cannot be read is an error (the patient stays, excluded from modelling and
    # imaging); an age that is not a number a warning
    assert {(p.step, p.severity) for p in by_patient["WEIRD"]} == {("coding", "error"),
                                                                     ("validate", "warning")}
    assert "WEIRD" in cohort.patients_with_errors()
    # excluded identities are gone, the others are all still there
    assert sorted(cohort.patient_ids) == ["GOOD", "LOST", "NOLABEL", "NOPHASE", "WEIRD"]
    assert sorted(cohort.imaging_ready()["patient_id"]) == ["GOOD", "NOLABEL"]
    assert cohort.df.set_index("patient_id").loc["NOLABEL", "pcr"] is pd.NA
    assert len(cohort.labelled()) == 4
    weird = cohort.df.set_index("patient_id").loc["WEIRD"]
    assert weird["hr_her2"] is None and np.isnan(weird["age"])


def test_qc_reports_corrupt_geometry_empty_and_nonbinary_masks(tmp_path):
    import SimpleITK as sitk

    good = write_tiny_patient(tmp_path, "GOOD")
    corrupt = write_tiny_patient(tmp_path, "CORRUPT")
    Path(corrupt["image_pre"]).write_bytes(b"\x1f\x8b not really a nifti")
    shifted = write_tiny_patient(tmp_path, "SHIFTED")
    img = sitk.ReadImage(shifted["mask"])
    img.SetSpacing((1.0, 1.0, 3.0))
    sitk.WriteImage(img, shifted["mask"])
    empty = write_tiny_patient(tmp_path, "EMPTY")
    img = sitk.ReadImage(empty["mask"])
    sitk.WriteImage(img * 0, empty["mask"])
    labels = write_tiny_patient(tmp_path, "LABELS")
    img = sitk.ReadImage(labels["mask"])
    sitk.WriteImage(img * 2, labels["mask"])
    # NaN in NIfTI (ITK's reader would silently read 0) and in NRRD
    import nibabel as nib

    nan = write_tiny_patient(tmp_path, "NAN")
    nii = nib.load(nan["image_pre"])
    arr = np.asanyarray(nii.dataobj).astype(np.float32)
    arr[0, 0, 0] = np.nan
    header = nii.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(arr, nii.affine, header), nan["image_pre"])
    nan_nrrd = write_tiny_patient(tmp_path, "NANNRRD")
    img = sitk.Cast(sitk.ReadImage(nan_nrrd["image_early"]), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(img)
    arr[1, 2, 3] = np.inf
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    nan_nrrd["image_early"] = nan_nrrd["image_early"].replace(".nii.gz", ".nrrd")
    sitk.WriteImage(out, nan_nrrd["image_early"])

    rows = [_row(pid, p) for pid, p in [("GOOD", good), ("CORRUPT", corrupt),
                                         ("SHIFTED", shifted), ("EMPTY", empty),
                                         ("LABELS", labels), ("NAN", nan),
                                         ("NANNRRD", nan_nrrd)]]
    cohort = load_manifest(_manifest(tmp_path, rows))
    report = check_cohort(cohort, jobs=1, progress=False)
    msgs = {p.patient_id: p for p in report.problems}
    assert "corrupt or unsupported" in msgs["CORRUPT"].message
    assert msgs["CORRUPT"].file.endswith("CORRUPT/pre.nii.gz")
    assert msgs["SHIFTED"].step == "geometry" and "spacing" in msgs["SHIFTED"].message
    assert "empty" in msgs["EMPTY"].message and msgs["EMPTY"].file.endswith("mask.nii.gz")
    assert "not binary" in msgs["LABELS"].message and "2" in msgs["LABELS"].message
    assert "1 NaN/inf voxels" in msgs["NAN"].message and msgs["NAN"].file.endswith("pre.nii.gz")
    assert "1 NaN/inf voxels" in msgs["NANNRRD"].message
    assert msgs["NANNRRD"].file.endswith("early.nrrd")
    assert report.ok_patients == ["GOOD"]
    text = format_report(report)
    assert "passing image QC       : 1" in text
    for pid in ("CORRUPT", "SHIFTED", "EMPTY", "LABELS", "NAN", "NANNRRD"):
        assert f"[patient {pid}]" in text


def test_no_patient_id_column_is_a_clear_error(tmp_path):
    csv = tmp_path / "manifest.csv"
    pd.DataFrame([{"id": 1, "image_pre": "x"}]).to_csv(csv, index=False)
    with pytest.raises(CohortError, match="no 'patient_id' column"):
        load_manifest(csv)
