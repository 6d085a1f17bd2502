"""Reading images and masks with their geometry.

A path in a cohort table is one of:

* a NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``,
  ``.mhd``) file;
* a folder holding one DICOM series;
* a folder holding a DCE series whose timepoints are interleaved, with a temporal selector
  ``FOLDER#t=K`` picking timepoint ``K`` (1-based, as DICOM Temporal Position Identifier
  numbers them; see :mod:`workbench.imaging.dicom`).

Every reader raises :class:`~workbench.errors.ImageError` naming the patient and the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from workbench.errors import ImageError
from workbench.files import atomic_path
from workbench.imaging.dicom import read_dicom_series

_SELECTOR = re.compile(r"^(?P<path>.*)#t=(?P<t>\d+)$")
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def split_selector(spec: str) -> tuple[str, int | None]:
    """Split ``"DIR#t=K"`` into ``("DIR", K)``; plain paths give ``(path, None)``."""
    match = _SELECTOR.match(str(spec))
    if match:
        return match.group("path"), int(match.group("t"))
    return str(spec), None


def read_image(spec: str | Path, *, patient: str | None = None, what: str = "image",
               pixel_type: int | None = None) -> sitk.Image:
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

    Raises
    ------
    ImageError
        If the path does not exist or cannot be decoded.
    """
    path, temporal = split_selector(str(spec))
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{what} not found", patient=patient, step="read", path=spec)
    try:
        if p.is_dir():
            image = read_dicom_series(p, temporal_position=temporal, patient=patient)
        else:
            if temporal is not None:
                raise ImageError(f"temporal selector #t={temporal} only applies to DICOM folders",
                                 patient=patient, step="read", path=spec)
            image = sitk.ReadImage(str(p))
    except ImageError:
        raise
    except Exception as exc:  # SimpleITK raises RuntimeError with ITK text
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "rror" in line), first[0] if first else "")
        raise ImageError(f"cannot read {what}: corrupt or unsupported file ({detail.strip()[:200]})",
                         patient=patient, step="read", path=spec) from exc
    _reject_nonfinite(image, p, spec, patient, what)
    if pixel_type is not None:
        image = sitk.Cast(image, pixel_type)
    return image


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
