"""Pure preprocessing functions: geometry kept, bias removed, z-score pooled, errors named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk

from workbench.errors import ConfigError, GeometryError, ImageError, PreprocessError
from workbench.imaging.io import write_image
from workbench.imaging.preprocess import (
    STUDY_SETTINGS,
    PreprocessSettings,
    apply_log_bias,
    body_mask,
    estimate_shared_bias,
    n4_correct,
    pooled_stats,
    preprocess_patient,
    resample_isotropic,
    zscore_patient,
)

SIZE = (40, 40, 12)  # x, y, z
SPACING = (0.8, 0.8, 2.2)
ORIGIN = (-21.5, 13.25, -40.0)
# values pre / early / late: background tissue enhances a little, the tumour a lot
PHASE_VALUES = {"pre": (100.0, 110.0), "early": (110.0, 260.0), "late": (115.0, 200.0)}


def rotation(deg_z: float = 10.0, deg_x: float = 5.0) -> tuple[float, ...]:
    a, b = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return tuple((rz @ rx).ravel())


DIRECTION = rotation()


def to_image(arr: np.ndarray, dtype=np.float32) -> sitk.Image:
    """Array indexed [z, y, x] → image with the test geometry."""
    img = sitk.GetImageFromArray(arr.astype(dtype))
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(DIRECTION)
    return img


def grids(size=SIZE, spacing=SPACING):
    nx, ny, nz = size
    z, y, x = np.meshgrid(np.arange(nz) * spacing[2], np.arange(ny) * spacing[1],
                          np.arange(nx) * spacing[0], indexing="ij")
    return x, y, z


def synthetic_patient(seed: int = 0, size=SIZE, bias: bool = True):
    """Body ellipse with a spherical tumour in low-signal air; returns (phases, mask, body)."""
    rng = np.random.default_rng(seed)
    x, y, z = grids(size)
    cx, cy, cz = x.max() / 2, y.max() * 0.55, z.max() / 2
    body = ((x - cx) / (0.42 * x.max())) ** 2 + ((y - cy) / (0.45 * y.max())) ** 2 < 1
    tumour = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < 4.5**2
    field = 1 + 0.3 * np.sin(np.pi * x / x.max() - np.pi / 2) if bias else 1.0
    phases = {}
    for name, (tissue, lesion) in PHASE_VALUES.items():
        arr = np.where(body, tissue, 3.0) + np.where(tumour, lesion - tissue, 0.0)
        arr = np.abs(arr + rng.normal(0, 3.0, arr.shape)) * field
        phases[name] = to_image(arr)
    return phases, to_image(tumour, np.uint8), body


def same_geometry(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing())
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin())
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection())


def arr(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img)


# --------------------------------------------------------------------------- settings
def test_settings_key_is_stable_and_tracks_every_field():
    a, b = PreprocessSettings(), PreprocessSettings(n4_iterations=[50, 50, 30])
    assert a == b and a.key() == b.key() and len(a.key()) == 16
    keys = {a.key(), STUDY_SETTINGS.key(), PreprocessSettings(target_spacing=0.5).key(),
            PreprocessSettings(zscore_region="all").key(), PreprocessSettings(n4=False).key()}
    assert len(keys) == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n4 = False  # type: ignore[misc]


@pytest.mark.parametrize("field, value, needle", [
    ("n4_mode", "joint", "n4_mode must be one of ['shared', 'per_phase'], got 'joint'"),
    ("mask_interpolator", "linear", "mask_interpolator"),
    ("shrink_factor", 0, "shrink_factor"),
    ("target_spacing", -1.0, "target_spacing"),
])
def test_settings_reject_bad_values_naming_the_parameter(field, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        PreprocessSettings(**{field: value})


# --------------------------------------------------------------------------- body mask
def test_body_mask_covers_body_not_air():
    phases, _, truth = synthetic_patient(bias=False)
    found = arr(body_mask(phases["pre"])) > 0
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    assert dice > 0.93
    assert found.any(axis=(1, 2)).all()  # every slice has body
    assert not found[:, 0, 0].any()  # the corner is air


def test_body_mask_rejects_constant_image():
    with pytest.raises(PreprocessError, match="constant"):
        body_mask(to_image(np.ones((12, 40, 40))), patient="P9")


# --------------------------------------------------------------------------- N4
def uniform_block_with_bias(seed: int = 1):
    """A big block of constant tissue (+ mild noise) in air, times a smooth ±30 % field."""
    rng = np.random.default_rng(seed)
    x, y, z = grids()
    block = np.zeros((SIZE[2], SIZE[1], SIZE[0]), bool)
    block[1:-1, 4:-4, 4:-4] = True
    clean = np.abs(np.where(block, 100.0, 2.0) + rng.normal(0, 2.0, block.shape))
    u, v = x / x.max() * 2 - 1, y / y.max() * 2 - 1
    field = 1 + 0.3 * (0.7 * np.sin(np.pi / 2 * u) + 0.3 * v * v * np.sign(v))
    return to_image(clean * field), block, field


def cov(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def test_n4_removes_injected_bias_field(record_property):
    image, block, field = uniform_block_with_bias()
    assert 0.69 < field.min() and field.max() < 1.31
    body = to_image(block, np.uint8)
    corrected, log_field = n4_correct(image, body_mask=body)
    before, after = cov(arr(image)[block]), cov(arr(corrected)[block])
    print(f"N4 CoV inside uniform block: {before:.4f} -> {after:.4f} "
          f"({100 * (1 - after / before):.0f} % lower)")
    record_property("cov_before", before)
    record_property("cov_after", after)
    assert after <= 0.5 * before
    # the estimated field follows the injected one (up to N4's free scale factor)
    est = np.exp(arr(log_field))[block]
    assert np.corrcoef(est, field[block])[0, 1] > 0.95


def test_n4_keeps_geometry_and_returns_float32():
    phases, _, _ = synthetic_patient()
    image = sitk.Cast(phases["pre"], sitk.sitkInt16)
    corrected, log_field = n4_correct(image)  # body mask computed internally
    for out in (corrected, log_field):
        same_geometry(out, image)
        assert out.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(arr(corrected), arr(image) / np.exp(arr(log_field)), rtol=1e-5)


def test_n4_rejects_mask_on_another_grid():
    phases, mask, _ = synthetic_patient()
    other = sitk.Image(mask)
    other.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(GeometryError, match=r"\[patient P3\] step n4: body mask"):
        n4_correct(phases["pre"], body_mask=other, patient="P3")


def test_shared_field_keeps_enhancement_ratios_exactly():
    phases, mask, _ = synthetic_patient()
    body = body_mask(phases["pre"])
    log_field = estimate_shared_bias(phases, body)
    same_geometry(log_field, phases["pre"])
    shared = {n: apply_log_bias(im, log_field) for n, im in phases.items()}
    ratio_raw = arr(phases["early"]) / arr(phases["pre"])
    ratio_shared = arr(shared["early"]) / arr(shared["pre"])
    np.testing.assert_allclose(ratio_shared, ratio_raw, rtol=1e-5)
    mean_field = estimate_shared_bias(phases, body, reference="mean")
    same_geometry(mean_field, phases["pre"])


# --------------------------------------------------------------------------- resampling
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


# --------------------------------------------------------------------------- z-score
def test_zscore_pooled_over_phases_inside_body_keeps_enhancement():
    phases, mask, _ = synthetic_patient()
    body = body_mask(phases["pre"])
    z = zscore_patient(phases, body)
    inside = arr(body) > 0
    pooled = np.concatenate([arr(z[n])[inside] for n in phases])
    assert abs(pooled.mean()) < 1e-3 and abs(pooled.std() - 1) < 1e-3
    tumour = arr(mask) > 0
    assert arr(z["early"])[tumour].mean() > arr(z["pre"])[tumour].mean() + 1.0
    assert arr(z["early"])[tumour].mean() > arr(z["late"])[tumour].mean()
    for name in phases:
        same_geometry(z[name], phases[name])
    mean, std = pooled_stats(phases, body)
    expected = (arr(phases["late"]) - mean) / std
    np.testing.assert_allclose(arr(z["late"]), expected, atol=1e-4)


def test_zscore_rejects_constant_image():
    img = to_image(np.full((12, 40, 40), 7.0))
    with pytest.raises(PreprocessError, match="step zscore"):
        zscore_patient({"pre": img, "early": img}, None, patient="P2")


# --------------------------------------------------------------------------- one patient
def write_patient(folder, phases, mask) -> tuple[dict[str, str], str]:
    paths = {n: str(write_image(im, folder / f"{n}.nii.gz")) for n, im in phases.items()}
    return paths, str(write_image(mask, folder / "mask.nii.gz"))


def test_preprocess_patient_end_to_end(tmp_path):
    phases, mask, _ = synthetic_patient()
    paths, mask_path = write_patient(tmp_path, phases, mask)
    result = preprocess_patient(paths, mask_path, PreprocessSettings(), patient="P1")
    assert list(result.images) == ["pre", "early", "late"]
    ref = result.images["pre"]
    assert ref.GetSpacing() == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(ref.GetOrigin(), ORIGIN, atol=1e-4)
    np.testing.assert_allclose(ref.GetDirection(), DIRECTION, atol=1e-6)
    for image in list(result.images.values()) + [result.mask]:
        same_geometry(image, ref)
    assert result.mask.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(arr(result.mask))) == {0, 1}
    rec = result.record
    assert rec["orig_spacing"] == "0.8x0.8x2.2" and rec["orig_size"] == "40x40x12"
    assert rec["mask_voxels_orig"] == int(arr(mask).sum()) and rec["mask_voxels"] > 0
    assert rec["n4_mode"] == "shared" and rec["bias_min"] < 1 < rec["bias_max"]
    assert rec["zscore_std"] > 0
    tumour = arr(result.mask) > 0
    assert arr(result.images["early"])[tumour].mean() > arr(result.images["pre"])[tumour].mean()


def test_preprocess_patient_per_phase_and_no_n4(tmp_path):
    phases, mask, _ = synthetic_patient()
    paths, mask_path = write_patient(tmp_path, phases, mask)
    per_phase = preprocess_patient(paths, mask_path, STUDY_SETTINGS, patient="P1")
    assert per_phase.record["n4_mode"] == "per_phase"
    off = preprocess_patient(paths, mask_path, PreprocessSettings(n4=False, zscore_region="all"),
                             patient="P1")
    assert off.record["n4_mode"] == "off" and off.record["bias_max"] == 1.0
    allvox = np.concatenate([arr(im).ravel() for im in off.images.values()])
    assert abs(allvox.mean()) < 1e-3


def test_mask_vanishing_after_resampling_is_a_clear_error(tmp_path):
    phases, _, _ = synthetic_patient()
    tiny = np.zeros((SIZE[2], SIZE[1], SIZE[0]), np.uint8)
    tiny[5, 3, 3] = 1  # at 0.5 mm in-plane, nearest-neighbour at 1 mm samples even indices only
    mask = to_image(tiny, np.uint8)
    for image in list(phases.values()) + [mask]:
        image.SetSpacing((0.5, 0.5, 2.2))
    paths, mask_path = write_patient(tmp_path, phases, mask)
    with pytest.raises(PreprocessError, match=r"\[patient P4\] step resample: tumour mask is "
                                              r"empty after resampling") as info:
        preprocess_patient(paths, mask_path, PreprocessSettings(n4=False), patient="P4")
    assert info.value.path == mask_path


def test_nan_phase_is_reported_with_its_file(tmp_path):
    phases, mask, _ = synthetic_patient()
    bad = arr(phases["late"])
    bad[3, 10, 10] = np.nan
    phases["late"] = to_image(bad)
    paths, mask_path = write_patient(tmp_path, phases, mask)
    with pytest.raises(ImageError, match="NaN") as info:
        preprocess_patient(paths, mask_path, patient="P5")
    assert info.value.path == paths["late"] and info.value.patient == "P5"


def test_physical_space_mask_is_resampled_onto_the_image_grid():
    """I-SPY1 STV masks live on a 1 mm grid of the same scan: mask_space='physical'."""
    import SimpleITK as sitk

    from workbench.errors import GeometryError
    from workbench.imaging.geometry import align_mask

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
