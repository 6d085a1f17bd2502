"""CNN input images: the largest tumour cross-section, cropped square, resampled, scaled to [0, 1].

Pure numpy / SciPy / SimpleITK functions, composed in order by :func:`patient_crop`:

1. **Slice** (:func:`~workbench.imaging.slices.select_slice`): the axial slice with the
   largest tumour cross-section. "Axial" is the array axis most aligned with the patient's
   superior-inferior axis, read from the image direction
   (:func:`~workbench.imaging.slices.axial_axis`), so a sagittal acquisition resampled to 1 mm
   still gives axial slices. Ties go to the more central slice: the one nearest the middle of the
   tumour's extent along that axis (a second tie goes to the lower index).
2. **Components**: a mask with several disconnected 3-D components (face connectivity) is
   reduced to its *largest component by volume* (``components="largest"``, default: the index
   lesion; satellites would otherwise pull the box away from it), or kept whole
   (``components="all"``: the largest cross-section of the union). Either way a warning
   ``"N components, used ..."`` is returned for the errors/warnings table.
3. **Box** (:func:`square_box`): the tumour's bounding box on that slice, padded to a square
   in millimetres (its longer side, centred on the box, so the aspect ratio is kept), then
   enlarged by ``margin`` x side on each side (default 20 %).
4. **Resample** (:func:`crop_square`): the square sampled on an ``image_size`` x
   ``image_size`` grid with linear (default) or cubic B-spline interpolation
   (``scipy.ndimage.map_coordinates``, physical spacing honoured). A box reaching past the
   image edge is filled by edge replication (``pad="edge"``, default) or zeros (``"zero"``:
   the z-scored mean intensity); nothing crashes.
5. **Scale**: each channel min-max scaled to [0, 1] over the crop (the study's setting; a
   constant crop gives 0).

Channels
--------
``"phases"`` (default)
    One image per patient: pre, early, late as the three channels.
``"grey"``
    One image per phase, that phase replicated to three channels; the stage averages each
    network's features over the phases.

What the networks expect
------------------------
The ImageNet networks were trained on differently normalised inputs: ResNet50 ``caffe``
(RGB->BGR, ImageNet mean subtracted, no scaling), DenseNet ``torch`` (/255, then ImageNet
mean/std per channel), InceptionV3 and InceptionResNetV2 ``tf`` (scaled to [-1, 1]),
EfficientNet raw 0-255 (rescaling and normalisation are layers inside the model). The stage
therefore always maps the [0, 1] crop to [0, 255] and then applies the network's own
``keras.applications.<module>.preprocess_input`` (see
:mod:`workbench.features.deep.networks`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage

from workbench.errors import ConfigError
from workbench.features.extract import FeatureError
from workbench.files import atomic_path
from workbench.imaging.io import read_image
from workbench.imaging.slices import SliceChoice, axial_axis, select_slice

log = logging.getLogger(__name__)

STEP = "deep-input"
CHANNEL_MODES = ("phases", "grey")
INTERPOLATIONS = {"linear": 1, "bspline": 3}
PAD_MODES = {"edge": "nearest", "zero": "constant"}
COMPONENT_MODES = ("largest", "all")


@dataclasses.dataclass(frozen=True)
class CropSettings:
    """How the CNN input images are made (every field enters the cache key).

    Parameters
    ----------
    margin
        Added on each side of the square box, as a fraction of its side (0.2 = 20 %).
    image_size
        Output width and height in pixels (224 for the ImageNet networks).
    channels
        ``"phases"`` or ``"grey"`` (module docstring).
    phases
        Phase names used as channels, in order (pre, early, late).
    interpolation
        ``"linear"`` or ``"bspline"`` (cubic).
    pad
        ``"edge"`` or ``"zero"``: fill of a box reaching past the image edge.
    components
        ``"largest"`` or ``"all"`` (module docstring).
    """

    margin: float = 0.2
    image_size: int = 224
    channels: str = "phases"
    phases: tuple[str, ...] = ("pre", "early", "late")
    interpolation: str = "linear"
    pad: str = "edge"
    components: str = "largest"

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        if not (isinstance(self.margin, int | float) and 0 <= self.margin <= 5):
            raise ConfigError(f"margin must be a number in [0, 5], got {self.margin!r}")
        if not (isinstance(self.image_size, int) and 8 <= self.image_size <= 1024):
            raise ConfigError(f"image_size must be an integer in [8, 1024], got "
                              f"{self.image_size!r}")
        for name, allowed in (("channels", CHANNEL_MODES), ("interpolation", INTERPOLATIONS),
                              ("pad", PAD_MODES), ("components", COMPONENT_MODES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}, got "
                                  f"{getattr(self, name)!r}")
        if self.channels == "phases" and len(self.phases) != 3:
            raise ConfigError(f"channels='phases' needs exactly 3 phases, got {self.phases}")
        if not self.phases:
            raise ConfigError("phases must name at least one phase")

    def key(self) -> dict:
        """The settings as plain data (for cache keys and provenance)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PatientCrop:
    """The CNN inputs of one patient.

    Attributes
    ----------
    images
        ``(n_images, S, S, 3)`` float32 in [0, 1]: one image (``"phases"``) or one per phase
        (``"grey"``).
    phase_crops
        ``(n_phases, S, S)`` float32 in [0, 1], the scaled crop of each phase.
    mask_crop
        ``(S, S)`` boolean tumour mask on the crop grid (for QC).
    info
        Slice axis / index, tumour area (mm2), box side (mm), components.
    warnings
        Human-readable warnings (e.g. several components).
    """

    images: np.ndarray
    phase_crops: np.ndarray
    mask_crop: np.ndarray
    info: dict
    warnings: list[str]


# --------------------------------------------------------------------------- geometry
def square_box(roi2d: np.ndarray, spacing2d: Sequence[float],
               margin: float) -> tuple[np.ndarray, float]:
    """Centre (index units, rows/cols) and side (mm) of the square box around ``roi2d``.

    The tumour's bounding box is padded to a square of its longer physical side, centred on
    the box, then ``margin`` x side is added on each side.
    """
    rows, cols = np.nonzero(roi2d)
    lo = np.array([rows.min(), cols.min()], dtype=float)
    hi = np.array([rows.max(), cols.max()], dtype=float)
    extent_mm = (hi - lo + 1.0) * np.asarray(spacing2d, dtype=float)
    side = float(extent_mm.max()) * (1.0 + 2.0 * margin)
    return (lo + hi) / 2.0, side


def crop_square(slice2d: np.ndarray, spacing2d: Sequence[float], centre: np.ndarray,
                side_mm: float, size: int, *, order: int = 1, pad: str = "edge") -> np.ndarray:
    """Sample the ``side_mm`` square centred on ``centre`` (index units) on a size x size grid.

    Pixel ``i`` of the output samples the physical offset ``(i + 0.5) / size * side - side / 2``
    from the centre; outside the image the value follows ``pad``.
    """
    offsets = (np.arange(size) + 0.5) / size * side_mm - side_mm / 2.0
    sp = np.asarray(spacing2d, dtype=float)
    rr = centre[0] + offsets / sp[0]
    cc = centre[1] + offsets / sp[1]
    grid = np.meshgrid(rr, cc, indexing="ij")
    return ndimage.map_coordinates(np.asarray(slice2d, dtype=np.float64), grid, order=order,
                                   mode=PAD_MODES[pad], cval=0.0).astype(np.float32)


def minmax01(image: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant image gives zeros."""
    lo, hi = float(image.min()), float(image.max())
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 0:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- composition
def patient_crop(images: Mapping[str, np.ndarray], mask: np.ndarray,
                 spacing_zyx: Sequence[float], settings: CropSettings = CropSettings(), *,
                 axis: int = 0, patient: str | None = None) -> PatientCrop:
    """The CNN inputs of one patient from arrays on one grid (numpy order z, y, x).

    Parameters
    ----------
    images
        Phase name -> 3-D array; must hold every phase of ``settings.phases``.
    mask
        Tumour mask, same shape (non-zero = tumour).
    spacing_zyx
        Voxel spacing in mm, in array axis order.
    settings
        See :class:`CropSettings`.
    axis
        Array axis of the axial slices (:func:`~workbench.imaging.slices.axial_axis`).

    Raises
    ------
    FeatureError
        A phase is missing or shapes differ.
    ImageError
        The mask is empty.
    """
    missing = [p for p in settings.phases if p not in images or images[p] is None]
    if missing:
        raise FeatureError(f"phase(s) {missing} missing: channels={settings.channels!r} needs "
                           f"{list(settings.phases)}; preprocess that phase or leave the "
                           "patient out", patient=patient, step=STEP)
    shape = np.shape(mask)
    for p in settings.phases:
        if np.shape(images[p]) != shape:
            raise FeatureError(f"phase '{p}' has shape {np.shape(images[p])}, the mask "
                               f"{shape}: they must share one grid", patient=patient, step=STEP)
    choice = select_slice(mask, axis, components=settings.components, patient=patient,
                          step=STEP)
    in_plane = [a for a in range(3) if a != axis]
    spacing2d = [float(spacing_zyx[a]) for a in in_plane]
    roi2d = np.take(choice.roi, choice.index, axis=axis)
    centre, side = square_box(roi2d, spacing2d, settings.margin)
    size, order = settings.image_size, INTERPOLATIONS[settings.interpolation]
    crops = np.stack([
        minmax01(crop_square(np.take(images[p], choice.index, axis=axis), spacing2d, centre,
                             side, size, order=order, pad=settings.pad))
        for p in settings.phases])
    mask_crop = crop_square(roi2d.astype(np.float32), spacing2d, centre, side, size, order=0,
                            pad="zero") > 0.5
    if settings.channels == "phases":
        stacked = np.moveaxis(crops, 0, -1)[None]
    else:
        stacked = np.repeat(crops[..., None], 3, axis=-1)
    info = {"slice_axis": axis, "slice_index": choice.index,
            "tumour_area_mm2": choice.area * spacing2d[0] * spacing2d[1],
            "box_side_mm": side, "n_components": choice.n_components,
            "kept_voxels": choice.kept_voxels}
    warnings = [choice.warning] if choice.warning else []
    return PatientCrop(np.ascontiguousarray(stacked, dtype=np.float32), crops, mask_crop, info,
                       warnings)


def load_patient_crop(paths: Mapping[str, str], mask_path: str,
                      settings: CropSettings = CropSettings(), *,
                      patient: str | None = None) -> PatientCrop:
    """Read a patient's preprocessed phases and mask and make its CNN inputs.

    Parameters
    ----------
    paths
        Phase name -> image file (the preprocessing stage's ``image_<phase>`` columns).
    mask_path
        Tumour mask on the same grid.

    Raises
    ------
    WorkbenchError
        Unreadable file (:class:`~workbench.errors.ImageError`), a missing phase, a grid
        mismatch (:class:`~workbench.features.extract.FeatureError`) or an empty mask.
    """
    missing = [p for p in settings.phases if not paths.get(p)]
    if missing:
        raise FeatureError(f"phase(s) {missing} missing: channels={settings.channels!r} needs "
                           f"{list(settings.phases)}", patient=patient, step=STEP)
    mask_img = read_image(mask_path, patient=patient, what="tumour mask")
    arrays = {}
    for p in settings.phases:
        img = read_image(paths[p], patient=patient, what=f"phase '{p}'",
                         pixel_type=sitk.sitkFloat32)
        if img.GetSize() != mask_img.GetSize() or not np.allclose(
                img.GetSpacing(), mask_img.GetSpacing(), rtol=1e-4):
            raise FeatureError(f"phase '{p}' is not on the grid of the tumour mask",
                               patient=patient, step=STEP, path=paths[p])
        arrays[p] = sitk.GetArrayFromImage(img)
    mask = sitk.GetArrayFromImage(mask_img)
    axis = axial_axis(mask_img.GetDirection())
    return patient_crop(arrays, mask, mask_img.GetSpacing()[::-1], settings, axis=axis,
                        patient=patient)


def save_crop_png(crop: PatientCrop, path: str | Path) -> Path:
    """Write a QC strip atomically: the RGB composite (``"phases"`` mode) then each phase in
    grey with the tumour outline in red; panels separated by 2 white pixels."""
    edge = crop.mask_crop & ~ndimage.binary_erosion(crop.mask_crop)
    panels = []
    if crop.images.shape[0] == 1:  # "phases": the composite the CNN sees
        panels.append(crop.images[0])
    for grey in crop.phase_crops:
        rgb = np.repeat(grey[..., None], 3, axis=-1).copy()
        rgb[edge] = (1.0, 0.0, 0.0)
        panels.append(rgb)
    size = crop.phase_crops.shape[1]
    sep = np.ones((size, 2, 3), np.float32)
    strip = np.concatenate([x for p in panels for x in (p, sep)][:-1], axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(np.round(strip * 255).astype(np.uint8), "RGB").save(tmp, format="PNG")
    return Path(path)


__all__ = ["CropSettings", "PatientCrop", "SliceChoice", "axial_axis", "crop_square",
           "load_patient_crop", "minmax01", "patient_crop", "save_crop_png", "select_slice",
           "square_box"]
