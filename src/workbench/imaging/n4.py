"""N4 bias-field correction: per image, or one field shared by all DCE phases.

The field is fitted on a shrunk copy inside the body mask and evaluated at full resolution;
every function keeps spacing, origin and direction. Why the field is shared across phases by
default: see :mod:`workbench.imaging.preprocess`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from workbench.errors import PreprocessError

# n4_correct's keyword argument ``body_mask`` shadows the function
from workbench.imaging.body import body_mask as _body_mask
from workbench.imaging.steps import as_float32, require_choice, require_same_grid, step_context

N4_REFERENCES = ("first", "mean")
MIN_N4_VOXELS = 100


def _n4_fit(image: sitk.Image, fit_mask: sitk.Image, *, shrink_factor: int,
            iterations: Sequence[int], convergence: float, spline_distance_mm: float,
            patient: str | None) -> sitk.Image:
    """Fit N4 on a shrunk copy; return the log bias field on ``image``'s full grid."""
    img = as_float32(image)
    # N4 works on log intensities: non-positive voxels cannot take part in the fit.
    mask = sitk.And(sitk.Cast(fit_mask, sitk.sitkUInt8), sitk.Cast(img > 0, sitk.sitkUInt8))
    if int(sitk.GetArrayViewFromImage(mask).sum()) < MIN_N4_VOXELS:
        raise PreprocessError(f"fewer than {MIN_N4_VOXELS} positive body voxels to fit the bias "
                              "field on", patient=patient, step="n4")
    spacing = img.GetSpacing()
    finest = min(spacing)
    factors = [max(1, min(int(round(shrink_factor * finest / s)), n // 4 or 1))
               for s, n in zip(spacing, img.GetSize(), strict=True)]
    small, small_mask = sitk.Shrink(img, factors), sitk.Shrink(mask, factors)
    extent = [n * s for n, s in zip(img.GetSize(), spacing, strict=True)]
    order = 3
    points = [max(order + 1, math.ceil(e / spline_distance_mm) + order) for e in extent]
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(i) for i in iterations])
    n4.SetConvergenceThreshold(float(convergence))
    n4.SetSplineOrder(order)
    n4.SetNumberOfControlPoints(points)
    with step_context("n4", patient):
        n4.Execute(small, small_mask)
        log_field = n4.GetLogBiasFieldAsImage(img)
    log_field = as_float32(log_field)
    log_field.CopyInformation(image)
    # N4 fixes the field only up to a constant factor; centre it so its geometric mean over
    # the fitted voxels is 1, keeping corrected intensities in the input's range.
    centre = float(sitk.GetArrayViewFromImage(log_field)[sitk.GetArrayViewFromImage(mask) > 0]
                   .mean())
    log_field = sitk.ShiftScale(log_field, -centre, 1.0)
    if not np.isfinite(sitk.GetArrayViewFromImage(log_field)).all():
        raise PreprocessError("estimated bias field has NaN or infinite values", patient=patient,
                              step="n4")
    return log_field


def apply_log_bias(image: sitk.Image, log_bias_field: sitk.Image) -> sitk.Image:
    """Divide ``image`` by ``exp(log_bias_field)``; float32, same geometry as ``image``."""
    img = as_float32(image)
    field = sitk.Exp(as_float32(log_bias_field))
    field.CopyInformation(img)
    out = sitk.Divide(img, field)
    out.CopyInformation(image)
    return out


def n4_correct(image: sitk.Image, *, body_mask: sitk.Image | None = None,
               shrink_factor: int = 6, iterations: Sequence[int] = (50, 50, 30),
               convergence: float = 1e-3, spline_distance_mm: float = 200.0,
               patient: str | None = None) -> tuple[sitk.Image, sitk.Image]:
    """N4 bias-field correction fitted on a shrunk copy, applied at full resolution.

    Parameters
    ----------
    image
        Image to correct (any scalar pixel type).
    body_mask
        Voxels the field is fitted on (uint8, 1 = body); computed with
        :func:`~workbench.imaging.body.body_mask` when omitted. Must share ``image``'s grid.
    shrink_factor, iterations, convergence, spline_distance_mm
        See :class:`~workbench.imaging.preprocess.PreprocessSettings`.

    Returns
    -------
    corrected, log_bias_field
        ``corrected = image / exp(log_bias_field)``, both float32 on ``image``'s grid.
    """
    if body_mask is None:
        body_mask = _body_mask(image, patient=patient)
    require_same_grid(image, body_mask, "body mask", "n4", patient)
    log_field = _n4_fit(image, body_mask, shrink_factor=shrink_factor, iterations=iterations,
                        convergence=convergence, spline_distance_mm=spline_distance_mm,
                        patient=patient)
    return apply_log_bias(image, log_field), log_field


def estimate_shared_bias(phases: Mapping[str, sitk.Image], body: sitk.Image, *,
                         reference: str = "first", shrink_factor: int = 6,
                         iterations: Sequence[int] = (50, 50, 30),
                         convergence: float = 1e-3, spline_distance_mm: float = 200.0,
                         patient: str | None = None) -> sitk.Image:
    """One log bias field for all DCE phases (they share the coil, hence the field).

    The field is fitted on the first (pre-contrast) phase, or on the mean of the phases with
    ``reference="mean"``; apply it to every phase with :func:`apply_log_bias`. See
    :mod:`workbench.imaging.preprocess` for why this keeps enhancement ratios intact.
    """
    require_choice("reference", reference, N4_REFERENCES)
    if not phases:
        raise PreprocessError("no phases given", patient=patient, step="n4")
    names = list(phases)
    if reference == "first":
        target = as_float32(phases[names[0]])
    else:
        target = mean_image([phases[n] for n in names])
    require_same_grid(target, body, "body mask", "n4", patient)
    return _n4_fit(target, body, shrink_factor=shrink_factor, iterations=iterations,
                   convergence=convergence, spline_distance_mm=spline_distance_mm,
                   patient=patient)


def mean_image(images: Sequence[sitk.Image]) -> sitk.Image:
    """Voxel-wise mean of images on one grid (float32, geometry of the first)."""
    total = np.zeros(sitk.GetArrayViewFromImage(images[0]).shape, np.float64)
    for im in images:
        total += sitk.GetArrayViewFromImage(im)
    out = sitk.GetImageFromArray((total / len(images)).astype(np.float32))
    out.CopyInformation(images[0])
    return out
