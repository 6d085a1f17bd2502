"""Image and mask perturbations for feature robustness (Zwanenburg et al. 2019).

Zwanenburg et al. (2019, *Sci Rep* 9:614) assess how well a radiomics feature reproduces by
recomputing it on perturbed copies of each patient's image and mask, chained in the spirit
of their RNCV chains (Rotation, Noise, Contour/volume adaptation). The perturbations stand
in for what a test-retest scan would change, without a second scan:

* **rotation and translation** (:func:`rigid`) - the patient lies a little differently on a
  re-scan and the grid samples the tumour at other points; rotation is about the axial (z)
  axis through the mask centroid, translation is a sub-voxel shift;
* **noise** (:func:`add_noise`) - another acquisition has another noise realisation;
  additive Gaussian noise, independent per phase;
* **volume adaptation and re-segmentation** (:func:`erode_mask`, :func:`dilate_mask`,
  :func:`resegment`) - another reader, or the same reader another day, draws the contour a
  layer tighter or looser; re-segmentation by intensity range (IBSI outlier filtering) drops
  voxels whose value is unlike the rest of the tumour.

:data:`DEFAULT_PERTURBATIONS` is the study's set: three chains, each combining a small
rigid move, 5 % noise and one mask operation. :func:`apply_perturbation` applies one
:class:`Perturbation` in a fixed, documented order: rigid -> noise -> mask operation.

We write these few operations ourselves instead of using the ``mirp`` package, which brings
ITK and its own feature engine; our features are PyRadiomics. All functions are pure: they
return new images on the input grid (same size, spacing, origin and direction) and never
modify their inputs. Images are the preprocessed float32 z-scored phases of one patient; the
mask is a uint8 label image whose label 1 is the tumour (any non-zero value counts as
tumour here), returned as uint8 0/1.
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from workbench.errors import ConfigError, WorkbenchError
from workbench.imaging.steps import as_float32, require_same_grid, step_context

STEP = "perturbation"
#: Mask operations a :class:`Perturbation` may ask for.
MASK_OPERATIONS: tuple[str, ...] = ("none", "erode", "dilate", "resegment")
#: Fewest tumour voxels a perturbed mask may keep: texture matrices and an SD need two.
MIN_MASK_VOXELS = 2


class PerturbationError(WorkbenchError):
    """A perturbation left too small a mask, or cannot be applied to this patient."""


# --------------------------------------------------------------------------- mask helpers
def _binary(mask: sitk.Image) -> sitk.Image:
    """The tumour (non-zero voxels) as uint8 0/1 on the mask's grid."""
    return sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)


def _voxels(mask: sitk.Image) -> int:
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))


def _check_radius(radius: int) -> None:
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or radius < 1:
        raise ConfigError(f"radius must be an integer >= 1 (voxels), got {radius!r}",
                          step=STEP)


def erode_mask(mask: sitk.Image, radius: int = 1) -> sitk.Image:
    """Binary erosion of the tumour mask by ``radius`` voxels (a tighter contour).

    The structuring element is ITK's ball of ``radius`` voxels; for radius 1 that is the
    3x3x3 cube without its 8 corners (the 18-neighbourhood), so one surface layer goes
    (as diagonal steps reach sqrt(2) mm, about 1.25 times the voxels of a Euclidean 1 mm layer
    on a sphere of radius 8 mm; the face-only cross would take about 0.9 times).
    Voxels outside the image count as tumour, so a tumour cut by the field of view is not
    eroded along the cut (only the drawn contour moves).

    Parameters
    ----------
    mask : SimpleITK.Image
        Tumour mask; non-zero voxels are the tumour.
    radius : int, default=1
        Radius of the ball in voxels (on the 1 mm grid: millimetres).

    Returns
    -------
    SimpleITK.Image
        uint8 0/1 mask on the same grid.
    """
    _check_radius(radius)
    with step_context(STEP, None):
        out = sitk.BinaryErode(_binary(mask), [int(radius)] * mask.GetDimension(),
                               sitk.sitkBall, 0, 1, True)
    return sitk.Cast(out, sitk.sitkUInt8)


def dilate_mask(mask: sitk.Image, radius: int = 1) -> sitk.Image:
    """Binary dilation of the tumour mask by ``radius`` voxels (a looser contour).

    Same structuring element as :func:`erode_mask` (ITK ball; 18-neighbourhood for radius
    1). The result stays on the image grid: growth beyond the field of view is cut off.

    Parameters
    ----------
    mask : SimpleITK.Image
        Tumour mask; non-zero voxels are the tumour.
    radius : int, default=1
        Radius of the ball in voxels.

    Returns
    -------
    SimpleITK.Image
        uint8 0/1 mask on the same grid.
    """
    _check_radius(radius)
    with step_context(STEP, None):
        out = sitk.BinaryDilate(_binary(mask), [int(radius)] * mask.GetDimension(),
                                sitk.sitkBall, 0, 1, False)
    return sitk.Cast(out, sitk.sitkUInt8)


def resegment(image: sitk.Image, mask: sitk.Image, *, n_sd: float = 3.0,
              patient: str | None = None) -> sitk.Image:
    """Re-segmentation by intensity range: drop mask voxels with outlying values.

    IBSI outlier re-segmentation: keep the tumour voxels whose value lies within
    ``mean +/- n_sd * SD`` of the values inside the mask (population SD, ``ddof=0``).

    Parameters
    ----------
    image : SimpleITK.Image
        The image whose values decide (the reference phase), on the mask's grid.
    mask : SimpleITK.Image
        Tumour mask; non-zero voxels are the tumour.
    n_sd : float, default=3.0
        Half-width of the kept range in standard deviations; > 0.
    patient : str, optional
        Named in errors.

    Returns
    -------
    SimpleITK.Image
        uint8 0/1 mask on the same grid, a subset of ``mask``.

    Raises
    ------
    PerturbationError
        When the mask is empty (no range to compute).
    """
    if not (isinstance(n_sd, numbers.Real) and math.isfinite(n_sd) and n_sd > 0):
        raise ConfigError(f"n_sd must be a finite number > 0, got {n_sd!r}", step=STEP)
    require_same_grid(image, mask, "mask", STEP, patient)
    tumour = sitk.GetArrayViewFromImage(mask) != 0
    if not tumour.any():
        raise PerturbationError("re-segmentation of an empty mask", patient=patient, step=STEP)
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    inside = values[tumour]
    centre, spread = inside.mean(), inside.std()
    keep = tumour & (np.abs(values - centre) <= n_sd * spread)
    out = sitk.GetImageFromArray(keep.astype(np.uint8))
    out.CopyInformation(mask)
    return out


# --------------------------------------------------------------------------- noise
def add_noise(image: sitk.Image, sd: float, rng: np.random.Generator) -> sitk.Image:
    """Additive Gaussian noise with standard deviation ``sd`` in image units.

    The phases are z-scored on the body, so ``sd=0.05`` is 5 % of the body's SD. The noise
    is white (independent per voxel); the result is float32 on the same grid.

    Parameters
    ----------
    image : SimpleITK.Image
        Image to perturb.
    sd : float
        Noise standard deviation, >= 0 (0 returns an unchanged float32 copy).
    rng : numpy.random.Generator
        Source of the noise, so the caller controls reproducibility.

    Returns
    -------
    SimpleITK.Image
    """
    if not (isinstance(sd, numbers.Real) and math.isfinite(sd) and sd >= 0):
        raise ConfigError(f"noise sd must be a finite number >= 0, got {sd!r}", step=STEP)
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    if sd > 0:
        values += rng.normal(0.0, sd, size=values.shape).astype(np.float32)
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    return out


# --------------------------------------------------------------------------- rigid
def _copy(image: sitk.Image) -> sitk.Image:
    out = sitk.Image(image)
    out.MakeUnique()  # SimpleITK copies lazily; a real copy keeps the function pure
    return out


def rigid(images: Mapping[str, sitk.Image], mask: sitk.Image, *, rotate_deg: float,
          translate_mm: Sequence[float], patient: str | None = None,
          ) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """Rotate about the axial axis through the mask centroid, then translate.

    The content moves: a point ``p`` of the input goes to ``R (p - c) + c + t``, with ``c``
    the mask centroid (physical), ``R`` a rotation by ``rotate_deg`` about the image's third
    axis (the slice normal: axial for axial acquisitions; positive turns the first image axis
    towards the second) and ``t`` the translation. Everything is resampled onto the input
    grid, so size, spacing, origin and direction are unchanged.

    * images: linear interpolation, as float32. Voxels that come from outside the field of
      view are filled with the image minimum (air on a z-scored MR phase), not the nearest
      edge value, which would smear a row of body voxels into the corners;
    * mask: linear interpolation of its 0/1 values, thresholded at 0.5 (Zwanenburg et al.
      2019), which keeps the volume of a smooth shape.

    A zero rotation and translation returns exact copies (no interpolation round-off).

    Parameters
    ----------
    images : Mapping[str, SimpleITK.Image]
        Phase name -> image, all on the mask's grid (3D).
    mask : SimpleITK.Image
        Tumour mask; non-zero voxels are the tumour; must not be empty.
    rotate_deg : float
        Rotation angle in degrees about the third image axis.
    translate_mm : sequence of 3 floats
        Translation in millimetres along the image axes (i, j, k); for an identity direction
        these are x, y, z.
    patient : str, optional
        Named in errors.

    Returns
    -------
    (dict[str, SimpleITK.Image], SimpleITK.Image)
        The moved images (float32) and the moved uint8 0/1 mask.
    """
    if mask.GetDimension() != 3:
        raise PerturbationError(f"rigid needs 3D images, got a {mask.GetDimension()}D mask",
                                patient=patient, step=STEP)
    shift = [float(v) for v in translate_mm]
    if len(shift) != 3 or not all(math.isfinite(v) for v in shift + [float(rotate_deg)]):
        raise ConfigError(f"rigid needs a finite rotate_deg and 3 finite translate_mm values, "
                          f"got {rotate_deg!r} and {tuple(translate_mm)!r}",
                          patient=patient, step=STEP)
    for name, image in images.items():
        require_same_grid(mask, image, f"phase {name!r}", STEP, patient)
    binary = _binary(mask)
    if rotate_deg == 0 and not any(shift):
        return {name: as_float32(_copy(im)) for name, im in images.items()}, binary
    if _voxels(binary) == 0:
        raise PerturbationError("rigid move of an empty mask: no centroid to rotate about",
                                patient=patient, step=STEP)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(binary)
    direction = np.asarray(mask.GetDirection(), dtype=float).reshape(3, 3)
    forward = sitk.VersorRigid3DTransform()
    forward.SetCenter(stats.GetCentroid(1))
    # the columns of the direction matrix are the image axes in physical space
    forward.SetRotation(tuple(direction[:, 2]), math.radians(float(rotate_deg)))
    forward.SetTranslation(tuple(direction @ np.asarray(shift)))
    # Resample pulls each output point from the input: it needs the inverse of the move
    pull = forward.GetInverse()
    with step_context(STEP, patient):
        moved = {}
        for name, image in images.items():
            src = as_float32(image)
            fill = float(sitk.GetArrayViewFromImage(src).min())
            moved[name] = sitk.Resample(src, src, pull, sitk.sitkLinear, fill, sitk.sitkFloat32)
        soft = sitk.Resample(sitk.Cast(binary, sitk.sitkFloat32), binary, pull, sitk.sitkLinear,
                             0.0, sitk.sitkFloat32)
        moved_mask = sitk.Cast(sitk.GreaterEqual(soft, 0.5), sitk.sitkUInt8)
    return moved, moved_mask


# --------------------------------------------------------------------------- chains
@dataclass(frozen=True)
class Perturbation:
    """One chained perturbation: a rigid move, noise, then a mask operation.

    Parameters
    ----------
    name : str
        Identifier of the copy (feature tables and ICC tables are keyed by it).
    rotate_deg : float, default=0.0
        Rotation about the axial axis through the mask centroid, degrees.
    translate_mm : tuple of 3 floats, default=(0, 0, 0)
        Translation along the image axes, millimetres.
    noise_sd : float, default=0.0
        Standard deviation of the additive Gaussian noise, in z-score units.
    mask : {"none", "erode", "dilate", "resegment"}, default="none"
        Mask operation: erosion or dilation by one voxel, or re-segmentation by intensity
        range (mean +/- 3 SD) on the reference phase.
    """

    name: str
    rotate_deg: float = 0.0
    translate_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    noise_sd: float = 0.0
    mask: Literal["none", "erode", "dilate", "resegment"] = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"perturbation name must be a non-empty string, got {self.name!r}")
        if self.mask not in MASK_OPERATIONS:
            raise ConfigError(f"perturbation {self.name!r}: mask must be one of "
                              f"{list(MASK_OPERATIONS)}, got {self.mask!r}")
        shift = tuple(float(v) for v in self.translate_mm)
        if len(shift) != 3:
            raise ConfigError(f"perturbation {self.name!r}: translate_mm needs 3 values "
                              f"(mm along i, j, k), got {self.translate_mm!r}")
        if not (math.isfinite(self.noise_sd) and self.noise_sd >= 0):
            raise ConfigError(f"perturbation {self.name!r}: noise_sd must be a finite number "
                              f">= 0, got {self.noise_sd!r}")
        # frozen: normalise the sequence to a hashable tuple of floats
        object.__setattr__(self, "translate_mm", shift)
        object.__setattr__(self, "rotate_deg", float(self.rotate_deg))
        object.__setattr__(self, "noise_sd", float(self.noise_sd))


#: The study's perturbation set: three RNCV-like chains, each a rotation or sub-voxel shift
#: (re-positioning), 5 % noise (another acquisition) and a contour change (another reader).
DEFAULT_PERTURBATIONS: tuple[Perturbation, ...] = (
    Perturbation("rot-4_erode", rotate_deg=-4.0, translate_mm=(0.5, 0.0, 0.0), noise_sd=0.05,
                 mask="erode"),
    Perturbation("rot+4_dilate", rotate_deg=4.0, translate_mm=(0.0, 0.5, 0.0), noise_sd=0.05,
                 mask="dilate"),
    Perturbation("shift_reseg", translate_mm=(0.0, 0.0, 0.5), noise_sd=0.05, mask="resegment"),
)


def phase_rng(seed: int, phase: str) -> np.random.Generator:
    """The noise generator of one phase: independent per phase, reproducible across runs.

    Seeded from ``(seed, crc32(phase))``; CRC-32 rather than ``hash()``, which Python
    salts per process.
    """
    return np.random.default_rng([int(seed), zlib.crc32(phase.encode("utf-8"))])


def _require_voxels(mask: sitk.Image, spec: Perturbation, after: str,
                    patient: str | None) -> None:
    n = _voxels(mask)
    if n < MIN_MASK_VOXELS:
        raise PerturbationError(
            f"perturbation {spec.name!r} left {n} mask voxel(s) after {after} (at least "
            f"{MIN_MASK_VOXELS} needed); the tumour is too small for this perturbation: leave "
            "the patient out of the robustness study or use a milder perturbation",
            patient=patient, step=STEP)


def apply_perturbation(images: Mapping[str, sitk.Image], mask: sitk.Image, spec: Perturbation,
                       *, seed: int, reference_phase: str, patient: str | None = None,
                       ) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """Apply one chained perturbation to a patient's phases and mask.

    Order: :func:`rigid` (skipped when there is no move) -> :func:`add_noise` on every phase
    (independent per phase, generator :func:`phase_rng` of ``seed`` and the phase name) ->
    the mask operation (:func:`erode_mask`, :func:`dilate_mask`, or :func:`resegment` on the
    perturbed ``reference_phase``). Noise comes before re-segmentation so that the range is
    judged on the image the features will see.

    Parameters
    ----------
    images : Mapping[str, SimpleITK.Image]
        Phase name -> preprocessed image, all on the mask's grid.
    mask : SimpleITK.Image
        Tumour mask (label 1).
    spec : Perturbation
        What to apply.
    seed : int
        Base seed of the noise (>= 0); same seed, same copy.
    reference_phase : str
        Phase whose values drive re-segmentation (a key of ``images``).
    patient : str, optional
        Named in errors.

    Returns
    -------
    (dict[str, SimpleITK.Image], SimpleITK.Image)
        Perturbed float32 phases (same keys) and uint8 0/1 mask, on the input grid.

    Raises
    ------
    PerturbationError
        When the mask is empty or keeps fewer than 2 voxels at any point of the chain.
    ConfigError
        When ``reference_phase`` is not a phase or ``seed`` is not an integer >= 0.
    """
    if reference_phase not in images:
        raise ConfigError(f"reference_phase {reference_phase!r} is not one of the phases "
                          f"{list(images)}", patient=patient, step=STEP)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}", patient=patient,
                          step=STEP)
    _require_voxels(mask, spec, "nothing (the input mask)", patient)
    moved, moved_mask = rigid(images, mask, rotate_deg=spec.rotate_deg,
                              translate_mm=spec.translate_mm, patient=patient)
    _require_voxels(moved_mask, spec, "the rigid move", patient)
    noisy = {name: add_noise(image, spec.noise_sd, phase_rng(seed, name))
             for name, image in moved.items()}
    if spec.mask == "erode":
        moved_mask = erode_mask(moved_mask)
    elif spec.mask == "dilate":
        moved_mask = dilate_mask(moved_mask)
    elif spec.mask == "resegment":
        moved_mask = resegment(noisy[reference_phase], moved_mask, patient=patient)
    _require_voxels(moved_mask, spec, f"the mask operation {spec.mask!r}", patient)
    return noisy, moved_mask
