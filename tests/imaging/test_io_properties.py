"""Property: for any NIfTI header, read_image returns the right image or raises ImageError.

Generated files vary the dimensions, the sizes, the data type, the spacing (including zero,
negative, NaN and infinite), the compression, truncation and the voxel cap. Nothing else may
be raised, nothing may hang (the timeout), and an image over the cap or shorter than its
header is never read (a truncated file would otherwise be padded with zeros by ITK).
"""

from __future__ import annotations

import gzip
import math
import struct
import uuid

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import ImageError
from workbench.imaging.io import read_image

PIXDIM_OFFSET = 80  # NIfTI-1: pixdim[1..3] as little-endian float32
DTYPES = (np.uint8, np.int16, np.float32, np.float64)
SPACINGS = (1.0, 0.7, 2.5, 0.0, -1.5, math.nan, math.inf)


def _nifti_bytes(data: np.ndarray, pixdim: tuple[float, float, float]) -> bytes:
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header["vox_offset"] = 352
    block = bytearray(header.binaryblock) + bytes(4)  # + empty extension flag
    struct.pack_into("<3f", block, PIXDIM_OFFSET, *pixdim)
    return bytes(block) + data.astype(data.dtype.newbyteorder("<")).tobytes(order="F")


@st.composite
def nifti_cases(draw):
    ndim = draw(st.sampled_from((2, 3, 3, 3, 4)))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(min(ndim, 3)))
    if ndim == 4:
        shape += (draw(st.integers(1, 2)),)
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    pixdim = tuple(draw(st.sampled_from(SPACINGS)) for _ in range(3))
    raw = _nifti_bytes((np.arange(math.prod(shape)) % 50 + 1).astype(dtype).reshape(
        shape, order="F"), pixdim)
    cut = draw(st.one_of(st.just(0), st.integers(1, len(raw))))
    gz = draw(st.booleans())
    cap = draw(st.one_of(st.none(), st.integers(1, 150)))
    return shape, dtype, pixdim, raw, cut, gz, cap


@pytest.mark.timeout(120)
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=nifti_cases())
def test_read_image_is_right_or_raises_image_error(tmp_path, case):
    shape, dtype, pixdim, raw, cut, gz, cap = case
    body = raw[: len(raw) - cut]
    folder = tmp_path / uuid.uuid4().hex  # one per example: no .nii next to a .nii.gz
    folder.mkdir()
    path = folder / ("case.nii.gz" if gz else "case.nii")
    path.write_bytes(gzip.compress(body) if gz else body)
    volume = shape[:3] if len(shape) == 3 or (len(shape) == 4 and shape[3] == 1) else None
    valid = (volume is not None and cut == 0
             and all(math.isfinite(s) and s > 0 for s in pixdim)
             and (cap is None or math.prod(shape) <= cap))
    try:
        image = read_image(path, patient="P", max_voxels=cap)
    except ImageError as exc:
        assert not valid, f"a valid file was refused: {exc}"
        return
    assert valid, f"read although invalid: shape {shape}, pixdim {pixdim}, cut {cut}, cap {cap}"
    assert image.GetSize() == volume
    assert np.allclose(image.GetSpacing(), pixdim, rtol=1e-6)
    expected = (np.arange(math.prod(shape)) % 50 + 1).astype(dtype).reshape(volume, order="F")
    assert np.array_equal(sitk.GetArrayViewFromImage(image), expected.T)
