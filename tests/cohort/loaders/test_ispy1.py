"""I-SPY1: a tiny TCIA download written in its layout (DICOM series, STV masks, workbook)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.layouts import (
    ORIGIN,
    SAGITTAL,
    SPACING,
    direction_from_orientation,
    ispy1_clinical_rows,
    timepoint_volume,
    tumour_mask,
    write_dicom_series,
    write_ispy1_tcia,
    write_nifti,
)
from workbench.cohort import LOADERS, load_cohort
from workbench.cohort.loaders.ispy1 import load_ispy1
from workbench.errors import CohortError, ConfigError
from workbench.imaging.io import read_image

# --------------------------------------------------------------------------------------------
# a tiny download in the TCIA layout


@pytest.fixture()
def download(tmp_path: Path):
    return write_ispy1_tcia(tmp_path)


def test_phases_point_at_the_baseline_dce_series(download) -> None:
    table = load_ispy1(download.root.parent)
    df = table.df.set_index("patient_id")
    for pid in ("ISPY1_1001", "ISPY1_1002"):
        series = download.dce_series[pid]
        assert df.loc[pid, "image_pre"] == f"{series}#t=1"
        assert df.loc[pid, "image_early"] == f"{series}#t=2"
        assert df.loc[pid, "image_late"] == f"{series}#t=3"
        assert df.loc[pid, "mask"] == str(download.masks / f"{pid}.nii.gz")
    series = download.dce_series["ISPY1_1003"]  # 5 timepoints at 0, 75, 150, 300, 450 s
    assert df.loc["ISPY1_1003", "image_early"] == f"{series}#t=3"
    assert df.loc["ISPY1_1003", "image_late"] == f"{series}#t=5"
    note = [p for p in table.problems
            if p.patient_id == "ISPY1_1003" and "5 timepoints" in p.message]
    assert note and note[0].severity == "warning"
    assert table.imaging_ready()["patient_id"].tolist() == ["ISPY1_1001", "ISPY1_1002"]
    assert table.source == str(download.root.parent)


def test_images_read_back_with_values_and_geometry(download) -> None:
    df = load_ispy1(download.root).df.set_index("patient_id")
    for pid in ("ISPY1_1001", "ISPY1_1002"):
        slope, intercept = download.rescale[pid]
        for t, phase in enumerate(("pre", "early", "late")):
            image = read_image(df.loc[pid, f"image_{phase}"], patient=pid)
            np.testing.assert_array_equal(
                sitk.GetArrayFromImage(image),
                download.volumes[pid][t].astype(np.float32) * slope + intercept)
            np.testing.assert_allclose(image.GetSpacing(), SPACING, atol=1e-4)
            np.testing.assert_allclose(image.GetOrigin(), ORIGIN, atol=1e-4)
            np.testing.assert_allclose(image.GetDirection(),
                                       direction_from_orientation(SAGITTAL), atol=1e-6)
        mask = read_image(df.loc[pid, "mask"], patient=pid, what="tumour mask")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), tumour_mask())


def test_clinical_columns_are_readable(download) -> None:
    df = load_ispy1(download.root).df.set_index("patient_id")
    assert df.loc["ISPY1_1001", ["race", "er", "hr_her2", "laterality"]].tolist() == [
        "Caucasian", "positive", "HR+/HER2-", "left"]
    assert df.loc["ISPY1_1002", ["pcr", "her2", "hr_her2"]].tolist() == [1, "positive", "HER2+"]
    assert df.loc["ISPY1_1003", "hr_her2"] == "triple negative"
    assert df.loc["ISPY1_1001", "mri_ld_mm"] == 50.0


def test_clinical_row_without_images_and_images_without_clinical_row(tmp_path: Path) -> None:
    download = write_ispy1_tcia(tmp_path, imaged=(1001, 1002, 1099), masks_for=(1001,))
    table = load_ispy1(download.root)
    problems = {(p.patient_id, p.severity): p for p in table.problems}
    orphan = problems[("ISPY1_1099", "error")]
    assert "no row in the clinical workbook" in orphan.message
    assert orphan.file == str(download.root / "ISPY1_1099")
    assert "ISPY1_1099" not in table.patient_ids
    lonely = problems[("ISPY1_1004", "warning")]
    assert "no image folder" in lonely.message
    assert "ISPY1_1004" in table.patient_ids  # kept for clinical-only use
    missing_mask = [p for p in table.problems if p.patient_id == "ISPY1_1002"
                    and "no STV mask" in p.message]
    assert missing_mask[0].file == str(download.masks / "ISPY1_1002.nii.gz")
    assert table.imaging_ready()["patient_id"].tolist() == ["ISPY1_1001"]


def test_duplicate_subject_excludes_only_that_patient(tmp_path: Path) -> None:
    predictors, outcomes = ispy1_clinical_rows((1001, 1002, 1003, 1004))
    predictors.append(dict(predictors[1]))
    download = write_ispy1_tcia(tmp_path, predictors=predictors, outcomes=outcomes)
    table = load_ispy1(download.root)
    dup = [p for p in table.problems if p.patient_id == "ISPY1_1002" and p.severity == "error"]
    assert dup and "appears 2 times in sheet 'predictors'" in dup[0].message
    assert "rows [3, 6]" in dup[0].message and dup[0].file == str(download.clinical)
    assert table.patient_ids == ["ISPY1_1001", "ISPY1_1003", "ISPY1_1004"]


def test_label_other_than_0_1_excludes_only_that_patient(tmp_path: Path) -> None:
    predictors, outcomes = ispy1_clinical_rows((1001, 1002, 1003))
    outcomes[0]["PCR"] = 2
    download = write_ispy1_tcia(tmp_path, clinical=(1001, 1002, 1003), predictors=predictors,
                                outcomes=outcomes)
    table = load_ispy1(download.root)
    bad = [p for p in table.problems if p.patient_id == "ISPY1_1001"]
    assert any("pcr label 2" in p.message and p.file == str(download.clinical) for p in bad)
    assert table.patient_ids == ["ISPY1_1002", "ISPY1_1003"]


def test_a_broken_series_is_reported_and_the_others_load(download) -> None:
    for path in list(download.dce_series["ISPY1_1002"].glob("*.dcm"))[:1]:
        path.unlink()
    table = load_ispy1(download.root)
    bad = [p for p in table.problems if p.patient_id == "ISPY1_1002" and p.severity == "error"]
    assert any("unequal numbers of files" in p.message for p in bad)
    assert table.imaging_ready()["patient_id"].tolist() == ["ISPY1_1001"]


def test_missing_mask_folder_and_explicit_masks(download, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.move(str(download.masks), str(moved))
    table = load_ispy1(download.root)
    assert table.df["mask"].isna().all()
    assert any("STV mask folder not found" in p.message for p in table.problems)
    table = load_ispy1(download.root, masks=moved)
    assert table.df["mask"].notna().sum() == 2


def test_without_reading_headers_takes_1_2_3(download) -> None:
    df = load_ispy1(download.root, read_headers=False).df.set_index("patient_id")
    assert df.loc["ISPY1_1003", "image_late"].endswith("#t=3")


def test_nifti_images_of_the_segmentation_collection(download) -> None:
    base = download.masks.parent / "images_bias-corrected_resampled_zscored_nifti" / "ISPY1_1001"
    for k in range(3):
        write_nifti(base / f"ISPY1_1001_DCE_{k:04d}_N3_zscored.nii.gz",
                    timepoint_volume(k + 1).astype(np.float32))
    table = load_ispy1(download.masks.parent, clinical=download.clinical, images="nifti")
    row = table.df.set_index("patient_id").loc["ISPY1_1001"]
    assert row["image_late"] == str(base / "ISPY1_1001_DCE_0002_N3_zscored.nii.gz")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(row["image_early"])),
                                  timepoint_volume(2))
    assert table.imaging_ready()["patient_id"].tolist() == ["ISPY1_1001"]


def test_site_with_one_volume_per_series_is_an_error(tmp_path: Path) -> None:
    download = write_ispy1_tcia(tmp_path, imaged=(1001,), clinical=(1001,), masks_for=())
    series = download.dce_series["ISPY1_1001"]
    shutil.rmtree(series)
    write_dicom_series(series, [timepoint_volume(1)], patient_id="ISPY1_1001")
    table = load_ispy1(download.root)
    assert any("holds 1 timepoint" in p.message and p.severity == "error"
               for p in table.problems)


def test_bad_arguments(download, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="phases must be among"):
        load_ispy1(download.root, phases=("pre", "wash"))
    with pytest.raises(CohortError, match="clinical workbook"):
        load_ispy1(download.root, clinical=tmp_path / "missing.xlsx")
    with pytest.raises(CohortError, match="root folder not found"):
        load_ispy1(tmp_path / "nowhere")
    empty = tmp_path / "x" / "empty"
    empty.mkdir(parents=True)
    with pytest.raises(CohortError, match="workbook .* not found.*pass clinical="):
        load_ispy1(empty)


def test_registry(download, tmp_path: Path, monkeypatch) -> None:
    assert set(LOADERS) >= {"ispy1", "mama_mia", "breastdcedl", "manifest"}
    table = load_cohort(download.root, fmt="ispy1", phases=("pre", "early"))
    assert table.name == "ispy1" and table.phases == ("pre", "early")
    with pytest.raises(ConfigError, match=r"one of \['breastdcedl', 'ispy1'"):
        load_cohort(download.root, fmt="nope")
    with pytest.raises(ConfigError, match="looks like fmt='ispy1'"):
        load_cohort(download.root.parent)
    calls = []
    monkeypatch.setitem(LOADERS, "manifest", lambda path, **kw: calls.append((path, kw)))
    (tmp_path / "cohort.csv").write_text("patient_id\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.csv").write_text("patient_id\n")
    load_cohort(tmp_path / "cohort.csv", phases=("pre",))
    load_cohort(tmp_path / "run")
    assert calls == [(tmp_path / "cohort.csv", {"phases": ("pre",)}),
                     (tmp_path / "run" / "manifest.csv", {})]
