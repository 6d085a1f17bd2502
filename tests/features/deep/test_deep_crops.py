"""CNN input images: slice choice, square crop with margin, padding, components, channels, PNG."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import ConfigError, WorkbenchError
from workbench.features.deep.crops import (
    CropSettings,
    load_patient_crop,
    patient_crop,
    save_crop_png,
    square_box,
)
from workbench.imaging.slices import axial_axis, select_slice

PHASES = ("pre", "early", "late")


def _volume(shape=(10, 40, 50), seed=0):
    rng = np.random.default_rng(seed)
    return {p: (rng.standard_normal(shape) + i).astype(np.float32) for i, p in enumerate(PHASES)}


def write_patient(root, pid, images, mask, spacing=(1.0, 1.0, 1.0), direction=None):
    """NIfTI phases + mask from z, y, x arrays; returns (paths by phase, mask path)."""
    import SimpleITK as sitk

    folder = root / pid
    folder.mkdir(parents=True, exist_ok=True)

    def write(arr, name):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(spacing)
        if direction is not None:
            img.SetDirection(direction)
        sitk.WriteImage(img, str(folder / name))
        return str(folder / name)

    paths = {p: write(a, f"{p}.nii.gz") for p, a in images.items()}
    return paths, write(mask.astype(np.uint8), "mask.nii.gz")


def test_largest_slice_and_central_tie():
    mask = np.zeros((9, 20, 20), bool)
    mask[2, 5:10, 5:10] = True  # 25
    mask[3:7, 4:12, 4:12] = True  # 64 on four slices: tie, the tumour spans 2..6, centre 4
    choice = select_slice(mask)
    assert choice.area == 64 and choice.index == 4 and choice.warning is None
    mask[7, 0:10, 0:10] = True  # now 100 on slice 7 wins outright
    assert select_slice(mask).index == 7


def test_single_slice_tumour_and_empty_mask():
    mask = np.zeros((5, 30, 30), np.uint8)
    mask[2, 10:14, 12:20] = 1
    crop = patient_crop(_volume((5, 30, 30)), mask, (3.0, 1.0, 1.0),
                        CropSettings(image_size=32))
    assert crop.images.shape == (1, 32, 32, 3) and crop.info["slice_index"] == 2
    with pytest.raises(WorkbenchError, match="empty"):
        patient_crop(_volume((5, 30, 30)), np.zeros((5, 30, 30)), (1, 1, 1))


def test_square_box_keeps_aspect_and_margin():
    roi = np.zeros((40, 40), bool)
    roi[10:14, 5:25] = True  # 4 x 20 pixels of 0.5 x 1.0 mm: 2 mm x 20 mm
    centre, side = square_box(roi, (0.5, 1.0), margin=0.2)
    np.testing.assert_allclose(centre, [11.5, 14.5])
    assert side == pytest.approx(20 * 1.4)
    mask = np.zeros((3, 40, 40), bool)
    mask[1] = roi
    crop = patient_crop(_volume((3, 40, 40)), mask, (1.0, 0.5, 1.0),
                        CropSettings(image_size=70))
    cols = np.flatnonzero(crop.mask_crop.any(axis=0))
    rows = np.flatnonzero(crop.mask_crop.any(axis=1))
    assert len(cols) == pytest.approx(50, abs=1)  # 20 mm of a 28 mm square on 70 pixels
    assert len(rows) == pytest.approx(5, abs=1)  # 2 mm: the aspect ratio is kept
    assert abs(cols.mean() - 34.5) < 1 and abs(rows.mean() - 34.5) < 1  # centred


def test_scaling_and_channel_modes():
    mask = np.zeros((4, 30, 30), bool)
    mask[1:3, 10:20, 10:20] = True
    images = _volume((4, 30, 30))
    crop = patient_crop(images, mask, (1, 1, 1), CropSettings(image_size=32))
    assert crop.images.dtype == np.float32
    for c in range(3):  # min-max per channel over the crop
        assert crop.images[0, ..., c].min() == 0.0 and crop.images[0, ..., c].max() == 1.0
    np.testing.assert_array_equal(crop.images[0, ..., 1], crop.phase_crops[1])
    grey = patient_crop(images, mask, (1, 1, 1), CropSettings(image_size=32, channels="grey"))
    assert grey.images.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(grey.images[2, ..., 0], grey.images[2, ..., 2])
    np.testing.assert_array_equal(grey.images[2, ..., 0], crop.images[0, ..., 2])
    flat = {p: np.ones((4, 30, 30), np.float32) for p in PHASES}
    assert patient_crop(flat, mask, (1, 1, 1), CropSettings(image_size=16)).images.max() == 0


def test_tumour_touching_the_edge_is_padded():
    mask = np.zeros((3, 30, 30), bool)
    mask[1, 0:6, 24:30] = True  # top-right corner
    ramp = np.tile(np.arange(30, dtype=np.float32), (3, 30, 1)) + 5.0
    images = {p: ramp for p in PHASES}
    edge = patient_crop(images, mask, (1, 1, 1), CropSettings(image_size=40, pad="edge"))
    zero = patient_crop(images, mask, (1, 1, 1), CropSettings(image_size=40, pad="zero"))
    assert edge.images.shape == zero.images.shape == (1, 40, 40, 3)
    assert np.isfinite(edge.images).all()
    # past the right edge: replicated last column (max -> 1) vs zeros (min -> 0)
    assert edge.images[0, 20, -1, 0] == pytest.approx(1.0)
    assert zero.images[0, 20, -1, 0] == pytest.approx(0.0)


def test_two_components_use_the_largest_with_a_warning():
    mask = np.zeros((10, 40, 40), bool)
    mask[1:8, 5:15, 5:15] = True  # 700 voxels, 100 per slice
    mask[8, 25:39, 25:39] = True  # 196 voxels on one slice: larger section, smaller lesion
    crop = patient_crop(_volume((10, 40, 40)), mask, (1, 1, 1), CropSettings(image_size=32))
    assert crop.warnings == ["2 components, used the largest (700 voxels); 196 voxels in the "
                             "others ignored"]
    assert crop.info["slice_index"] == 4 and crop.info["n_components"] == 2
    every = patient_crop(_volume((10, 40, 40)), mask, (1, 1, 1),
                         CropSettings(image_size=32, components="all"))
    assert every.info["slice_index"] == 8 and "2 components" in every.warnings[0]


def test_missing_phase_is_a_clear_error(tmp_path):
    mask = np.zeros((3, 20, 20), bool)
    mask[1, 5:10, 5:10] = True
    images = _volume((3, 20, 20))
    del images["early"]
    with pytest.raises(WorkbenchError, match=r"patient P7.*'early'.*missing"):
        patient_crop(images, mask, (1, 1, 1), patient="P7")
    paths, mask_path = write_patient(tmp_path, "P7", _volume((3, 20, 20)), mask)
    paths.pop("late")
    with pytest.raises(WorkbenchError, match="'late'"):
        load_patient_crop(paths, mask_path, CropSettings(image_size=16), patient="P7")


def test_axial_axis_from_direction():
    assert axial_axis((1, 0, 0, 0, 1, 0, 0, 0, 1)) == 0
    # sagittal: index x runs A-P, y runs S-I, z runs L-R -> S-I is index axis 1 = numpy axis 1
    assert axial_axis((0, 0, 1, 1, 0, 0, 0, -1, 0)) == 1


def test_load_from_files_and_png(tmp_path):
    from PIL import Image

    mask = np.zeros((6, 24, 30), np.uint8)
    mask[2:4, 8:16, 10:20] = 1
    paths, mask_path = write_patient(tmp_path, "P1", _volume((6, 24, 30)), mask,
                                     spacing=(1.0, 1.0, 1.0))
    crop = load_patient_crop(paths, mask_path, CropSettings(image_size=32), patient="P1")
    assert crop.images.shape == (1, 32, 32, 3) and crop.info["slice_axis"] == 0
    png = save_crop_png(crop, tmp_path / "crops" / "P1.png")
    with Image.open(png) as im:  # composite + three phases, 2-pixel separators
        assert im.size == (4 * 32 + 3 * 2, 32) and im.mode == "RGB"
    assert not list((tmp_path / "crops").glob(".*tmp"))


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="channels"):
        CropSettings(channels="rgb")
    with pytest.raises(ConfigError, match="margin"):
        CropSettings(margin=-1)
    with pytest.raises(ConfigError, match="3 phases"):
        CropSettings(phases=("pre", "early"))
    assert CropSettings(phases=("pre",), channels="grey").key()["phases"] == ("pre",)
