"""PyRadiomics features of the preprocessed phases: ``rad__<phase>__<imagetype>_<class>_<name>``.

The study's configuration (``configs/radiomics/paper.yaml``) gives **1,702 features** per
patient: 2 phases (pre-contrast and early post-contrast; ``phases=``) x 851, where 851 =
14 shape + 9 image types (Original + the 8 first-level wavelet decompositions LLL ... HHH)
x 93 (first order 18, GLCM 24, GLRLM 16, GLSZM 16, GLDM 14, NGTDM 5). Examples:
``rad__pre__original_firstorder_Mean``, ``rad__early__wavelet-LLH_glcm_Correlation``.

Shape features depend on the mask only, so they are computed once per patient and repeated
under each phase (``rad__pre__original_shape_X == rad__early__original_shape_X``): the copies
are exact duplicates, kept so the count is 2 x 851 as the study states (a variance or
correlation filter removes them downstream).

Extraction runs on the preprocessed images (1 mm isotropic, per-patient z-scored, see
:mod:`workbench.pipeline.preprocess`). No resampling or normalisation is done again here.

Bin width on z-scored images
----------------------------
PyRadiomics' default ``binWidth: 25`` is meant for CT Hounsfield units; on z-scored MRI,
whose tumour intensities span a few units (about -1.5..+0.5 before contrast and -1.5..+10
after), it puts the whole tumour into **one bin** and every texture feature degenerates.
We use a fixed ``binWidth: 0.1`` (a tenth of the patient's body standard deviation). Measured
on six synthetic I-SPY1-like tumours (1.8-57 k voxels, ``workbench synth``), bins inside the
tumour (min / median / max):

=============  ================  ================
image           pre-contrast      early post
=============  ================  ================
original        15 / 20 / 30      59 / 80 / 116
wavelet-LLL     32 / 41 / 67      159 / 201 / 270
wavelet-HHH     5 / 6 / 8         11 / 20 / 31
=============  ================  ================

Binning applies to each wavelet image with the same width, on that image's own range, as
PyRadiomics does (bins start at a multiple of the width at or below the ROI minimum). The
low-pass LLL band keeps the tumour's contrast amplified by about 2^(3/2) (unnormalised coif1
filters), so it gets ~2.5x the bins of the original; the high-pass bands hold only local
differences and get fewer. A fixed width keeps a bin's meaning (0.1 SD) identical across
patients, which is what makes texture features comparable; the pre-contrast HHH band is
coarse (5-8 bins) and is expected to be filtered out as near-constant by feature selection.

Checks before PyRadiomics runs (each failure is an errors-table row naming patient, step and
file): empty mask, single-voxel mask, mask touching the image border (``checks.mask_on_border``:
the tumour may be cut by the field of view and the wavelet's periodic extension wraps the
opposite edge in), and a wavelet support larger than the analysed box. PyRadiomics itself
never refuses a wavelet on a tiny ROI: it pads odd axes by one voxel and repeats a level-1
stationary transform (``start_level`` 0) for every level, so any level "works" — on a box
shorter than the filter support it silently returns features of wrapped-around voxels.

Reproducibility: PyRadiomics' GLCM ``MCC`` takes LAPACK eigenvalues, whose last bits depend
on the number of BLAS threads. Every unit runs with one BLAS thread and ``itk_threads``
SimpleITK threads (see :mod:`workbench.batch`), so values are bit-identical whether the work
runs sequentially, with joblib or on any Dask layout (and single-threaded eigenvalues of these
small matrices are faster anyway). Every key holds the parameters, the thread count, the
library versions and a digest of the source that computes the values (:data:`RADIOMICS_CODE`),
so editing that code recomputes the features without anyone bumping a version by hand.

Scaling out (joblib, Dask, SLURM): see :mod:`workbench.features.extract`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from threadpoolctl import threadpool_limits

from workbench.batch import DEFAULT_ITK_THREADS
from workbench.cohort.table import MASK_COLUMN, image_column
from workbench.features.extract import (
    FeatureError,
    FeatureResult,
    Task,
    finish,
    patients_with_inputs,
    prepare_table,
    run_tasks,
)
from workbench.features.radiomics_params import RadiomicsParams, load_params
from workbench.features.store import library_versions, make_key
from workbench.hashing import code_digest, sha256_file
from workbench.imaging.io import read_image

log = logging.getLogger(__name__)

#: Source that computes the values (this module, the parameter schema, the image reader);
#: its :func:`~workbench.hashing.code_digest` is part of every key.
RADIOMICS_CODE = ("features/radiomics", "features/radiomics_params", "imaging/io")
PREFIX = "rad"
NS_SHAPE, NS_PHASE = "radiomics-shape", "radiomics-phase"
RADIOMICS_PACKAGES = ("pyradiomics-bhklab", "pyradiomics", "PyWavelets", "numpy", "SimpleITK")

# --------------------------------------------------------------------------- one unit
@functools.lru_cache(maxsize=8)
def _extractor(params_json: str) -> Any:
    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    radiomics.setVerbosity(logging.ERROR)  # its own stderr handler
    logging.getLogger("radiomics").setLevel(logging.WARNING)  # do not flood our logs at INFO
    logging.getLogger("pykwalify").setLevel(logging.WARNING)
    glcm = logging.getLogger("radiomics.glcm")
    if not any(isinstance(f, _SumAverageNote) for f in glcm.filters):
        glcm.addFilter(_SumAverageNote())
    with warnings.catch_warnings():  # pykwalify loads PyRadiomics' schema hooks with load_module
        warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
        return RadiomicsFeatureExtractor(json.loads(params_json))


class _SumAverageNote(logging.Filter):
    """Drop PyRadiomics' per-image note that a symmetrical GLCM's SumAverage = 2 x JointAverage
    (it is expected: both are among the study's 24 GLCM features)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Sum Average = 2 * Joint Average" not in record.getMessage()


def _read_mask(mask_path: str, params: dict, patient: str | None) -> tuple[Any, np.ndarray]:
    """Read the mask and run the checks of the module docstring; return (image, bool array)."""
    mask = read_image(mask_path, patient=patient, what="tumour mask")
    label = params["setting"].get("label", 1)
    roi = sitk.GetArrayViewFromImage(mask) == label
    n = int(roi.sum())
    if n == 0:
        raise FeatureError(f"tumour mask is empty (no voxel labelled {label}); nothing to "
                           "extract: check the segmentation", patient=patient, step="mask",
                           path=mask_path)
    if n == 1:
        raise FeatureError("tumour mask has a single voxel: shape and texture are undefined "
                           "(PyRadiomics refuses single-voxel ROIs); check the segmentation",
                           patient=patient, step="mask", path=mask_path)
    idx = np.nonzero(roi)
    lo = np.array([int(i.min()) for i in idx])[::-1]  # x, y, z
    hi = np.array([int(i.max()) for i in idx])[::-1]
    size = np.array(mask.GetSize())
    faces = [f"{'xyz'[a]} {'min' if lo[a] == 0 else 'max'}" for a in range(3)
             if lo[a] == 0 or hi[a] == size[a] - 1]
    checks = params.get("checks", {})
    if faces and checks.get("mask_on_border", "error") == "error":
        raise FeatureError(f"tumour mask touches the image border ({', '.join(faces)} face): the "
                           "lesion may be cut off by the field of view and filters wrap the "
                           "opposite edge into it; set checks.mask_on_border: warn to accept",
                           patient=patient, step="mask", path=mask_path)
    if faces:
        log.warning("[patient %s] tumour mask touches the image border (%s)", patient,
                    ", ".join(faces))
    _check_wavelet_support(params, lo, hi, size, patient, mask_path)
    return mask, roi


def _check_wavelet_support(params: dict, lo: np.ndarray, hi: np.ndarray, size: np.ndarray,
                           patient: str | None, mask_path: str) -> None:
    if "Wavelet" not in params["imageType"]:
        return
    import pywt

    s = {**params["setting"], **params["imageType"]["Wavelet"]}
    name, levels = s.get("wavelet", "coif1"), s.get("start_level", 0) + s.get("level", 1)
    support = levels * (pywt.Wavelet(name).dec_len - 1) + 1
    if s.get("preCrop", False):
        pad = s.get("padDistance", 5)
        box = np.minimum(hi + pad, size - 1) - np.maximum(lo - pad, 0) + 1
    else:
        box = size
    axes = [a for a in range(3) if not (s.get("force2D") and a == s.get("force2Ddimension", 0))]
    short = [f"{box[a]} voxels along {'xyz'[a]}" for a in axes if box[a] < support]
    if short:
        raise FeatureError(
            f"wavelet {name} at level {levels} spans {support} voxels, but the region it is "
            f"computed on (tumour box + padDistance, within the image) is only "
            f"{', '.join(short)}: PyRadiomics would not fail, it would wrap voxels from the "
            "opposite edge into the tumour; use a lower level, a larger image or drop Wavelet",
            patient=patient, step="wavelet", path=mask_path)


def _execute(params_json: str, image: Any, mask: Any, patient: str | None,
             path: str) -> dict[str, float]:
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # see "Reproducibility" above
            result = _extractor(params_json).execute(image, mask)
    except ValueError as exc:  # PyRadiomics' own checks (checkMask, geometry)
        raise FeatureError(f"PyRadiomics refused the input: {exc}", patient=patient,
                           step="radiomics", path=path) from exc
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def shape_unit(mask_path: str, params_json: str, *, patient: str | None = None) -> dict:
    """Shape features of one mask (the mask serves as its own image: shape ignores intensities)."""
    params = json.loads(params_json)
    mask, _ = _read_mask(mask_path, params, patient)
    image = sitk.Cast(mask, sitk.sitkFloat32)
    return _execute(_pyradiomics_json(params), image, mask, patient, mask_path)


def phase_unit(image_path: str, mask_path: str, phase: str, params_json: str, *,
               patient: str | None = None) -> dict:
    """Every non-shape feature of one phase image (all enabled image types and classes)."""
    params = json.loads(params_json)
    mask, _ = _read_mask(mask_path, params, patient)
    image = read_image(image_path, patient=patient, what=f"phase '{phase}'")
    return _execute(_pyradiomics_json(params), image, mask, patient, image_path)


def _pyradiomics_json(params: dict) -> str:
    return json.dumps({k: params[k] for k in ("setting", "imageType", "featureClass")},
                      sort_keys=True)


# --------------------------------------------------------------------------- the cohort
def extract_radiomics(table: Any, out_dir: str | Path, *, params_path: str | Path,
                      phases: Sequence[str] = ("pre", "early"), jobs: int = 1,
                      scheduler: Any = None, progress: bool = True,
                      itk_threads: int = DEFAULT_ITK_THREADS) -> FeatureResult:
    """Extract PyRadiomics features for every patient of a preprocessed table.

    Parameters
    ----------
    table
        The preprocessing table (a DataFrame or a
        :class:`~workbench.pipeline.preprocess.PreprocessResult`): ``patient_id``,
        ``image_<phase>`` for each of ``phases`` and ``mask``; ``mask_voxels`` (optional)
        orders the work largest first.
    out_dir
        Store root (see :mod:`workbench.features.store`); radiomics uses the namespaces
        ``radiomics-shape`` (one unit per mask) and ``radiomics-phase`` (one per image).
    params_path
        Radiomics parameter YAML (``configs/radiomics/paper.yaml``); validated by
        :func:`load_params`; its canonical content is part of every key.
    phases
        Phases to extract, in column order.
    jobs, scheduler, progress
        Where the work runs and whether a progress bar is shown
        (see :func:`~workbench.features.extract.run_tasks`).
    itk_threads
        SimpleITK threads of every unit (part of every key).

    Returns
    -------
    FeatureResult
        ``features``: one row per patient (index ``patient_id``), columns
        ``rad__<phase>__<pyradiomics name>``; failures are rows of ``errors``.
    """
    start = time.perf_counter()
    params = load_params(params_path)
    df = prepare_table(table, [image_column(p) for p in phases] + [MASK_COLUMN])
    versions = library_versions(RADIOMICS_PACKAGES)
    extra = {"checks": params.checks.model_dump()}
    computed_by = {"code": code_digest(RADIOMICS_CODE), "itk_threads": int(itk_threads)}
    shape_params = {**params.pyradiomics("shape"), **extra}
    texture_params = {**params.pyradiomics("texture"), **extra}
    has_shape, has_texture = bool(shape_params["featureClass"]), bool(
        texture_params["featureClass"])
    shape_json, texture_json = json.dumps(shape_params), json.dumps(texture_params)
    meta = {"stage": "radiomics", "params_file": str(params_path),
            "params_sha256": sha256_file(params_path), "versions": versions}
    errors, ready = patients_with_inputs(df, phases)
    tasks, units_of = [], {}
    for pid, row, inputs in ready:
        mask, mask_digest = inputs[MASK_COLUMN]
        cost = float(row["mask_voxels"]) if "mask_voxels" in row and pd.notna(
            row["mask_voxels"]) else 1.0
        units_of[pid] = []
        if has_shape:
            key = make_key(NS_SHAPE, {"params": shape_params, "mask": mask_digest,
                                      "versions": versions, **computed_by})
            tasks.append(Task(pid, "shape", NS_SHAPE, key, shape_unit, (mask, shape_json),
                              cost / 20))
            units_of[pid].append("shape")
        for phase in phases if has_texture else ():
            image, digest = inputs[image_column(phase)]
            key = make_key(NS_PHASE, {"params": texture_params, "image": digest,
                                      "mask": mask_digest, "versions": versions, **computed_by})
            tasks.append(Task(pid, phase, NS_PHASE, key, phase_unit,
                              (image, mask, phase, texture_json), cost))
            units_of[pid].append(phase)
    batch = run_tasks(tasks, out_dir, meta={**meta, **computed_by}, jobs=jobs,
                      scheduler=scheduler, progress=progress, desc="radiomics", errors=errors,
                      itk_threads=itk_threads)
    rows = {}
    for pid, units in units_of.items():
        if not all((pid, u) in batch.records for u in units):
            continue
        row: dict[str, float] = {}
        shape = batch.records[(pid, "shape")]["features"] if has_shape else {}
        for phase in phases:
            row.update({f"{PREFIX}__{phase}__{k}": v for k, v in shape.items()})
            if has_texture:
                feats = batch.records[(pid, phase)]["features"]
                row.update({f"{PREFIX}__{phase}__{k}": v for k, v in feats.items()})
        rows[pid] = row
    return finish("radiomics", [str(p) for p in df["patient_id"]], rows, batch, units_of,
                  start, Path(out_dir))


__all__ = ["RadiomicsParams", "extract_radiomics", "load_params", "phase_unit", "shape_unit"]
