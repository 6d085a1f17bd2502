"""preprocess_patient refuses what cohort QC refuses: one file for two phases, images above
the voxel cap, and a 1 mm grid above it (a header claiming huge voxels)."""

from __future__ import annotations

import shutil

import pytest
import SimpleITK as sitk

from fixtures.images import write_tiny_patient
from workbench.errors import ImageError, PreprocessError
from workbench.imaging.preprocess import PreprocessSettings, preprocess_patient

FAST = PreprocessSettings(n4=False)


def _phases(paths: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("image_"): v for k, v in paths.items() if k != "mask"}


def test_one_file_for_two_phases_is_refused_as_in_qc(tmp_path):
    paths = write_tiny_patient(tmp_path, "P1")
    phases = _phases(paths)
    phases["early"] = phases["pre"]
    with pytest.raises(ImageError, match=r"\[patient P1\] step read: phase 'early' and phase "
                                         r"'pre' are the same input \(same file"):
        preprocess_patient(phases, paths["mask"], FAST, patient="P1")
    phases = _phases(paths)
    shutil.copy(phases["pre"], tmp_path / "copy.nii.gz")
    phases["late"] = str(tmp_path / "copy.nii.gz")
    with pytest.raises(ImageError, match="identical content"):
        preprocess_patient(phases, paths["mask"], FAST, patient="P1")


def test_the_voxel_cap_applies_to_inputs_and_to_the_1mm_grid(tmp_path):
    paths = write_tiny_patient(tmp_path, "P1")  # 24 x 20 x 8 voxels of 0.8 x 0.8 x 2.2 mm
    with pytest.raises(ImageError, match="more than the limit of 1,000"):
        preprocess_patient(_phases(paths), paths["mask"], FAST, patient="P1", max_voxels=1000)
    with pytest.raises(PreprocessError, match=r"would make 19×16×18 = 5,472 voxels, more than "
                                              r"the limit of 5,000"):  # inputs: 3,840 voxels
        preprocess_patient(_phases(paths), paths["mask"], FAST, patient="P1", max_voxels=5000)
    out = preprocess_patient(_phases(paths), paths["mask"], FAST, patient="P1", max_voxels=5472)
    assert out.images["pre"].GetSize() == (19, 16, 18)
    for key in ("image_pre", "image_early", "image_late", "mask"):  # claim 40 mm voxels
        img = sitk.ReadImage(paths[key])
        img.SetSpacing((40.0, 40.0, 40.0))
        sitk.WriteImage(img, paths[key])
    with pytest.raises(PreprocessError, match=r"step resample: resampling to 1.0 mm would make "
                                              r"960×800×320 = 245,760,000 voxels"):
        preprocess_patient(_phases(paths), paths["mask"], FAST, patient="P1")
