"""read_image never silently returns a wrong image, allocates unbounded memory or hangs.

Every bad input gives an :class:`ImageError` naming the patient, the file and what is wrong;
the header is checked before a pixel is read (:mod:`workbench.imaging.header`).
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from workbench.errors import ImageError
from workbench.imaging.geometry import check_same_grid, geometry_mismatch
from workbench.imaging.header import DEFAULT_MAX_VOXELS, itk_error_detail
from workbench.imaging.io import read_image

SPACING = (0.5, 0.6, 2.0)
ORIGIN = (-3.0, 4.5, 10.0)
PIXDIM_OFFSET = 80  # NIfTI-1: pixdim[1..3], float32, after dim / intent / datatype fields


def _volume() -> np.ndarray:
    return (np.arange(4 * 8 * 8).reshape(4, 8, 8) % 97 + 1).astype(np.int16)  # z, y, x


def _image() -> sitk.Image:
    img = sitk.GetImageFromArray(_volume())
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    return img


def _write(tmp_path: Path, name: str, compress: bool = False) -> Path:
    path = tmp_path / name
    sitk.WriteImage(_image(), str(path), compress)
    return path


def _raises(spec, *fragments, **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        read_image(spec, patient="P9", what="phase 'pre'", **kwargs)
    text = str(info.value)
    assert text.startswith("[patient P9] step read:"), text
    for fragment in fragments:
        assert fragment in text, text
    assert "np.float64" not in text and "Traceback" not in text
    return text


# --------------------------------------------------------------------------- intact files
@pytest.mark.parametrize("name,compress", [
    ("a.nii", False), ("a.nii.gz", True), ("a.mha", False), ("a.mha", True), ("a.mhd", False),
    ("a.nrrd", False), ("a.nrrd", True), ("a.nhdr", False)])
def test_intact_files_read_back_with_their_geometry(tmp_path, name, compress):
    img = read_image(_write(tmp_path, name, compress))
    assert np.array_equal(sitk.GetArrayViewFromImage(img), _volume())
    assert np.allclose(img.GetSpacing(), SPACING) and np.allclose(img.GetOrigin(), ORIGIN)


def test_a_symlink_to_a_regular_file_is_fine(tmp_path):
    link = tmp_path / "link.nii.gz"
    link.symlink_to(_write(tmp_path, "a.nii.gz", True))
    assert read_image(link).GetSize() == (8, 8, 4)


# --------------------------------------------------------------------------- 1. truncation
def _cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("name,data_file,compress", [
    ("a.nii", "a.nii", False), ("a.mha", "a.mha", False), ("a.mhd", "a.raw", False),
    ("a.nrrd", "a.nrrd", False), ("a.nhdr", "a.raw", False), ("a.mha", "a.mha", True),
    ("a.mhd", "a.zraw", True)])
def test_truncated_files_are_refused_with_expected_and_actual_bytes(tmp_path, name, data_file,
                                                                    compress):
    _write(tmp_path, name, compress)
    data = tmp_path / data_file
    full = data.stat().st_size
    _cut(data, full - 50)
    text = _raises(tmp_path / name, "is truncated", f"only {full - 50:,}", str(data))
    assert f"implies {full:,} bytes" in text


def test_a_gzip_nifti_cut_short_or_holding_a_short_file_is_refused(tmp_path):
    plain = _write(tmp_path, "a.nii")
    full = plain.read_bytes()
    short = tmp_path / "short.nii.gz"  # a complete gzip stream of a truncated file
    short.write_bytes(gzip.compress(full[:-100]))
    _raises(short, "is truncated", f"implies {len(full):,} bytes",
            f"decompressed stream holds only {len(full) - 100:,}")
    noise = sitk.GetImageFromArray(np.random.default_rng(0).integers(
        -9999, 9999, (16, 16, 16)).astype(np.int16))  # incompressible: a cut lands in the data
    sitk.WriteImage(noise, str(tmp_path / "noise.nii.gz"))
    packed = (tmp_path / "noise.nii.gz").read_bytes()
    for keep in (len(packed) // 2, 40):  # inside the data, inside the header
        cut = tmp_path / f"cut{keep}.nii.gz"
        cut.write_bytes(packed[:keep])
        _raises(cut, "is truncated", "holds only")


def test_a_plain_nifti_named_nii_gz_is_refused_clearly(tmp_path):
    wrong = tmp_path / "wrong.nii.gz"
    wrong.write_bytes(_write(tmp_path, "a.nii").read_bytes())
    _raises(wrong, "not gzip-compressed; rename it .nii")


def test_a_nii_gz_with_an_uncompressed_twin_is_refused(tmp_path):
    """ITK would take the header from x.nii.gz and the pixels from x.nii."""
    packed = _write(tmp_path, "x.nii.gz", True)
    other = sitk.GetImageFromArray(np.zeros((4, 8, 8), np.float32))
    sitk.WriteImage(other, str(tmp_path / "x.nii"))
    _raises(packed, "uncompressed twin x.nii", "delete or move one")
    assert read_image(tmp_path / "x.nii").GetPixelID() == sitk.sitkFloat32  # the twin is fine


# --------------------------------------------------------------------------- 2. voxel cap
BOMB = b"NDims = 3\nDimSize = 3000 3000 300\nElementType = MET_USHORT\nElementDataFile = LOCAL\n"


def test_a_tiny_header_claiming_billions_of_voxels_is_refused_before_allocation(tmp_path):
    bomb = tmp_path / "bomb.mha"
    bomb.write_bytes(BOMB)
    _raises(bomb, "claims 2,700,000,000 voxels (3000×3000×300)",
            f"limit of {DEFAULT_MAX_VOXELS:,}", "limits.max_voxels")
    # above the cap the file is still too short: refused as truncated, nothing allocated
    _raises(bomb, "is truncated", max_voxels=10**10)


def test_the_bomb_needs_no_memory(tmp_path):
    """Under a 3 GiB address-space limit (ITK would need 5.4 GB) read_image still answers."""
    bomb = tmp_path / "bomb.mha"
    bomb.write_bytes(BOMB)
    code = ("import resource, sys\n"
            "from workbench.imaging.io import read_image\n"
            "from workbench.errors import ImageError\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "try:\n    read_image(sys.argv[1])\n"
            "except ImageError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "claims 2,700,000,000 voxels" in out.stdout


def test_max_voxels_is_a_keyword(tmp_path):
    path = _write(tmp_path, "a.nii.gz", True)
    _raises(path, "claims 256 voxels (8×8×4), more than the limit of 255", max_voxels=255)
    assert read_image(path, max_voxels=256).GetSize() == (8, 8, 4)


# --------------------------------------------------------------------------- 3. non-regular
@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pre.nii.gz"
    os.mkfifo(fifo)
    _raises(fifo, "is a FIFO (named pipe), not a regular file", str(fifo))


@pytest.mark.timeout(20)
def test_a_device_is_refused_without_reading_forever():
    _raises("/dev/zero", "is a character device, not a regular file", "/dev/zero")


@pytest.mark.timeout(20)
def test_a_detached_data_file_that_is_a_fifo_is_refused(tmp_path):
    _write(tmp_path, "a.mhd")
    (tmp_path / "a.raw").unlink()
    os.mkfifo(tmp_path / "a.raw")
    _raises(tmp_path / "a.mhd", "data file of phase 'pre' is a FIFO")


@pytest.mark.timeout(20)
def test_a_fifo_in_a_dicom_folder_is_skipped(dce):
    os.mkfifo(dce / "zz-pipe.dcm")
    assert read_image(f"{dce}#t=1").GetDimension() == 3


def test_a_dicom_series_above_the_cap_is_refused_before_decoding(dce):
    _raises(f"{dce}#t=2", "the DICOM series claims", "more than the limit of 10", max_voxels=10)


# --------------------------------------------------------------------------- 4. shape, spacing
def test_2d_4d_and_vector_images_are_refused(tmp_path):
    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(_image()[:, :, 1], str(flat))
    _raises(flat, "phase 'pre' is 2-D (8×8); expected a 3-D volume")
    series = tmp_path / "series.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([_image(), _image()]), str(series))
    _raises(series, "phase 'pre' is 4-D (8×8×4×2); expected a 3-D volume")
    vector = tmp_path / "vector.nii.gz"
    sitk.WriteImage(sitk.Compose(_image(), _image(), _image()), str(vector))
    _raises(vector, "has 3 components per voxel")


def test_a_4d_nifti_with_one_volume_is_a_3d_image(tmp_path):
    import nibabel as nib

    path = tmp_path / "one.nii"
    nib.save(nib.Nifti1Image(_volume().T[..., None], np.diag([*SPACING, 1.0])), path)
    assert read_image(path).GetSize() == (8, 8, 4)


def _nifti_with_pixdim(tmp_path: Path, value: float, gz: bool) -> Path:
    raw = bytearray(_write(tmp_path, "a.nii").read_bytes())
    struct.pack_into("<f", raw, PIXDIM_OFFSET + 8, value)
    path = tmp_path / ("bad.nii.gz" if gz else "bad.nii")
    path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    return path


@pytest.mark.parametrize("value", [0.0, -2.0, float("nan"), float("inf")])
def test_a_nifti_slice_spacing_itk_would_fix_is_refused(tmp_path, value):
    _raises(_nifti_with_pixdim(tmp_path, value, gz=value < 0), "is not usable",
            f"{round(value, 4)} is not a positive finite number of mm")


@pytest.mark.parametrize("value", ["0", "-2", "nan"])
def test_a_metaimage_spacing_that_is_not_positive_is_refused(tmp_path, value):
    path = _write(tmp_path, "a.mha")
    text = path.read_bytes().replace(b"ElementSpacing = 0.5 0.59999999999999998 2",
                                     f"ElementSpacing = 0.5 0.6 {value}".encode())
    path.write_bytes(text)
    _raises(path, "voxel spacing", "is not usable")


# --------------------------------------------------------------------------- 7. messages
def test_itk_errors_show_their_reason_not_the_source_location(tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image" * 10)
    text = _raises(junk, "Unable to determine ImageIO reader")
    assert "Exception thrown" not in text and ".cxx" not in text
    detail = itk_error_detail(RuntimeError(
        "Exception thrown in SimpleITK ImageFileReader_Execute: /x/itkMetaImageIO.cxx:490:\n"
        "ITK ERROR: MetaImageIO(0x5650dfefc440): File cannot be read: a.mha\nReason: gone"))
    assert detail == "File cannot be read: a.mha Reason: gone"


def test_grid_messages_print_plain_numbers_and_name_the_file():
    a, b = _image(), _image()
    b.SetSpacing((0.8, 0.8, 2.5))
    assert geometry_mismatch(a, b) == "spacing (0.8, 0.8, 2.5) != (0.5, 0.6, 2.0)"
    b = _image()
    b.SetOrigin((0.0, 0.0, 0.0))
    assert geometry_mismatch(a, b) == "origin (0.0, 0.0, 0.0) != (-3.0, 4.5, 10.0)"
    with pytest.raises(ImageError, match=r"phase 'late' does not match .*\(file late\.nii\)"):
        check_same_grid({"phase 'pre'": a, "phase 'late'": b},
                        paths={"phase 'pre'": "pre.nii", "phase 'late'": "late.nii"})
