"""DICOM series reading: timepoint selection, slice order, geometry, rescale, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.layouts import (
    DCE_VOLUMES,
    ORIGIN,
    SAGITTAL,
    SPACING,
    direction_from_orientation,
    timepoint_volume,
    write_dicom_series,
)
from workbench.errors import ImageError
from workbench.imaging.dicom import read_dicom_series
from workbench.imaging.dicom_scan import list_temporal_positions
from workbench.imaging.io import read_image

VOLUMES = DCE_VOLUMES  # the series of the `dce` fixture (tests/imaging/conftest.py)


def test_each_timepoint_has_its_own_values_with_rescale_applied(dce: Path) -> None:
    for t, stored in enumerate(VOLUMES, start=1):
        image = read_dicom_series(dce, temporal_position=t)
        assert image.GetPixelID() == sitk.sitkFloat32
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image),
                                      stored.astype(np.float32) * 2.0 - 100.0)


def test_geometry_is_the_written_one(dce: Path) -> None:
    image = read_dicom_series(dce, temporal_position=2)
    assert image.GetSize() == (16, 16, 6)
    np.testing.assert_allclose(image.GetSpacing(), SPACING, atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), ORIGIN, atol=1e-4)
    np.testing.assert_allclose(image.GetDirection(), direction_from_orientation(SAGITTAL),
                               atol=1e-6)


def test_selector_through_read_image(dce: Path) -> None:
    image = read_image(f"{dce}#t=3", patient="ISPY1_1001")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image),
                                  VOLUMES[2].astype(np.float32) * 2.0 - 100.0)


def test_oblique_slices_land_where_their_headers_say(tmp_path: Path) -> None:
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    row, col = np.array([c, s, 0.0]), np.array([-0.6 * s, 0.6 * c, 0.8])  # orthonormal
    orientation = (*row, *col)
    write_dicom_series(tmp_path / "s", [timepoint_volume(1)], orientation=orientation,
                       spacing=(0.9, 0.6, 1.7))
    image = read_dicom_series(tmp_path / "s")
    normal = np.cross(row, col)
    for k in range(6):
        expected = np.array(ORIGIN) + k * 1.7 * normal
        np.testing.assert_allclose(image.TransformIndexToPhysicalPoint((0, 0, k)), expected,
                                   atol=1e-3)
    np.testing.assert_allclose(image.TransformIndexToPhysicalPoint((1, 0, 0)),
                               np.array(ORIGIN) + 0.9 * row, atol=1e-3)
    np.testing.assert_allclose(image.TransformIndexToPhysicalPoint((0, 1, 0)),
                               np.array(ORIGIN) + 0.6 * col, atol=1e-3)


def test_single_volume_needs_no_selector(tmp_path: Path) -> None:
    write_dicom_series(tmp_path / "s", [timepoint_volume(1)], with_tpi=False)
    assert list_temporal_positions(tmp_path / "s") == [1]
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_dicom_series(tmp_path / "s")),
                                  timepoint_volume(1))


def test_multi_timepoint_series_without_selector_says_how_to_choose(dce: Path) -> None:
    with pytest.raises(ImageError, match=r"interleaves 3 timepoints.*#t=K") as info:
        read_dicom_series(dce, patient="ISPY1_1001")
    assert info.value.patient == "ISPY1_1001" and info.value.path == str(dce)


def test_unknown_timepoint(dce: Path) -> None:
    with pytest.raises(ImageError, match=r"#t=7 not in the series; it holds \[1, 2, 3\]"):
        read_dicom_series(dce, temporal_position=7, patient="P")


def _drop_one_file(folder: Path) -> None:
    sorted(folder.glob("*.dcm"))[0].unlink()


def _gap(folder: Path) -> None:
    import pydicom

    for path in folder.glob("*.dcm"):  # remove the 3rd slice of every timepoint
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if abs(float(ds.ImagePositionPatient[0]) - (ORIGIN[0] - 2 * SPACING[2])) < 1e-3:
            path.unlink()


def _second_series(folder: Path) -> None:
    write_dicom_series(folder, [timepoint_volume(1)], series_description="other")


def _not_dicom(folder: Path) -> None:
    for path in folder.glob("*.dcm"):
        path.write_bytes(b"not a dicom file")


@pytest.mark.parametrize(("damage", "message"), [
    (_drop_one_file, "unequal numbers of files"),
    (_gap, "uneven slice spacing"),
    (_second_series, "holds 2 DICOM series"),
    (_not_dicom, "no DICOM image files"),
])
def test_bad_series_raise_image_error_naming_patient_and_folder(dce: Path, damage,
                                                                 message: str) -> None:
    damage(dce)
    with pytest.raises(ImageError, match=message) as info:
        read_dicom_series(dce, temporal_position=1, patient="ISPY1_1001")
    assert info.value.patient == "ISPY1_1001"
    assert str(dce) in str(info.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        read_dicom_series(tmp_path / "nowhere", patient="P")
