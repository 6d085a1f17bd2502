"""Image negative controls: what each destroys and keeps, geometry, seeds, the no-room error."""

from __future__ import annotations

import time

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from fixtures.phantom import arr, rotation, same_geometry
from workbench.errors import ConfigError
from workbench.imaging.controls import (
    CONTROL_KINDS,
    ControlError,
    derive_control,
    moved_roi,
    random_shape_roi,
)

SHAPE = (30, 40, 40)  # z, y, x
PHASES = {"pre": 0.0, "early": 2.0, "late": 1.2}  # tumour offset over tissue per phase


def image(values: np.ndarray, dtype=np.float32) -> sitk.Image:
    img = sitk.GetImageFromArray(values.astype(dtype))
    img.SetSpacing((1.0, 1.0, 1.0))
    img.SetOrigin((-12.5, 30.0, 4.25))
    img.SetDirection(rotation(12.0, 4.0))
    return img


def ellipsoid(centre, radii, shape=SHAPE) -> np.ndarray:
    grid = np.indices(shape)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) < 1


def ellipsoid_mask(centre, radii) -> sitk.Image:
    return image(ellipsoid(centre, radii), np.uint8)


def patient(tumour_centre=(15, 20, 14), tumour_radii=(3.5, 4.5, 4.0), body_radii=(13, 17, 17)):
    """z-scored-like phases: air -1.5, tissue 0, tumour enhancing; noise makes values unique."""
    rng = np.random.default_rng(3)
    body = ellipsoid((14.5, 19.5, 19.5), body_radii)
    tumour = ellipsoid(tumour_centre, tumour_radii) & body
    images = {}
    for name, lift in PHASES.items():
        values = np.where(body, 0.0, -1.5) + np.where(tumour, lift, 0.0)
        images[name] = image(values + rng.normal(0, 0.1, SHAPE))
    return images, image(tumour, np.uint8), image(body, np.uint8)


def curves(images, roi) -> set[tuple]:
    """The set of per-voxel (pre, early, late) curves inside ``roi``."""
    return {tuple(v) for v in np.stack([arr(images[p])[roi] for p in PHASES], 1)}


def flat(result) -> np.ndarray:
    """A control's mask and images as one array, to compare two results."""
    images, mask = result
    return np.concatenate([arr(mask).ravel()] + [arr(i).ravel() for i in images.values()])


@pytest.fixture(scope="module")
def case():
    return patient()


def run(kind, case, seed=0):
    images, mask, body = case
    fn = CONTROL_KINDS[kind]
    rng = np.random.default_rng(seed)
    if kind in ("moved", "random_shape"):
        return fn(images, mask, rng, body, patient="P1")
    return fn(images, mask, rng, patient="P1")


@pytest.mark.parametrize("kind", sorted(CONTROL_KINDS))
def test_geometry_kept_and_inputs_untouched(case, kind):
    images, mask, _ = case
    before = {name: arr(img).copy() for name, img in images.items()}
    mask_before = arr(mask).copy()
    out, out_mask = run(kind, case)
    assert list(out) == list(images)
    for name, img in out.items():
        same_geometry(img, images[name])
        assert img.GetPixelID() == sitk.sitkFloat32
        np.testing.assert_array_equal(arr(images[name]), before[name])
    same_geometry(out_mask, mask)
    assert out_mask.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(arr(mask), mask_before)
    assert arr(out_mask).sum() == mask_before.sum()


def test_shuffled_permutes_roi_curves_as_a_whole(case):
    images, mask, _ = case
    out, out_mask = run("shuffled", case)
    roi = arr(mask) == 1
    np.testing.assert_array_equal(arr(out_mask), arr(mask))
    for name in images:
        old, new = arr(images[name]), arr(out[name])
        np.testing.assert_array_equal(np.sort(new[roi]), np.sort(old[roi]))
        np.testing.assert_array_equal(new[~roi], old[~roi])
        assert (new[roi] != old[roi]).mean() > 0.9  # arrangement changed
    # one permutation for all phases: each (pre, early, late) curve survives intact
    assert curves(out, roi) == curves(images, roi)


def test_random_draws_from_each_phase_roi_values(case):
    images, mask, _ = case
    out, out_mask = run("random", case)
    roi = arr(mask) == 1
    np.testing.assert_array_equal(arr(out_mask), arr(mask))
    for name in images:
        old, new = arr(images[name]), arr(out[name])
        assert np.isin(new[roi], old[roi]).all()
        np.testing.assert_array_equal(new[~roi], old[~roi])
        assert len(np.unique(new[roi])) < roi.sum()  # with replacement: repeats
    # phases drawn independently: the per-voxel curves are not the original ones
    assert len(curves(out, roi) & curves(images, roi)) < 0.1 * roi.sum()


def test_moved_is_a_translation_onto_free_body(case):
    images, mask, body = case
    out, moved = run("moved", case)
    tumour, new = arr(mask) == 1, arr(moved) == 1
    old_pts, new_pts = np.argwhere(tumour), np.argwhere(new)
    shift = new_pts.min(0) - old_pts.min(0)
    assert shift.any()
    np.testing.assert_array_equal(new_pts, old_pts + shift)  # same shape up to translation
    assert (arr(body)[new] == 1).all()
    grown = ndimage.binary_dilation(tumour, iterations=2)
    assert not (new & grown).any()
    assert new_pts.min() >= 6 and (np.array(SHAPE) - 1 - new_pts.max(0) >= 6).all()
    for name in images:
        np.testing.assert_array_equal(arr(out[name]), arr(images[name]))


def test_moved_exhaustive_search_finds_a_fit(case):
    """With no random tries the FFT search over all translations still places the ROI."""
    images, mask, body = case
    _, moved = moved_roi(images, mask, np.random.default_rng(0), body, tries=0)
    new = arr(moved) == 1
    assert new.sum() == arr(mask).sum() and (arr(body)[new] == 1).all()
    assert not (new & ndimage.binary_dilation(arr(mask) == 1, iterations=2)).any()


def test_random_shape_is_one_connected_region_in_the_body(case):
    images, mask, body = case
    out, shaped = run("random_shape", case)
    new = arr(shaped) == 1
    assert new.sum() == arr(mask).sum()
    _, components = ndimage.label(new)  # default structure: 6-connectivity
    assert components == 1
    assert (arr(body)[new] == 1).all()
    assert (new & (arr(mask) == 1)).any()  # starts at the tumour centre
    assert not np.array_equal(new, arr(mask) == 1)
    for name in images:
        np.testing.assert_array_equal(arr(out[name]), arr(images[name]))


@pytest.mark.parametrize("kind", sorted(CONTROL_KINDS))
def test_derive_control_is_deterministic_per_seed(case, kind):
    images, mask, body = case
    a = derive_control(kind, images, mask, seed=7, patient="P1", body=body)
    b = derive_control(kind, images, mask, seed=7, patient="P1", body=body)
    c = derive_control(kind, images, mask, seed=8, patient="P1", body=body)
    np.testing.assert_array_equal(flat(a), flat(b))
    assert not np.array_equal(flat(a), flat(c))


def test_derive_control_computes_the_body_from_the_reference_phase(case):
    images, mask, body = case
    _, moved = derive_control("moved", images, mask, seed=1, patient="P1")
    new = arr(moved) == 1
    assert new.sum() == arr(mask).sum()
    assert (arr(body)[new] == 1).mean() > 0.99  # the Otsu body mask ~ the true body
    with pytest.raises(ControlError, match=r"reference phase 'dce1'.*\['early', 'late', 'pre'\]"):
        derive_control("moved", images, mask, seed=1, patient="P1", reference_phase="dce1")


def test_unknown_kind_lists_allowed_names(case):
    images, mask, _ = case
    with pytest.raises(ConfigError, match="random_shape"):
        derive_control("flipped", images, mask, seed=0)


def test_no_room_names_patient_and_kind():
    images, mask, body = patient(tumour_centre=(15, 20, 20), tumour_radii=(9, 12, 12),
                                 body_radii=(8, 11, 11))
    with pytest.raises(ControlError, match="larger than the free body tissue") as info:
        derive_control("moved", images, mask, seed=0, patient="P7", body=body)
    assert info.value.patient == "P7" and info.value.step == "control"
    assert "P7" in str(info.value) and "moved control" in str(info.value)
    with pytest.raises(ControlError, match=r"tumour box \[24, 32, 32\] \[z, y, x\]"):
        moved_roi(images, ellipsoid_mask((14.5, 19.5, 19.5), (12.5, 16.5, 16.5)),
                  np.random.default_rng(0), body, patient="P7")
    # a wide border leaves less free body than the tumour has voxels
    with pytest.raises(ControlError, match="only .* voxels") as info:
        random_shape_roi(images, mask, np.random.default_rng(0), body, border=10, patient="P7")
    assert "P7" in str(info.value)


def test_random_shape_is_fast_at_tumour_size():
    shape = (80, 150, 150)
    tumour = ellipsoid((40, 75, 75), (30, 40, 40), shape)
    assert tumour.sum() > 190_000
    mask = sitk.GetImageFromArray(tumour.astype(np.uint8))
    body = sitk.GetImageFromArray(np.ones(shape, np.uint8))
    images = {"pre": sitk.GetImageFromArray(np.zeros(shape, np.float32))}
    start = time.perf_counter()
    _, shaped = random_shape_roi(images, mask, np.random.default_rng(0), body)
    assert time.perf_counter() - start < 10.0  # measured ~0.3 s
    assert arr(shaped).sum() == tumour.sum()
