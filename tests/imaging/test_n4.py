"""N4: the injected bias field is removed, geometry kept; a shared field keeps enhancement."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.phantom import SIZE, arr, grids, same_geometry, synthetic_patient, to_image
from workbench.errors import GeometryError
from workbench.imaging.body import body_mask
from workbench.imaging.n4 import apply_log_bias, estimate_shared_bias, n4_correct


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
