"""Preprocessing of one patient's DCE phases: N4 bias correction → 1 mm grid → z-score.

Every function here is pure (images in, images out, nothing written) and keeps spacing,
origin and direction, except :func:`resample_isotropic`, which changes the spacing by design
and keeps origin and direction. Failures raise :class:`~workbench.errors.PreprocessError`
(or :class:`~workbench.errors.ImageError` for unusable inputs) naming the patient, the step
and, where known, the file.

Why the bias field is shared across phases by default
-----------------------------------------------------
The bias field of breast MRI comes from the receive coil, which does not move between the
pre- and post-contrast acquisitions of one DCE study, so all phases carry the same field.
Correcting each phase separately (``n4_mode="per_phase"``, the study's setting) lets N4 fit a
slightly different smooth field to each phase; N4 also reads strong, spatially clustered
enhancement as "inhomogeneity" and partly flattens it. Both effects change the ratios
``early / pre`` and ``late / early`` that kinetic features are built from. Estimating the
field once on the pre-contrast phase and dividing every phase by it (``n4_mode="shared"``,
the default) removes the coil shading while leaving every voxel's enhancement ratio exactly
as acquired.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from workbench.errors import ConfigError, GeometryError, ImageError, PreprocessError, WorkbenchError
from workbench.imaging.geometry import (
    align_mask,
    check_mask,
    check_same_grid,
    geometry_mismatch,
)
from workbench.imaging.io import read_image

log = logging.getLogger(__name__)

#: Bump when the algorithm changes in a way that changes outputs; part of every cache key.
PREPROCESS_VERSION = 1
N4_MODES = ("shared", "per_phase")
N4_REFERENCES = ("first", "mean")
ZSCORE_REGIONS = ("body", "all")
INTERPOLATORS = {
    "bspline": sitk.sitkBSpline,
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
}
MIN_N4_VOXELS = 100


def _choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class PreprocessSettings:
    """Preprocessing parameters (explicit data; part of the cache key).

    Parameters
    ----------
    n4
        Apply N4 bias-field correction.
    n4_mode
        ``"shared"``: one field, estimated on ``n4_reference``, divides every phase (keeps
        enhancement ratios; default). ``"per_phase"``: N4 on each phase (the study's setting).
    n4_reference
        Image the shared field is estimated on: ``"first"`` (the pre-contrast phase) or
        ``"mean"`` (mean of all phases).
    shrink_factor
        In-plane shrink of the image N4 is fitted on; the through-plane factor is chosen so
        the shrunk voxels are as close to cubic as possible. The field is then evaluated at
        full resolution.
    n4_iterations
        Maximum iterations per fitting level; its length is the number of levels. Shrink 6
        with three levels (50, 50, 30) was chosen on the synthetic cohort: fat CoV 0.083 →
        0.067 in 1.6 s per image, against 0.070 in 5.6 s for shrink 4 with four levels (a
        fourth, finer level starts to absorb anatomy into the field).
    n4_convergence
        N4 convergence threshold (SimpleITK's default, 1e-3: on the synthetic cohort it
        corrects as well as 1e-6 — fat CoV 0.069 vs 0.070 over 10 patients — in 40 % of the
        time).
    spline_distance_mm
        B-spline knot spacing of the bias field at the coarsest level (as ANTs ``N4 -b``); it
        halves at each further level.
    target_spacing
        Isotropic output spacing in mm.
    image_interpolator, mask_interpolator
        ``"bspline"``, ``"linear"`` or ``"nearest"``; masks must use ``"nearest"`` to stay
        binary.
    zscore_region
        ``"body"``: statistics inside the body (not air); ``"all"``: the whole field of view.
    """

    n4: bool = True
    n4_mode: str = "shared"
    n4_reference: str = "first"
    shrink_factor: int = 6
    n4_iterations: tuple[int, ...] = (50, 50, 30)
    n4_convergence: float = 1e-3
    spline_distance_mm: float = 200.0
    target_spacing: float = 1.0
    image_interpolator: str = "bspline"
    mask_interpolator: str = "nearest"
    zscore_region: str = "body"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n4_iterations", tuple(int(i) for i in self.n4_iterations))
        _choice("n4_mode", self.n4_mode, N4_MODES)
        _choice("n4_reference", self.n4_reference, N4_REFERENCES)
        _choice("zscore_region", self.zscore_region, ZSCORE_REGIONS)
        _choice("image_interpolator", self.image_interpolator, tuple(INTERPOLATORS))
        _choice("mask_interpolator", self.mask_interpolator, ("nearest",))
        if int(self.shrink_factor) < 1:
            raise ConfigError(f"shrink_factor must be an integer >= 1, got {self.shrink_factor!r}")
        if not self.n4_iterations or min(self.n4_iterations) < 1:
            raise ConfigError("n4_iterations must be a non-empty list of positive integers, "
                              f"got {self.n4_iterations!r}")
        for name in ("n4_convergence", "spline_distance_mm", "target_spacing"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def key(self) -> str:
        """Stable 16-hex-digit hash of the settings and :data:`PREPROCESS_VERSION`."""
        payload = {"version": PREPROCESS_VERSION, **dataclasses.asdict(self)}
        text = json.dumps(payload, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: The study's published settings: N4 on each phase separately.
STUDY_SETTINGS = PreprocessSettings(n4_mode="per_phase")


@dataclasses.dataclass
class PreprocessedPatient:
    """Output of :func:`preprocess_patient`: 1 mm z-scored phases, mask and a record."""

    patient_id: str | None
    images: dict[str, sitk.Image]
    mask: sitk.Image
    record: dict


@contextlib.contextmanager
def _step(step: str, patient: str | None, path: str | None = None) -> Iterator[None]:
    """Turn an unexpected error (ITK's RuntimeError...) inside ``step`` into PreprocessError."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [""])
        detail = next((line for line in text if "rror" in line), text[0]).strip()[:300]
        raise PreprocessError(f"{type(exc).__name__}: {detail}", patient=patient, step=step,
                              path=path) from exc


def _float32(image: sitk.Image) -> sitk.Image:
    if image.GetPixelID() == sitk.sitkFloat32:
        return image
    return sitk.Cast(image, sitk.sitkFloat32)


def _same_grid_or_raise(ref: sitk.Image, other: sitk.Image, what: str, step: str,
                        patient: str | None) -> None:
    why = geometry_mismatch(ref, other)
    if why is not None:
        raise GeometryError(f"{what} is not on the image grid: {why}", patient=patient, step=step)


# --------------------------------------------------------------------------- body mask
def body_mask(image: sitk.Image, *, patient: str | None = None) -> sitk.Image:
    """Binary (uint8) mask of the body: everything that is not air.

    Otsu threshold of a lightly Gaussian-smoothed copy (smoothing keeps low-signal air noise
    from crossing the threshold; more smoothing would pull the edge inwards), the largest
    connected component, a small closing, then holes filled slice by slice (dark fat or cysts
    inside the breast belong to the body; a 3D fill would miss holes that touch the
    field-of-view edge).
    """
    with _step("body mask", patient):
        img = _float32(image)
        arr = sitk.GetArrayViewFromImage(img)
        if not np.isfinite(arr).all():
            raise PreprocessError("image has NaN or infinite voxels", patient=patient,
                                  step="body mask")
        if float(arr.max()) <= float(arr.min()):
            raise PreprocessError("image is constant; cannot separate body from air",
                                  patient=patient, step="body mask")
        sigma = min(image.GetSpacing())  # one voxel: tames air noise, keeps the skin line
        smooth = sitk.SmoothingRecursiveGaussian(img, sigma)
        fg = sitk.OtsuThreshold(smooth, 0, 1, 256)
        cc = sitk.RelabelComponent(sitk.ConnectedComponent(fg), sortByObjectSize=True)
        largest = sitk.Cast(cc == 1, sitk.sitkUInt8)
        largest = sitk.BinaryMorphologicalClosing(largest, [1, 1, 1], sitk.sitkBall, 1)
        solid = sitk.GetArrayFromImage(largest).astype(bool)  # [z, y, x]
        for k in range(solid.shape[0]):
            solid[k] = ndimage.binary_fill_holes(solid[k])
        mask = sitk.GetImageFromArray(solid.astype(np.uint8))
        mask.CopyInformation(image)
    if not solid.any():
        raise PreprocessError("body mask is empty", patient=patient, step="body mask")
    return mask


_body_mask = body_mask  # n4_correct's keyword argument shadows the function


# --------------------------------------------------------------------------- N4
def _n4_fit(image: sitk.Image, fit_mask: sitk.Image, *, shrink_factor: int,
            iterations: Sequence[int], convergence: float, spline_distance_mm: float,
            patient: str | None) -> sitk.Image:
    """Fit N4 on a shrunk copy; return the log bias field on ``image``'s full grid."""
    img = _float32(image)
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
    with _step("n4", patient):
        n4.Execute(small, small_mask)
        log_field = n4.GetLogBiasFieldAsImage(img)
    log_field = _float32(log_field)
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
    img = _float32(image)
    field = sitk.Exp(_float32(log_bias_field))
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
        Voxels the field is fitted on (uint8, 1 = body); computed with :func:`body_mask`
        when omitted. Must share ``image``'s grid.
    shrink_factor, iterations, convergence, spline_distance_mm
        See :class:`PreprocessSettings`.

    Returns
    -------
    corrected, log_bias_field
        ``corrected = image / exp(log_bias_field)``, both float32 on ``image``'s grid.
    """
    if body_mask is None:
        body_mask = _body_mask(image, patient=patient)
    _same_grid_or_raise(image, body_mask, "body mask", "n4", patient)
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
    ``reference="mean"``; apply it to every phase with :func:`apply_log_bias`. See the module
    docstring for why this keeps enhancement ratios intact.
    """
    _choice("reference", reference, N4_REFERENCES)
    if not phases:
        raise PreprocessError("no phases given", patient=patient, step="n4")
    names = list(phases)
    if reference == "first":
        target = _float32(phases[names[0]])
    else:
        target = _mean_image([phases[n] for n in names])
    _same_grid_or_raise(target, body, "body mask", "n4", patient)
    return _n4_fit(target, body, shrink_factor=shrink_factor, iterations=iterations,
                   convergence=convergence, spline_distance_mm=spline_distance_mm,
                   patient=patient)


def _mean_image(images: Sequence[sitk.Image]) -> sitk.Image:
    total = np.zeros(sitk.GetArrayViewFromImage(images[0]).shape, np.float64)
    for im in images:
        total += sitk.GetArrayViewFromImage(im)
    out = sitk.GetImageFromArray((total / len(images)).astype(np.float32))
    out.CopyInformation(images[0])
    return out


# --------------------------------------------------------------------------- resampling
def resample_isotropic(image: sitk.Image, spacing: float = 1.0, interpolator: str = "bspline",
                       default_value: float = 0.0) -> sitk.Image:
    """Resample onto an isotropic grid with the same origin and direction.

    The number of voxels per axis is ``round(size * old_spacing / spacing)``, so the physical
    extent is kept to within one output voxel. ``"bspline"`` and ``"linear"`` give float32
    (B-spline is the image default); ``"nearest"`` keeps the pixel type, so a binary uint8
    mask stays binary uint8.
    """
    _choice("interpolator", interpolator, tuple(INTERPOLATORS))
    if not spacing > 0:
        raise PreprocessError(f"target spacing must be > 0 mm, got {spacing!r}", step="resample")
    src = image if interpolator == "nearest" else _float32(image)
    new_spacing = (float(spacing),) * image.GetDimension()
    size = [max(1, int(round(n * s / spacing)))
            for n, s in zip(image.GetSize(), image.GetSpacing(), strict=True)]
    with _step("resample", None):
        return sitk.Resample(src, size, sitk.Transform(), INTERPOLATORS[interpolator],
                             image.GetOrigin(), new_spacing, image.GetDirection(),
                             float(default_value), src.GetPixelID())


# --------------------------------------------------------------------------- z-score
def pooled_stats(images: Mapping[str, sitk.Image], region_mask: sitk.Image | None = None, *,
                 patient: str | None = None) -> tuple[float, float]:
    """Mean and standard deviation pooled over every phase inside ``region_mask``."""
    if not images:
        raise PreprocessError("no phases given", patient=patient, step="zscore")
    names = list(images)
    region = None
    if region_mask is not None:
        _same_grid_or_raise(images[names[0]], region_mask, "z-score region", "zscore", patient)
        region = sitk.GetArrayViewFromImage(region_mask) > 0
        if not region.any():
            raise PreprocessError("z-score region is empty", patient=patient, step="zscore")
    n, s, ss = 0, 0.0, 0.0
    for name in names:
        _same_grid_or_raise(images[names[0]], images[name], f"phase {name!r}", "zscore", patient)
        arr = sitk.GetArrayViewFromImage(images[name])
        values = (arr[region] if region is not None else arr.ravel()).astype(np.float64)
        n, s, ss = n + values.size, s + values.sum(), ss + np.square(values).sum()
    mean = s / n
    std = math.sqrt(max(ss / n - mean * mean, 0.0))
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 1e-12 * max(1.0, abs(mean)):
        raise PreprocessError(f"cannot z-score: pooled std is {std:.3g} (constant or non-finite "
                              "image)", patient=patient, step="zscore")
    return float(mean), float(std)


def zscore_patient(images: Mapping[str, sitk.Image], region_mask: sitk.Image | None = None, *,
                   stats: tuple[float, float] | None = None,
                   patient: str | None = None) -> dict[str, sitk.Image]:
    """Z-score all phases of one patient with the same pooled statistics.

    Mean and standard deviation are pooled over every phase inside ``region_mask`` (the body;
    ``None`` = whole image), see :func:`pooled_stats`. One affine map for all phases keeps
    their ordering, so enhancement stays visible; per-phase z-scores would erase it.
    """
    mean, std = stats if stats is not None else pooled_stats(images, region_mask, patient=patient)
    out = {}
    for name, image in images.items():
        z = sitk.ShiftScale(_float32(image), -mean, 1.0 / std)
        z.CopyInformation(image)
        out[name] = _float32(z)
    return out


# --------------------------------------------------------------------------- one patient
def preprocess_patient(paths: Mapping[str, str], mask_path: str,
                       settings: PreprocessSettings | None = None, *,
                       patient: str | None = None,
                       mask_space: str = "grid") -> PreprocessedPatient:
    """Read, check, N4-correct, resample to 1 mm and z-score one patient.

    Parameters
    ----------
    paths
        Phase name → image path (file, DICOM folder, or ``DIR#t=K``), in acquisition order.
    mask_path
        Tumour mask path; must be binary and on the phases' grid.
    settings
        Preprocessing parameters (default :class:`PreprocessSettings()`).
    patient
        Patient identifier, for error messages and the record.
    mask_space
        ``"grid"``: the mask must share the phases' grid; ``"physical"``: it is resampled
        onto it (see :func:`workbench.imaging.geometry.align_mask`).

    Returns
    -------
    PreprocessedPatient
        Images (float32, z-scored), mask (uint8) on the ``target_spacing`` grid, and a record
        of what was done (original grid, voxel counts, bias-field range, z-score statistics).

    Raises
    ------
    ImageError, GeometryError, PreprocessError
        Naming the patient, the step and the file.
    """
    start = time.perf_counter()
    settings = PreprocessSettings() if settings is None else settings
    if not paths:
        raise PreprocessError("no phases given", patient=patient, step="read")
    phases: dict[str, sitk.Image] = {}
    for name, path in paths.items():
        image = read_image(path, patient=patient, what=f"phase '{name}'",
                           pixel_type=sitk.sitkFloat32)
        n_bad = int((~np.isfinite(sitk.GetArrayViewFromImage(image))).sum())
        if n_bad:
            raise ImageError(f"phase '{name}' has {n_bad} NaN or infinite voxels",
                             patient=patient, step="read", path=path)
        phases[name] = image
    mask = read_image(mask_path, patient=patient, what="tumour mask")
    first = next(iter(phases))
    mask = align_mask(mask, phases[first], mask_space=mask_space, patient=patient,
                      path=str(mask_path))
    for name, image in list(phases.items())[1:] + [("mask", mask)]:
        try:
            check_same_grid({first: phases[first], name: image}, patient=patient, reference=first)
        except GeometryError as err:
            raise GeometryError(err.message, patient=patient, step="geometry",
                                path=mask_path if name == "mask" else paths[name]) from None
    mask_voxels = check_mask(mask, patient=patient, path=str(mask_path))
    mask = sitk.Cast(mask, sitk.sitkUInt8)
    ref = phases[first]

    body = body_mask(_mean_image(list(phases.values())), patient=patient)
    record: dict = {
        "patient_id": patient,
        "orig_size": "x".join(str(n) for n in ref.GetSize()),
        "orig_spacing": "x".join(f"{s:.4g}" for s in ref.GetSpacing()),
        "orig_voxels": int(np.prod(ref.GetSize())),
        "mask_voxels_orig": mask_voxels,
        "mask_ml_orig": mask_voxels * float(np.prod(ref.GetSpacing())) / 1000.0,
        "body_fraction": float(sitk.GetArrayViewFromImage(body).mean()),
        "n4_mode": settings.n4_mode if settings.n4 else "off",
    }

    if settings.n4:
        n4_args = dict(shrink_factor=settings.shrink_factor, iterations=settings.n4_iterations,
                       convergence=settings.n4_convergence,
                       spline_distance_mm=settings.spline_distance_mm, patient=patient)
        if settings.n4_mode == "shared":
            log_field = estimate_shared_bias(phases, body, reference=settings.n4_reference,
                                             **n4_args)
            fields = [log_field]
            phases = {n: apply_log_bias(im, log_field) for n, im in phases.items()}
        else:
            fields = []
            for name, image in phases.items():
                phases[name], log_field = n4_correct(image, body_mask=body, **n4_args)
                fields.append(log_field)
        inside = sitk.GetArrayViewFromImage(body) > 0
        values = np.concatenate([np.exp(sitk.GetArrayViewFromImage(f)[inside]) for f in fields])
        record["bias_min"], record["bias_max"] = float(values.min()), float(values.max())
    else:
        record["bias_min"] = record["bias_max"] = 1.0

    sp = settings.target_spacing
    phases = {n: resample_isotropic(im, sp, settings.image_interpolator)
              for n, im in phases.items()}
    mask = resample_isotropic(mask, sp, settings.mask_interpolator)
    mask_after = int(sitk.GetArrayViewFromImage(mask).sum())
    if mask_after == 0:
        raise PreprocessError(f"tumour mask is empty after resampling to {sp} mm "
                              f"({mask_voxels} voxels before): the lesion is smaller than one "
                              "output voxel; check the mask or use a finer target_spacing",
                              patient=patient, step="resample", path=str(mask_path))
    region = None
    if settings.zscore_region == "body":
        region = resample_isotropic(body, sp, "nearest")
    mean, std = pooled_stats(phases, region, patient=patient)
    phases = zscore_patient(phases, stats=(mean, std), patient=patient)

    out_ref = next(iter(phases.values()))
    record.update({
        "size": "x".join(str(n) for n in out_ref.GetSize()),
        "spacing_mm": float(sp),
        "mask_voxels": mask_after,
        "mask_ml": mask_after * sp**3 / 1000.0,
        "zscore_mean": mean,
        "zscore_std": std,
        "seconds": round(time.perf_counter() - start, 3),
    })
    log.debug("preprocessed patient %s in %.1f s", patient, record["seconds"])
    return PreprocessedPatient(patient_id=patient, images=phases, mask=mask, record=record)
