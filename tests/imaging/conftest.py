"""The interleaved DCE series (3 timepoints, rescaled) read by the DICOM tests."""

from pathlib import Path

import pytest

from fixtures.layouts import DCE_VOLUMES, write_dicom_series


@pytest.fixture()
def dce(tmp_path: Path) -> Path:
    folder = tmp_path / "3.000000-Dynamic-3dfgre-55919"
    write_dicom_series(folder, DCE_VOLUMES, slope=2.0, intercept=-100.0, times_s=(0, 150, 450))
    (folder / "README.txt").write_text("not DICOM")  # ignored
    return folder
