"""Perturbations for feature robustness: geometry, mask operations, rigid moves, noise."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from workbench.errors import ConfigError, WorkbenchError
from workbench.imaging.perturb import (
    DEFAULT_PERTURBATIONS,
    Perturbation,
    PerturbationError,
    add_noise,
    apply_perturbation,
    dilate_mask,
    erode_mask,
    phase_rng,
    resegment,
    rigid,
)

SHAPE_ZYX = (36, 40, 44)
CENTRE_ZYX = (17, 21, 22)
RADIUS = 8.0
ORIGIN = (-20.0, 13.5, 40.0)
#: not the identity: the j axis points the other way (as after an LPS/RAS flip)
DIRECTION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def _on_grid(arr: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    img.SetOrigin(ORIGIN)
    img.SetDirection(DIRECTION)
    return img


def _sphere() -> np.ndarray:
    z, y, x = np.indices(SHAPE_ZYX)
    cz, cy, cx = CENTRE_ZYX
    return ((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= RADIUS ** 2).astype(np.uint8)


@pytest.fixture
def patient():
    """Two z-scored-like float32 phases (smooth gradient + texture) and a sphere mask."""
    rng = np.random.default_rng(1)
    sphere = _sphere()
    z, y, x = np.indices(SHAPE_ZYX).astype(np.float32)
    base = (x / 44 + y / 40 - z / 36).astype(np.float32)
    images = {
        "pre": _on_grid((base + 0.3 * rng.standard_normal(SHAPE_ZYX)).astype(np.float32)),
        "early": _on_grid((base + 1.5 * sphere
                           + 0.3 * rng.standard_normal(SHAPE_ZYX)).astype(np.float32)),
    }
    return images, _on_grid(sphere)


def _array(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img)


def _same_geometry(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    assert a.GetSpacing() == b.GetSpacing()
    assert a.GetOrigin() == b.GetOrigin()
    assert a.GetDirection() == b.GetDirection()


def _centroid_mm(mask: sitk.Image) -> np.ndarray:
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask, sitk.sitkUInt8))
    return np.asarray(stats.GetCentroid(1))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2 * (a & b).sum() / (a.sum() + b.sum())


# --------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("spec", DEFAULT_PERTURBATIONS, ids=lambda s: s.name)
def test_every_default_perturbation_keeps_the_geometry(patient, spec):
    images, mask = patient
    out, out_mask = apply_perturbation(images, mask, spec, seed=3, reference_phase="early",
                                       patient="P001")
    assert set(out) == set(images)
    for name, img in out.items():
        _same_geometry(img, images[name])
        assert img.GetPixelID() == sitk.sitkFloat32
    _same_geometry(out_mask, mask)
    assert out_mask.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(_array(out_mask))) <= {0, 1}
    # the inputs are untouched (pure functions)
    np.testing.assert_array_equal(_array(mask), _sphere())


def test_the_default_set_is_three_named_chains():
    assert [p.name for p in DEFAULT_PERTURBATIONS] == ["rot-4_erode", "rot+4_dilate",
                                                       "shift_reseg"]
    assert {p.mask for p in DEFAULT_PERTURBATIONS} == {"erode", "dilate", "resegment"}
    assert all(p.noise_sd == 0.05 for p in DEFAULT_PERTURBATIONS)


def test_zero_perturbation_returns_equal_arrays(patient):
    images, mask = patient
    out, out_mask = apply_perturbation(images, mask, Perturbation("none"), seed=0,
                                       reference_phase="pre")
    for name in images:
        np.testing.assert_array_equal(_array(out[name]), _array(images[name]))
    np.testing.assert_array_equal(_array(out_mask), _array(mask))


# --------------------------------------------------------------------------- mask operations
def test_erode_and_dilate_change_the_volume_by_about_one_surface_layer(patient):
    _, mask = patient
    volume = int(_array(mask).sum())
    z, y, x = np.indices(SHAPE_ZYX)
    r2 = sum((a - c) ** 2 for a, c in zip((z, y, x), CENTRE_ZYX, strict=True))
    # one Euclidean 1 mm layer: the digital spheres of radius r - 1 and r + 1
    inner, outer = int((r2 <= (RADIUS - 1) ** 2).sum()), int((r2 <= (RADIUS + 1) ** 2).sum())
    eroded, dilated = _array(erode_mask(mask)), _array(dilate_mask(mask))
    assert eroded.sum() < volume < dilated.sum()
    # the 18-neighbourhood ball takes ~1.25 Euclidean layers (diagonal steps are sqrt(2) mm)
    assert 0.8 < (volume - int(eroded.sum())) / (volume - inner) < 1.4
    assert 0.8 < (int(dilated.sum()) - volume) / (outer - volume) < 1.4
    # nested: erosion inside the mask, the mask inside the dilation
    assert not (eroded & ~_array(mask).astype(bool)).any()
    assert not (_array(mask) & ~dilated.astype(bool)).any()
    _same_geometry(erode_mask(mask), mask)
    _same_geometry(dilate_mask(mask, radius=2), mask)
    assert dilate_mask(mask, radius=2).GetPixelID() == sitk.sitkUInt8


def test_radius_must_be_a_positive_integer(patient):
    _, mask = patient
    with pytest.raises(ConfigError, match="radius must be an integer >= 1.*got 0"):
        erode_mask(mask, radius=0)


def test_resegment_drops_an_injected_outlier_voxel(patient):
    images, mask = patient
    arr = _array(images["early"])
    arr[CENTRE_ZYX] = 100.0
    spiked = _on_grid(arr)
    kept = _array(resegment(spiked, mask))
    assert kept[CENTRE_ZYX] == 0
    # only the outlier (and at most a handful of tail voxels) go; nothing outside is added
    assert _array(mask).sum() - 10 < kept.sum() < _array(mask).sum()
    assert not (kept & ~_array(mask).astype(bool)).any()
    _same_geometry(resegment(spiked, mask), mask)


# --------------------------------------------------------------------------- rigid
def test_rotating_a_sphere_about_its_centroid_keeps_the_mask(patient):
    images, mask = patient
    out, out_mask = rigid(images, mask, rotate_deg=15.0, translate_mm=(0, 0, 0))
    assert _dice(_array(out_mask), _array(mask)) > 0.95
    np.testing.assert_allclose(_centroid_mm(out_mask), _centroid_mm(mask), atol=0.2)
    _same_geometry(out_mask, mask)
    for name in images:
        _same_geometry(out[name], images[name])


def test_a_10_mm_translation_moves_the_centroid_by_10_mm(patient):
    images, mask = patient
    out, out_mask = rigid(images, mask, rotate_deg=0.0, translate_mm=(10.0, 0.0, 0.0))
    moved = _centroid_mm(out_mask) - _centroid_mm(mask)
    # along the image's first axis, in physical space
    expected = np.asarray(DIRECTION).reshape(3, 3) @ np.array([10.0, 0.0, 0.0])
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    assert _array(out_mask).sum() == _array(mask).sum()  # whole-voxel shift: nothing lost
    # the image content moves with it (interior voxel 10 voxels further along i)
    z, y, x = CENTRE_ZYX
    assert _array(out["early"])[z, y, x + 10] == pytest.approx(_array(images["early"])[z, y, x])
    # a translation along j follows the (flipped) j axis
    _, along_j = rigid(images, mask, rotate_deg=0.0, translate_mm=(0.0, 4.0, 0.0))
    np.testing.assert_allclose(_centroid_mm(along_j) - _centroid_mm(mask), [0, -4, 0],
                               atol=1e-6)


def test_rotation_fills_the_corners_with_the_image_minimum(patient):
    images, mask = patient
    out, _ = rigid(images, mask, rotate_deg=30.0, translate_mm=(0, 0, 0))
    low = _array(images["pre"]).min()
    assert _array(out["pre"])[0, 0, 0] == pytest.approx(low)


def test_rigid_refuses_a_phase_on_another_grid(patient):
    images, mask = patient
    other = sitk.Image(images["pre"])
    other.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(WorkbenchError, match=r"\[patient P9\].*phase 'late'"):
        rigid({**images, "late": other}, mask, rotate_deg=1, translate_mm=(0, 0, 0),
              patient="P9")


# --------------------------------------------------------------------------- noise
def test_noise_sd_is_the_requested_sd(patient):
    images, _ = patient
    noisy = add_noise(images["pre"], 0.05, np.random.default_rng(0))
    diff = _array(noisy).astype(np.float64) - _array(images["pre"])
    assert diff.std() == pytest.approx(0.05, rel=0.02)
    assert abs(diff.mean()) < 0.002
    _same_geometry(noisy, images["pre"])
    with pytest.raises(ConfigError, match="noise sd must be a finite number >= 0, got -1"):
        add_noise(images["pre"], -1, np.random.default_rng(0))


def test_noise_is_deterministic_with_the_seed_and_independent_per_phase(patient):
    images, mask = patient
    spec = DEFAULT_PERTURBATIONS[0]
    a, ma = apply_perturbation(images, mask, spec, seed=7, reference_phase="early")
    b, mb = apply_perturbation(images, mask, spec, seed=7, reference_phase="early")
    c, _ = apply_perturbation(images, mask, spec, seed=8, reference_phase="early")
    for name in images:
        np.testing.assert_array_equal(_array(a[name]), _array(b[name]))
        assert not np.array_equal(_array(a[name]), _array(c[name]))
    np.testing.assert_array_equal(_array(ma), _array(mb))
    noise_pre = phase_rng(7, "pre").normal(size=100)
    noise_early = phase_rng(7, "early").normal(size=100)
    assert abs(np.corrcoef(noise_pre, noise_early)[0, 1]) < 0.3


# --------------------------------------------------------------------------- errors
def test_an_emptied_mask_names_the_patient_and_the_perturbation(patient):
    images, _ = patient
    tiny = np.zeros(SHAPE_ZYX, np.uint8)
    tiny[10, 10, 10:13] = 1  # a 3-voxel line: erosion removes it
    spec = Perturbation("tight", mask="erode")
    with pytest.raises(PerturbationError) as info:
        apply_perturbation(images, _on_grid(tiny), spec, seed=0, reference_phase="pre",
                           patient="P007")
    err = info.value
    assert err.patient == "P007" and err.step == "perturbation"
    assert "'tight'" in str(err) and "[patient P007]" in str(err)
    assert "0 mask voxel(s)" in str(err)


def test_a_mask_moved_out_of_view_is_an_error(patient):
    images, mask = patient
    spec = Perturbation("far", translate_mm=(100.0, 0.0, 0.0))
    with pytest.raises(PerturbationError, match="'far' left 0 mask voxel"):
        apply_perturbation(images, mask, spec, seed=0, reference_phase="pre", patient="P1")


def test_bad_specifications_are_refused(patient):
    images, mask = patient
    with pytest.raises(ConfigError, match="mask must be one of"):
        Perturbation("x", mask="shrink")
    with pytest.raises(ConfigError, match="translate_mm needs 3 values"):
        Perturbation("x", translate_mm=(1.0, 2.0))
    with pytest.raises(ConfigError, match="reference_phase 'late' is not one of"):
        apply_perturbation(images, mask, Perturbation("x"), seed=0, reference_phase="late")
