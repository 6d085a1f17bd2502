"""The largest tumour cross-section: which axial slice, and a patient's phases on it.

Pure functions on arrays (:func:`axial_axis`, :func:`select_slice`) and small readers that
return 2-D arrays, so figures and the dashboard draw a patient without reading files
themselves: :func:`read_tumour_slices` (phases and mask on that slice, with the physical pixel
spacing; :func:`row_tumour_slices` for one row of a cohort or preprocessing table) and
:func:`read_rgb_images` (the deep-feature stage's QC strips, ``features/crops/<patient>.png``).

"Axial" is the array axis most aligned with the patient's superior-inferior axis, read from the
image direction (:func:`axial_axis`), so a sagittal acquisition resampled to 1 mm still gives
axial slices. The slice is the one with the largest tumour cross-section; ties go to the more
central slice (nearest the middle of the tumour's extent along that axis; a second tie goes to
the lower index). A mask with several disconnected 3-D components (face connectivity) is
reduced to its largest component by volume (``components="largest"``: the index lesion), or
kept whole (``components="all"``); either way a warning says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage

from workbench.errors import ImageError
from workbench.imaging.io import read_image

__all__ = ["SliceChoice", "TumourSlices", "axial_axis", "read_rgb_images", "read_tumour_slices",
           "row_tumour_slices", "select_slice"]


@dataclasses.dataclass(frozen=True)
class SliceChoice:
    """Which slice was used: ``index`` along ``axis``, tumour ``area`` in pixels, the 3-D
    ``roi`` kept (boolean, mask shape), component counts and an optional warning."""

    axis: int
    index: int
    area: int
    roi: np.ndarray
    n_components: int
    kept_voxels: int
    warning: str | None = None


@dataclasses.dataclass(frozen=True)
class TumourSlices:
    """One patient on the axial slice with the largest tumour cross-section.

    Attributes
    ----------
    patient_id
        Whose slices these are.
    phases
        Phase name -> 2-D float32 array (rows, cols) on that slice, in the order asked for.
    mask
        2-D boolean tumour mask on the same slice (the component kept by :func:`select_slice`).
    spacing
        Physical pixel size ``(row, col)`` in mm.
    axis, index
        Array axis of the axial slices and the slice index along it.
    area
        Tumour cross-section on the slice, in pixels.
    """

    patient_id: str
    phases: dict[str, np.ndarray]
    mask: np.ndarray
    spacing: tuple[float, float]
    axis: int
    index: int
    area: int


def axial_axis(direction: Sequence[float]) -> int:
    """Numpy axis (of a SimpleITK ``GetArrayFromImage`` array, ordered z, y, x) most aligned
    with the patient's superior-inferior axis, from the row-major 3x3 direction matrix."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    index_axis = int(np.argmax(np.abs(d[2, :])))  # column j = direction of index axis j
    return 2 - index_axis


def select_slice(mask: np.ndarray, axis: int = 0, *, components: str = "largest",
                 patient: str | None = None, step: str = "slice") -> SliceChoice:
    """The slice with the largest tumour cross-section (see module docstring for the rules).

    Parameters
    ----------
    step
        Pipeline step named in the error (the caller's: ``"deep-input"`` for the CNN crops).

    Raises
    ------
    ImageError
        If the mask is empty.
    """
    roi = np.asarray(mask) > 0
    if not roi.any():
        raise ImageError("tumour mask is empty; no slice to crop", patient=patient, step=step)
    labels, n = ndimage.label(roi)
    warning = None
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        if components == "largest":
            keep = int(np.argmax(sizes)) + 1
            roi = labels == keep
            warning = (f"{n} components, used the largest ({int(sizes[keep - 1])} voxels); "
                       f"{int(sizes.sum() - sizes[keep - 1])} voxels in the others ignored")
        else:
            warning = f"{n} components, used the largest cross-section of all of them"
    other = tuple(a for a in range(roi.ndim) if a != axis)
    areas = roi.sum(axis=other)
    present = np.flatnonzero(areas)
    centre = (present[0] + present[-1]) / 2.0
    best = np.flatnonzero(areas == areas.max())
    index = int(best[np.argmin(np.abs(best - centre))])  # argmin keeps the lower on a tie
    return SliceChoice(axis=axis, index=index, area=int(areas[index]), roi=roi, n_components=n,
                       kept_voxels=int(roi.sum()), warning=warning)


def read_tumour_slices(phase_paths: Mapping[str, str], mask_path: str, *,
                       patient: str = "?") -> TumourSlices:
    """Read a patient's phases and mask and keep the largest tumour slice of each.

    Parameters
    ----------
    phase_paths
        Phase name -> image file (a cohort table's or ``preprocessed.parquet``'s
        ``image_<phase>`` paths), on the grid of the mask.
    mask_path
        Tumour mask file.
    patient
        For error messages.

    Raises
    ------
    ImageError
        An unreadable file or an empty mask (names the patient and the file).
    """
    mask_img = read_image(str(mask_path), patient=patient, what="tumour mask")
    axis = axial_axis(mask_img.GetDirection())
    choice = select_slice(sitk.GetArrayFromImage(mask_img), axis, patient=patient)
    phases = {}
    for phase, path in phase_paths.items():
        img = read_image(str(path), patient=patient, what=f"phase '{phase}'",
                         pixel_type=sitk.sitkFloat32)
        phases[phase] = np.take(sitk.GetArrayFromImage(img), choice.index, axis=axis)
    dy, dx = (float(s) for a, s in enumerate(mask_img.GetSpacing()[::-1]) if a != axis)
    return TumourSlices(str(patient), phases, np.take(choice.roi, choice.index, axis=axis),
                        (dy, dx), axis, choice.index, choice.area)


def row_tumour_slices(row: Mapping[str, object], phases: Sequence[str]) -> TumourSlices:
    """:func:`read_tumour_slices` of one table row (a cohort table's or
    ``preprocessed.parquet``'s): ``patient_id``, ``image_<phase>`` per phase and ``mask``.

    Raises
    ------
    ImageError
        A path is missing from the row (names the patient and the columns), or as
        :func:`read_tumour_slices`.
    """
    pid = str(row.get("patient_id", "?"))
    needed = [f"image_{p}" for p in phases] + ["mask"]
    missing = [c for c in needed if not isinstance(row.get(c), str | Path) or not row.get(c)]
    if missing:
        raise ImageError(f"no path in {missing}", patient=pid, step="tumour slice")
    return read_tumour_slices({p: str(row[f"image_{p}"]) for p in phases}, str(row["mask"]),
                              patient=pid)


def read_rgb_images(paths: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Decode PNG files (the deep stage's ``features/crops/<patient>.png`` QC strips).

    Returns
    -------
    dict
        File stem (the patient id) -> ``(rows, cols, channels)`` uint8 array, in order.

    Raises
    ------
    ImageError
        A file does not exist (all missing files are named) or cannot be decoded.
    """
    absent = [str(p) for p in paths if not Path(p).is_file()]
    if absent:
        raise ImageError(f"crop images not found: {absent}; the deep-feature stage writes them "
                         "under features/crops/", step="crop strips")
    out = {}
    for p in map(Path, paths):
        try:
            with Image.open(p) as img:
                out[p.stem] = np.array(img)
        except OSError as exc:
            raise ImageError(f"cannot decode image ({exc})", step="crop strips",
                             path=p) from exc
    return out
