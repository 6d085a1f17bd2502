"""Geometry checks: a mask on another grid of the same scan is resampled in physical space."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from workbench.errors import GeometryError
from workbench.imaging.geometry import align_mask


def test_physical_space_mask_is_resampled_onto_the_image_grid():
    """I-SPY1 STV masks live on a 1 mm grid of the same scan: mask_space='physical'."""
    image = sitk.Image(40, 40, 12, sitk.sitkFloat32)
    image.SetSpacing((0.8, 0.8, 2.2))
    image.SetOrigin((-10.0, 4.0, 20.0))
    mask_1mm = sitk.Image(32, 32, 26, sitk.sitkUInt8)
    mask_1mm.SetOrigin((-10.0, 4.0, 20.0))
    arr = np.zeros((26, 32, 32), np.uint8)
    arr[8:16, 10:20, 10:20] = 1
    m = sitk.GetImageFromArray(arr)
    m.CopyInformation(mask_1mm)
    with pytest.raises(GeometryError, match="does not match the image grid"):
        align_mask(m, image, mask_space="grid", patient="P", path="m.nii.gz")
    out = align_mask(m, image, mask_space="physical", patient="P", path="m.nii.gz")
    assert out.GetSize() == image.GetSize() and out.GetSpacing() == image.GetSpacing()
    vol = sitk.GetArrayViewFromImage(out).sum() * 0.8 * 0.8 * 2.2
    assert abs(vol - arr.sum()) / arr.sum() < 0.25
    far = sitk.GetImageFromArray(arr)
    far.SetOrigin((500.0, 500.0, 500.0))
    with pytest.raises(GeometryError, match="outside the image"):
        align_mask(far, image, mask_space="physical", patient="P", path="m.nii.gz")
