"""Body mask: covers the body, not the air; a constant image is refused."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.phantom import arr, synthetic_patient, to_image
from workbench.errors import PreprocessError
from workbench.imaging.body import body_mask


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
