"""Isotropic resampling: origin and direction kept, extent within one voxel, masks stay binary."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.phantom import DIRECTION, ORIGIN, SIZE, SPACING, arr, synthetic_patient
from workbench.errors import ConfigError
from workbench.imaging.resample import resample_isotropic


def test_resample_isotropic_geometry_and_extent():
    phases, mask, _ = synthetic_patient()
    out = resample_isotropic(phases["pre"], 1.0)
    assert out.GetSpacing() == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(out.GetOrigin(), ORIGIN)
    np.testing.assert_allclose(out.GetDirection(), DIRECTION)
    assert out.GetPixelID() == sitk.sitkFloat32
    extent_in = np.array(SIZE) * np.array(SPACING)
    extent_out = np.array(out.GetSize()) * 1.0
    assert np.all(np.abs(extent_out - extent_in) <= 1.0)
    # the tumour stays where it was in physical space
    before = sitk.LabelShapeStatisticsImageFilter()
    before.Execute(mask)
    m1 = resample_isotropic(mask, 1.0, "nearest")
    after = sitk.LabelShapeStatisticsImageFilter()
    after.Execute(m1)
    np.testing.assert_allclose(after.GetCentroid(1), before.GetCentroid(1), atol=1.0)


def test_resampled_mask_stays_binary_uint8():
    _, mask, _ = synthetic_patient()
    out = resample_isotropic(mask, 1.0, "nearest")
    assert out.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(arr(out))) == {0, 1}
    vol_in = arr(mask).sum() * np.prod(SPACING)
    assert abs(arr(out).sum() - vol_in) / vol_in < 0.25


def test_resample_rejects_unknown_interpolator():
    phases, _, _ = synthetic_patient()
    with pytest.raises(ConfigError, match="interpolator"):
        resample_isotropic(phases["pre"], 1.0, "cubic")
