"""Reading images and masks with their geometry.

A path in a cohort table is one of:

* a NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``,
  ``.mhd``) file;
* a folder holding one DICOM series;
* a folder holding a DCE series whose timepoints are interleaved, with a temporal selector
  ``FOLDER#t=K`` picking timepoint ``K`` (1-based, as DICOM Temporal Position Identifier
  numbers them; see :mod:`workbench.imaging.dicom`).

Every reader raises :class:`~workbench.errors.ImageError` naming the patient and the file.
Before any pixel is read, a file's header is checked (:mod:`workbench.imaging.header`): only
regular files, 3-D scalar volumes, at most ``max_voxels`` voxels, usable spacing, and as many
bytes of pixel data as the header implies; a DICOM series gets the same voxel and spacing
checks from its headers (:mod:`workbench.imaging.dicom`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from workbench.errors import ImageError
from workbench.files import atomic_path
from workbench.hashing import non_regular_kind
from workbench.imaging.dicom import read_dicom_series
from workbench.imaging.header import (
    check_image_file,
    format_size,
    itk_error_detail,
    spacing_problem,
)

_SELECTOR = re.compile(r"^(?P<path>.*)#t=(?P<t>\d+)$")
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def split_selector(spec: str) -> tuple[str, int | None]:
    """Split ``"DIR#t=K"`` into ``("DIR", K)``; plain paths give ``(path, None)``."""
    match = _SELECTOR.match(str(spec))
    if match:
        return match.group("path"), int(match.group("t"))
    return str(spec), None


def read_image(spec: str | Path, *, patient: str | None = None, what: str = "image",
               pixel_type: int | None = None, max_voxels: int | None = None) -> sitk.Image:
    """Read an image or mask, keeping spacing, origin and direction.

    Parameters
    ----------
    spec
        File path, DICOM folder, or ``DICOM_FOLDER#t=K``.
    patient
        Patient the image belongs to (for error messages).
    what
        Human name of the image (``"phase 'pre'"``, ``"tumour mask"``) for error messages.
    pixel_type
        Optional SimpleITK pixel type to cast to (e.g. ``sitk.sitkFloat32``).
    max_voxels
        Largest voxel count accepted, checked from the header before pixels are read;
        ``None``: :data:`~workbench.imaging.header.DEFAULT_MAX_VOXELS` (512³).

    Raises
    ------
    ImageError
        If the path does not exist, is not a regular file or folder, is not a 3-D scalar
        volume, claims more than ``max_voxels`` voxels, has unusable spacing, is truncated
        or cannot be decoded.
    """
    path, temporal = split_selector(str(spec))
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{what} not found", patient=patient, step="read", path=spec)
    kind = non_regular_kind(p, allow_dir=True)
    if kind is not None:
        raise ImageError(f"{what} is a {kind}, not a regular file or folder: reading it would "
                         "block or never end; give the path of an image file or DICOM folder",
                         patient=patient, step="read", path=spec)
    try:
        if p.is_dir():
            image = read_dicom_series(p, temporal_position=temporal, patient=patient,
                                      max_voxels=max_voxels)
        else:
            if temporal is not None:
                raise ImageError(f"temporal selector #t={temporal} only applies to DICOM folders",
                                 patient=patient, step="read", path=spec)
            check_image_file(p, max_voxels=max_voxels, patient=patient, what=what, spec=spec)
            image = sitk.ReadImage(str(p))
    except ImageError:
        raise
    except Exception as exc:  # SimpleITK raises RuntimeError with ITK text
        raise ImageError(f"cannot read {what}: corrupt or unsupported file "
                         f"({itk_error_detail(exc)})", patient=patient, step="read",
                         path=spec) from exc
    _check_volume(image, spec, patient, what)
    _reject_nonfinite(image, p, spec, patient, what)
    if pixel_type is not None:
        image = sitk.Cast(image, pixel_type)
    return image


def _check_volume(image: sitk.Image, spec: object, patient: str | None, what: str) -> None:
    """What the header promised, checked on the image read (a DICOM series, or a format whose
    header the checks of :mod:`.header` do not parse)."""
    problem = None
    if image.GetDimension() != 3:
        problem = (f"{what} is {image.GetDimension()}-D ({format_size(image.GetSize())}); "
                   "expected a 3-D volume")
    elif image.GetNumberOfComponentsPerPixel() != 1:
        problem = (f"{what} has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                   "(vector or colour image); expected one scalar value per voxel")
    elif spacing_problem(image.GetSpacing()) is not None:
        problem = f"{what}: {spacing_problem(image.GetSpacing())}"
    if problem is not None:
        raise ImageError(problem, patient=patient, step="read", path=spec)


def _reject_nonfinite(image: sitk.Image, path: Path, spec: object, patient: str | None,
                      what: str) -> None:
    """Raise on NaN/inf voxels. ITK's NIfTI reader silently turns NaN into 0, so float NIfTI
    files are also scanned on disk with nibabel."""
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64, sitk.sitkVectorFloat32,
                                  sitk.sitkVectorFloat64):
        if not (path.is_file() and path.name.endswith((".nii", ".nii.gz"))):
            return
    bad = 0
    if path.is_file() and path.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        nii = nib.load(str(path))
        if np.issubdtype(nii.get_data_dtype(), np.floating):
            bad = int((~np.isfinite(np.asanyarray(nii.dataobj))).sum())
    else:
        bad = int((~np.isfinite(sitk.GetArrayViewFromImage(image))).sum())
    if bad:
        raise ImageError(f"{what} has {bad} NaN/inf voxels; replace them (e.g. by 0 outside "
                         "the body) or re-export the series", patient=patient, step="read",
                         path=spec)


def write_image(image: sitk.Image, path: str | Path, *, compress: bool = True) -> Path:
    """Write an image atomically (temporary file, then rename), creating parent folders."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), compress)
    return Path(path)
