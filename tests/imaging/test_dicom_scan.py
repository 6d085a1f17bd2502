"""DICOM header scan: what a series holds and how its timepoints are told apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.layouts import DCE_VOLUMES, write_dicom_series
from workbench.imaging.dicom import read_dicom_series
from workbench.imaging.dicom_scan import describe_dicom_series, list_temporal_positions

VOLUMES = DCE_VOLUMES  # the series of the `dce` fixture (tests/imaging/conftest.py)


def test_headers_describe_the_series(dce: Path) -> None:
    assert list_temporal_positions(dce) == [1, 2, 3]
    info = describe_dicom_series(dce)
    assert (info.n_files, info.n_slices) == (18, 6)
    assert info.ordered_by == "TemporalPositionIdentifier"
    assert info.times_s == (0.0, 150.0, 450.0)
    assert info.description == "Dynamic-3dfgre" and info.patient_id == "ISPY1_1001"


@pytest.mark.parametrize(("tags", "ordered_by"), [
    ({"with_tpi": False}, "TriggerTime"),
    ({"with_tpi": False, "with_trigger": False}, "AcquisitionTime"),
    ({"with_tpi": False, "with_trigger": False, "with_acquisition_time": False},
     "InstanceNumber"),
])
def test_timepoints_without_temporal_position_identifier(tmp_path: Path, tags: dict,
                                                         ordered_by: str) -> None:
    write_dicom_series(tmp_path / "s", VOLUMES, times_s=(0, 150, 450), **tags)
    assert describe_dicom_series(tmp_path / "s").ordered_by == ordered_by
    for t, stored in enumerate(VOLUMES, start=1):
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(read_dicom_series(tmp_path / "s", t)), stored)
