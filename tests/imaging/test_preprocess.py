"""Preprocessing settings, and one patient end to end: geometry kept, errors named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk

from fixtures.phantom import (
    DIRECTION,
    ORIGIN,
    SIZE,
    arr,
    same_geometry,
    synthetic_patient,
    to_image,
)
from workbench.errors import ConfigError, ImageError, PreprocessError
from workbench.imaging.io import write_image
from workbench.imaging.preprocess import STUDY_SETTINGS, PreprocessSettings, preprocess_patient


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
