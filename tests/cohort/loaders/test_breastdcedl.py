"""BreastDCEDL loader on tiny releases written in the published layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from fixtures.layouts import (
    _breastdcedl_row,
    timepoint_volume,
    tumour_mask,
    write_breastdcedl,
)
from workbench.cohort import load_cohort
from workbench.cohort.loaders.breastdcedl import load_breastdcedl
from workbench.errors import CohortError, ConfigError
from workbench.imaging.io import read_image


def test_combined_release_uses_the_metadata_acquisition_indices(tmp_path: Path) -> None:
    release = write_breastdcedl(tmp_path)
    table = load_breastdcedl(release.root)
    df = table.df.set_index("patient_id")
    spy2 = release.images["ACRIN-6698-102212"]
    assert df.loc["ACRIN-6698-102212", ["image_pre", "image_early", "image_late"]].tolist() == [
        str(spy2[0]), str(spy2[2]), str(spy2[6])]
    spy1 = release.images["ISPY1_1001"]
    assert df.loc["ISPY1_1001", "image_late"] == str(spy1[2])
    duke = release.images["Breast_MRI_001"]
    assert df.loc["Breast_MRI_001", "image_late"] == str(duke[3])
    assert pd.isna(df.loc["Breast_MRI_001", "mask"])  # Duke: bounding boxes only
    assert any("bounding boxes" in p.message for p in table.problems)
    assert df["source_dataset"].tolist() == ["ispy1", "ispy2", "duke"]
    assert df.loc["ACRIN-6698-102212", ["pcr", "race", "hr_her2"]].tolist() == [
        1, "African American", "HER2+"]
    assert sorted(table.imaging_ready()["patient_id"]) == ["ACRIN-6698-102212", "ISPY1_1001"]

    early = sitk.GetArrayFromImage(read_image(df.loc["ACRIN-6698-102212", "image_early"]))
    np.testing.assert_array_equal(early, timepoint_volume(3))
    mask = sitk.GetArrayFromImage(read_image(df.loc["ISPY1_1001", "mask"]))
    np.testing.assert_array_equal(mask, tumour_mask())


def test_zenodo_spy1_release(tmp_path: Path) -> None:
    release = write_breastdcedl(tmp_path, variant="spy1")
    table = load_breastdcedl(release.root)
    df = table.df.set_index("patient_id")
    files = release.images["ISPY1_1002"]
    assert df.loc["ISPY1_1002", ["image_pre", "image_early", "image_late"]].tolist() == [
        str(f) for f in files]
    assert df.loc["ISPY1_1002", "mask"].endswith("spy1_mask/ISPY1_1002_spy1_vis1_mask.nii.gz")
    assert df.loc["ISPY1_1001", ["er", "pgr", "mri_ld_mm"]].tolist() == [
        "positive", "negative", 60.0]
    assert table.imaging_ready()["patient_id"].tolist() == ["ISPY1_1001", "ISPY1_1002"]
    assert not table.problems


def test_min_crop_release_with_three_files_is_taken_in_order(tmp_path: Path) -> None:
    release = write_breastdcedl(tmp_path, acquisitions={"ACRIN-6698-102212": 3},
                                metadata_rows=[_breastdcedl_row(0, "ACRIN-6698-102212", 7,
                                                                "combined")])
    table = load_breastdcedl(release.root)
    files = release.images["ACRIN-6698-102212"]
    assert table.df.loc[0, "image_late"] == str(files[2])
    assert any("min-crop" in p.message and p.severity == "warning" for p in table.problems)


def test_orphans_lonely_rows_duplicates_and_bad_labels(tmp_path: Path) -> None:
    pids = ["ISPY1_1001", "ISPY1_1002", "ISPY1_1003", "ISPY1_1004"]
    rows = [_breastdcedl_row(i, pid, 3, "spy1") for i, pid in enumerate(pids)]
    rows.append(dict(rows[1]))  # ISPY1_1002 twice
    rows[2]["pCR"] = 3.0  # ISPY1_1003: not a label
    rows.append(_breastdcedl_row(0, "ISPY1_1005", 3, "spy1"))  # no files
    release = write_breastdcedl(tmp_path, variant="spy1",
                                acquisitions={pid: 3 for pid in pids + ["ISPY1_1099"]},
                                metadata_rows=rows)
    release.images["ISPY1_1004"][1].unlink()
    table = load_breastdcedl(release.root)
    errors = {}
    for p in table.problems:
        errors.setdefault((p.patient_id, p.severity), []).append(p)
    assert "no row in the metadata" in errors[("ISPY1_1099", "error")][0].message
    assert errors[("ISPY1_1099", "error")][0].file == str(release.root / "spt1_dce")
    assert "duplicate patient_id" in errors[("ISPY1_1002", "error")][0].message
    assert "pcr label 3.0" in errors[("ISPY1_1003", "error")][0].message
    assert errors[("ISPY1_1003", "error")][0].file == str(release.clinical)
    assert "no acquisition files" in errors[("ISPY1_1005", "warning")][0].message
    assert any("phase 'early' (index 1)" in p.message
               for p in errors[("ISPY1_1004", "error")])
    assert table.patient_ids == ["ISPY1_1001", "ISPY1_1004", "ISPY1_1005"]
    assert table.imaging_ready()["patient_id"].tolist() == ["ISPY1_1001"]


def test_metadata_discovery(tmp_path: Path) -> None:
    release = write_breastdcedl(tmp_path, variant="spy1")
    table = load_breastdcedl(tmp_path)  # one level above: the CSV is found below
    assert len(table.df) == 2
    shutil.copy(release.clinical, release.root / "BreastDCEDL_spy1_metadata_copy.csv")
    with pytest.raises(CohortError, match="several metadata CSVs"):
        load_breastdcedl(release.root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CohortError, match="no metadata CSV"):
        load_breastdcedl(empty)
    with pytest.raises(ConfigError, match="phases must be among"):
        load_breastdcedl(release.root, phases=("pre", "peak"))


def test_registry(tmp_path: Path) -> None:
    release = write_breastdcedl(tmp_path)
    assert load_cohort(release.root, fmt="breastdcedl").name == "breastdcedl"
    with pytest.raises(ConfigError, match="looks like fmt='breastdcedl'"):
        load_cohort(release.root)
