"""Z-score pooled over phases inside the body: enhancement kept, constant images refused."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.phantom import arr, same_geometry, synthetic_patient, to_image
from workbench.errors import PreprocessError
from workbench.imaging.body import body_mask
from workbench.imaging.zscore import pooled_stats, zscore_patient


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
