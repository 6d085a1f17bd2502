"""Preprocessing + radiomics + kinetics give bit-identical tables whatever the worker count.

N4's B-spline fit depends in its last bits on SimpleITK's thread count; before the count was
pinned (``itk_threads``), ``--jobs 1`` ran with every CPU's threads and ``--jobs 2`` with half,
and 10 synthetic patients differed in 3,505 of 17,020 radiomics values. The sequential run
below starts from a process whose SimpleITK default is 4 threads, as on a 4-core machine, so
the comparison fails without the pinning on any machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from workbench.batch import pinned_itk_threads
from workbench.cohort.table import validate_cohort
from workbench.features.kinetic import extract_kinetic
from workbench.features.radiomics import extract_radiomics
from workbench.imaging.io import write_image
from workbench.imaging.preprocess import PreprocessSettings
from workbench.pipeline.preprocess import cache_key, preprocess_cohort

SIZE = (48, 44, 16)  # x, y, z
SPACING = (0.8, 0.8, 2.0)
PHASES = {"pre": (100.0, 110.0), "early": (110.0, 260.0), "late": (115.0, 200.0)}
PARAMS = """\
version: 1
setting: {binWidth: 0.1, label: 1, normalize: false, preCrop: true, padDistance: 2,
          correctMask: false, voxelArrayShift: 0}
imageType: {Original: {}}
featureClass: {shape: [VoxelVolume], firstorder: [Mean, Entropy, Uniformity],
               glcm: [Contrast, JointEntropy]}
"""


def raw_patient(root: Path, pid: str, seed: int) -> dict:
    """A small DCE patient with a smooth multiplicative bias field, so N4 has work to do."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip(SIZE[::-1], SPACING[::-1],
                                                               strict=True)), indexing="ij")
    cx, cy, cz = x.max() / 2, y.max() / 2, z.max() / 2
    body = ((x - cx) / 17.0) ** 2 + ((y - cy) / 15.0) ** 2 < 1
    tumour = (x - cx - 2) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < (5.0 + seed) ** 2
    texture = 20.0 * np.sin(x / 3.0 + seed) * np.cos(y / 4.0)
    bias = 1.0 + 0.3 * (x / x.max()) + 0.1 * np.sin(y / 15.0)
    row: dict = {"patient_id": pid, "pcr": seed % 2}
    folder = root / pid
    folder.mkdir(parents=True)
    for phase, (tissue, lesion) in PHASES.items():
        arr = np.where(body, tissue + texture, 3.0) + np.where(tumour, lesion - tissue, 0.0)
        arr = np.abs(arr + rng.normal(0, 3.0, arr.shape)) * bias
        row[f"image_{phase}"] = str(write_image(_image(arr.astype(np.float32)),
                                                folder / f"{phase}.nii.gz"))
    row["mask"] = str(write_image(_image(tumour.astype(np.uint8)), folder / "mask.nii.gz"))
    return row


def _image(arr: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    return img


@pytest.fixture
def many_itk_threads():
    """SimpleITK's process default as on a 4-core machine; restored afterwards."""
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(4)
    yield 4
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _run(cohort, params: Path, out: Path, jobs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    settings = PreprocessSettings(shrink_factor=2)
    pre = preprocess_cohort(cohort, out / "pre", settings=settings, jobs=jobs, progress=False)
    assert not pre.problems and pre.n_computed == len(cohort.df)
    rad = extract_radiomics(pre.table, out / "features", params_path=params,
                            phases=("pre", "early"), jobs=jobs, progress=False)
    kin = extract_kinetic(pre.table, out / "features", jobs=jobs, progress=False)
    assert rad.errors.empty and kin.errors.empty
    return rad.features, kin.features


def test_one_and_two_jobs_give_identical_feature_tables(tmp_path, many_itk_threads):
    rows = [raw_patient(tmp_path / "raw", f"P{i}", seed=i) for i in range(2)]
    cohort = validate_cohort(pd.DataFrame(rows), name="t", source=str(tmp_path / "c.csv"))
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    rad1, kin1 = _run(cohort, params, tmp_path / "jobs1", jobs=1)
    # the sequential run pinned SimpleITK's threads and gave the process default back
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == many_itk_threads
    rad2, kin2 = _run(cohort, params, tmp_path / "jobs2", jobs=2)
    assert rad1.shape == (2, 2 * 6)
    pd.testing.assert_frame_equal(rad1, rad2, check_exact=True)
    pd.testing.assert_frame_equal(kin1, kin2, check_exact=True)


def test_itk_threads_is_part_of_the_preprocessing_key(tmp_path):
    row = raw_patient(tmp_path, "P0", seed=0)
    paths = {p: row[f"image_{p}"] for p in PHASES}
    one = cache_key(paths, row["mask"], PreprocessSettings())
    assert PreprocessSettings().itk_threads == 1
    assert cache_key(paths, row["mask"], PreprocessSettings(itk_threads=2)) != one


def test_pinned_threads_nest_restore_and_refuse_a_conflicting_count():
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    with pinned_itk_threads(3):
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 3
        with pinned_itk_threads(3):
            pass
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == 3
        with pytest.raises(RuntimeError, match="pinned to 3"), pinned_itk_threads(2):
            pass
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before
    with pinned_itk_threads(None):
        assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before
