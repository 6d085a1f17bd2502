"""MAMA-MIA loader on a tiny release written in the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.layouts import (
    mama_mia_clinical_rows,
    timepoint_volume,
    tumour_mask,
    write_mama_mia,
    write_nifti,
)
from workbench.cohort import load_cohort
from workbench.cohort.loaders.mama_mia import load_mama_mia
from workbench.errors import CohortError, ConfigError
from workbench.imaging.io import read_image


@pytest.fixture()
def release(tmp_path: Path):
    return write_mama_mia(tmp_path)


def test_phase_files_map_to_pre_early_and_last_as_late(release) -> None:
    table = load_mama_mia(release.root)
    df = table.df.set_index("patient_id")
    for pid, files in release.images.items():
        assert df.loc[pid, "image_pre"] == str(files[0])
        assert df.loc[pid, "image_early"] == str(files[1])
        assert df.loc[pid, "image_late"] == str(files[-1])  # 0003 for Duke, 0005 for I-SPY2
        assert df.loc[pid, "mask"] == str(release.masks[pid])
    assert df.loc["DUKE_001", "image_pre"].endswith("DUKE_001/duke_001_0000.nii.gz")
    assert sorted(table.imaging_ready()["patient_id"]) == sorted(release.images)
    assert not [p for p in table.problems if p.severity == "error"]


def test_images_read_back(release) -> None:
    df = load_mama_mia(release.root).df.set_index("patient_id")
    late = sitk.GetArrayFromImage(read_image(df.loc["ISPY2_100899", "image_late"]))
    np.testing.assert_array_equal(late, timepoint_volume(6))
    pre = sitk.GetArrayFromImage(read_image(df.loc["DUKE_001", "image_pre"]))
    np.testing.assert_array_equal(pre, timepoint_volume(1))
    mask = sitk.GetArrayFromImage(read_image(df.loc["DUKE_001", "mask"]))
    np.testing.assert_array_equal(mask, tumour_mask())


def test_clinical_columns(release) -> None:
    df = load_mama_mia(release.root).df.set_index("patient_id")
    assert df.loc["DUKE_001", ["pcr", "race", "her2", "hr_her2"]].tolist() == [
        1, "African American", "positive", "HER2+"]
    assert df.loc["ISPY1_1001", ["pgr", "hr_her2"]].tolist() == ["positive", "HR+/HER2-"]
    assert df.loc["ISPY2_100899", "hr_her2"] == "triple negative"
    assert df.loc["ISPY2_100899", "source_dataset"] == "ISPY2"


def test_orphan_folder_lonely_row_and_missing_files(tmp_path: Path) -> None:
    rows = mama_mia_clinical_rows(["DUKE_001", "ISPY1_1001", "ISPY2_100899", "NACT_01"])
    rows = [r for r in rows if r["patient_id"] != "ISPY2_100899"]  # folder without a row
    release = write_mama_mia(tmp_path, clinical_rows=rows, masks_for=["DUKE_001"])
    release.images["ISPY1_1001"][1].unlink()  # early phase missing
    table = load_mama_mia(release.root)
    by = {(p.patient_id, p.severity): p for p in table.problems}
    orphan = by[("ISPY2_100899", "error")]
    assert "no row in the clinical workbook" in orphan.message
    assert orphan.file == str(release.root / "images" / "ISPY2_100899")
    assert "ISPY2_100899" not in table.patient_ids
    assert "no image folder" in by[("NACT_01", "warning")].message
    assert "NACT_01" in table.patient_ids
    ispy1 = [p for p in table.problems if p.patient_id == "ISPY1_1001"]
    assert any("missing phase 'early'" in p.message for p in ispy1)
    assert any("2 phase files found but num_phases says 3" in p.message for p in ispy1)
    assert any("no expert segmentation" in p.message and p.file == str(
        release.root / "segmentations" / "expert" / "ispy1_1001.nii.gz") for p in ispy1)
    assert table.imaging_ready()["patient_id"].tolist() == ["DUKE_001"]


def test_duplicate_ids_and_bad_labels_exclude_only_those_patients(tmp_path: Path) -> None:
    rows = mama_mia_clinical_rows(["DUKE_001", "ISPY1_1001", "ISPY2_100899"])
    rows.append(dict(rows[0]))
    rows[1]["pcr"] = "yes"
    release = write_mama_mia(tmp_path, clinical_rows=rows)
    table = load_mama_mia(release.root)
    errors = {p.patient_id: p for p in table.problems if p.severity == "error"}
    assert "duplicate patient_id" in errors["DUKE_001"].message
    assert "pcr label 'yes'" in errors["ISPY1_1001"].message
    assert errors["DUKE_001"].file == errors["ISPY1_1001"].file == str(release.clinical)
    assert table.patient_ids == ["ISPY2_100899"]


def test_unreadable_status_is_a_coding_error_keeping_the_patient(tmp_path: Path) -> None:
    rows = mama_mia_clinical_rows(["DUKE_001"])
    rows[0]["her2"] = 3
    rows[0]["pr"] = "pos"  # an accepted spelling
    release = write_mama_mia(tmp_path, phases={"DUKE_001": 3}, clinical_rows=rows)
    table = load_mama_mia(release.root)
    [problem] = [p for p in table.problems if p.step == "coding"]
    assert problem.patient_id == "DUKE_001" and problem.severity == "error"
    assert problem.message.startswith("her2 value 3 (column 'her2') is not an accepted")
    assert problem.file == str(release.clinical)
    assert table.df["her2"].tolist() == [None] and table.df["pgr"].tolist() == ["positive"]
    assert table.patients_with_errors() == {"DUKE_001"}
    # mapped by the run config, it is read
    mapped = load_mama_mia(release.root, coding={"her2": {"3": "positive"}})
    assert mapped.df["her2"].tolist() == ["positive"] and not mapped.patients_with_errors()


def test_automatic_segmentations(release) -> None:
    write_nifti(release.root / "segmentations" / "automatic" / "duke_001.nii.gz", tumour_mask())
    df = load_mama_mia(release.root, segmentation="automatic").df.set_index("patient_id")
    assert df.loc["DUKE_001", "mask"].endswith("automatic/duke_001.nii.gz")
    assert df["mask"].isna().sum() == 2


def test_bad_arguments(release, tmp_path: Path) -> None:
    with pytest.raises(CohortError, match="clinical workbook not found"):
        load_mama_mia(tmp_path)
    with pytest.raises(ConfigError, match="phases must be among"):
        load_mama_mia(release.root, phases=("post3",))
    with pytest.raises(ConfigError, match="segmentation must be one of"):
        load_mama_mia(release.root, segmentation="manual")


def test_registry(release) -> None:
    table = load_cohort(release.root, fmt="mama_mia")
    assert table.name == "mama_mia" and len(table.df) == 3
    with pytest.raises(ConfigError, match="looks like fmt='mama_mia'"):
        load_cohort(release.root)
