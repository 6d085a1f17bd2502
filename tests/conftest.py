"""Shared test helpers: the ../shared reference data and tiny NIfTI patients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
ISPY1_XLSX = SHARED / "data" / "ispy1_clinical" / "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"


@pytest.fixture
def ispy1_xlsx() -> Path:
    """The real I-SPY1 clinical spreadsheet, or a skip saying why it is absent."""
    if not ISPY1_XLSX.is_file():
        pytest.skip(f"real I-SPY1 spreadsheet not found at {ISPY1_XLSX} "
                    "(../shared is absent in a fresh clone; CI provides it)")
    return ISPY1_XLSX


def write_tiny_patient(root: Path, pid: str, *, shape=(24, 20, 8), spacing=(0.8, 0.8, 2.2),
                       origin=(-10.0, 5.0, 30.0), phases=("pre", "early", "late"),
                       seed: int = 0) -> dict[str, str]:
    """Write a small patient (phases + binary mask, one grid) as NIfTI; return its paths."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    folder = Path(root) / pid
    folder.mkdir(parents=True, exist_ok=True)
    zyx = shape[::-1]
    mask = np.zeros(zyx, np.uint8)
    mask[2:6, 6:14, 8:16] = 1
    paths: dict[str, str] = {}
    for i, phase in enumerate(phases):
        arr = (100 + 20 * rng.standard_normal(zyx) + 80 * i * mask).astype(np.int16)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(spacing)
        img.SetOrigin(origin)
        p = folder / f"{phase}.nii.gz"
        sitk.WriteImage(img, str(p))
        paths[f"image_{phase}"] = str(p)
    m = sitk.GetImageFromArray(mask)
    m.SetSpacing(spacing)
    m.SetOrigin(origin)
    sitk.WriteImage(m, str(folder / "mask.nii.gz"))
    paths["mask"] = str(folder / "mask.nii.gz")
    return paths
