"""NIfTI header sanity: what a readable header says that would make shape features wrong.

:func:`nifti_header_warnings` reads the raw NIfTI-1 or NIfTI-2 header (:func:`read_nifti_header`:
at most the first 540 bytes; a ``.nii.gz`` is decompressed only that far, never the pixels)
and returns one message per finding. Nothing here is an error: the image reads, but its
geometry is probably not the scanner's.

* **Empty header**: ``qform_code`` and ``sform_code`` both 0 and ``pixdim`` 1 × 1 × 1. ITK then
  gives spacing 1 mm, origin 0 and identity direction, which describe the array, not the
  patient: volumes and shape features come out in voxels.
* **qform and sform disagree** (both codes > 0) in spacing or origin (by more than
  1e-3 mm) or direction (by more than 1e-4). Tools pick different ones (nibabel takes the
  sform, ITK usually the qform: see :data:`ITK_XFORM_RULE`), so an image and a mask made by
  different tools may not overlay; the message gives both values and what SimpleITK used.
* **Slice axis first**: the first array axis (i) has the largest spacing (at least 1.5 times
  the other two) or, with the largest spacing, at most half as many voxels as each other axis,
  and the header does not point it superior-inferior. Exports that stored an axial
  acquisition as (slices, rows, cols) look like this: geometry and resampling then place the
  slices side by side in-plane, and the volume lies rotated in space.

Files that are not NIfTI (NRRD, MetaImage, DICOM) give no message.
"""

from __future__ import annotations

import dataclasses
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from workbench.imaging.header import format_numbers

__all__ = ["ITK_XFORM_RULE", "NiftiHeader", "nifti_header_warnings", "read_nifti_header"]

#: Which transform ITK (and so SimpleITK) takes for origin and direction when both codes are
#: > 0, as read in InsightSoftwareConsortium/ITK, Modules/IO/NIFTI/src/itkNiftiImageIO.cxx,
#: ``NiftiImageIO::SetImageIOOrientationFromNIfTI`` (ITK 5.x): the sform when it agrees with
#: the qform element by element (1e-5), else only if it is orthonormal (no shear) and either
#: ``qform_code`` is 0, or ``sform_code`` is 1 (NIFTI_XFORM_SCANNER_ANAT), or an SVD comparison
#: finds the two very similar (1e-4); otherwise the qform. Spacing is always ``pixdim``
#: (``nim->dx``...), which the qform shares, whichever transform is used (ITK only warns "has
#: unexpected scales in sform"). Both codes 0: origin 0, identity direction. Checked with
#: SimpleITK 2.5 (ITK 5.4) in tests/imaging/test_nifti_header_sanity.py; the messages say what
#: SimpleITK actually read, not what this rule predicts.
ITK_XFORM_RULE = ("ITK takes the sform only when it is orthonormal and sform_code is 1 "
                  "(scanner) or it matches the qform, else the qform")

_READ = 540  # bytes: a NIfTI-2 header; a NIfTI-1 header is the first 348
_TOL_MM = 1e-3
_TOL_DIRECTION = 1e-4
_SLICE_RATIO = 1.5  # slice spacing / largest in-plane spacing
_FEW_SLICES = 0.5  # slices / smallest in-plane voxel count
_UNIT_SCALE = {1: 1000.0, 2: 1.0, 3: 0.001}  # xyzt_units & 7: metre, mm, micron (else mm, as ITK)
_LPS_AXES = ("left-right", "anterior-posterior", "superior-inferior")
_ACQUISITION = ("sagittal", "coronal", "axial")  # whose slices are stacked along each LPS axis
# field: (offset, struct code, count) in the NIfTI-1 (348 bytes) and NIfTI-2 (540) headers
_LAYOUTS = {
    1: {"dim": (40, "h", 8), "pixdim": (76, "f", 8), "units": (123, "B", 1),
        "qform_code": (252, "h", 1), "sform_code": (254, "h", 1), "quatern": (256, "f", 6),
        "srow": (280, "f", 12)},
    2: {"dim": (16, "q", 8), "pixdim": (104, "d", 8), "units": (500, "i", 1),
        "qform_code": (344, "i", 1), "sform_code": (348, "i", 1), "quatern": (352, "d", 6),
        "srow": (400, "d", 12)},
}


@dataclasses.dataclass(frozen=True, eq=False)
class NiftiHeader:
    """The geometry fields of a NIfTI header, lengths in mm (``xyzt_units`` applied).

    ``qform`` is the NIfTI "method 2" matrix from the quaternion, ``pixdim`` and ``qfac``
    (as nifti1_io computes it, whatever ``qform_code``); ``sform`` the ``srow_*`` rows. Both
    are 4 × 4, RAS+ world coordinates.
    """

    version: int
    shape: tuple[int, ...]
    pixdim: tuple[float, float, float]
    qform_code: int
    sform_code: int
    qform: np.ndarray
    sform: np.ndarray


def read_nifti_header(path: str | Path) -> NiftiHeader | None:
    """The header of a ``.nii`` / ``.nii.gz`` file (little- or big-endian NIfTI-1 or -2),
    reading at most its first 540 (decompressed) bytes; ``None`` if it is not one."""
    p = Path(path)
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    try:
        with opener(p, "rb") as fh:
            raw = fh.read(_READ)
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return None
    return _parse(raw)


def _parse(raw: bytes) -> NiftiHeader | None:
    if len(raw) < 348:
        return None
    for order in "<>":
        size = struct.unpack_from(f"{order}i", raw)[0]
        if size == 348 and raw[344:347] in (b"n+1", b"ni1"):
            version = 1
        elif size == 540 and len(raw) >= 540 and raw[4:7] in (b"n+2", b"ni2"):
            version = 2
        else:
            continue
        f = {name: struct.unpack_from(f"{order}{n}{code}", raw, offset)
             for name, (offset, code, n) in _LAYOUTS[version].items()}
        ndim = int(f["dim"][0])
        if not 1 <= ndim <= 7:
            return None
        scale = _UNIT_SCALE.get(int(f["units"][0]) & 7, 1.0)
        pixdim = np.array(f["pixdim"][1:4], float) * scale
        qform = _quatern_to_affine(np.array(f["quatern"], float) * ([1] * 3 + [scale] * 3),
                                   pixdim, float(f["pixdim"][0]))
        sform = np.vstack([np.array(f["srow"], float).reshape(3, 4) * scale, [0, 0, 0, 1]])
        return NiftiHeader(version, tuple(int(n) for n in f["dim"][1:ndim + 1]),
                           tuple(float(s) for s in pixdim), int(f["qform_code"][0]),
                           int(f["sform_code"][0]), qform, sform)
    return None


def _quatern_to_affine(quatern: np.ndarray, pixdim: np.ndarray, qfac: float) -> np.ndarray:
    """nifti1_io's ``nifti_quatern_to_mat44``: rotation from (b, c, d), columns scaled by
    the spacing (a non-positive one counts as 1), the third negated when ``qfac < 0``."""
    b, c, d, *offset = quatern
    a = 1.0 - (b * b + c * c + d * d)
    if a < 1e-7:  # b, c, d not a unit quaternion's: normalise, a 180° rotation
        norm = float(np.sqrt(b * b + c * c + d * d))
        a, b, c, d = 0.0, b / norm, c / norm, d / norm
    else:
        a = float(np.sqrt(a))
    rotation = np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]])
    steps = np.where(pixdim > 0, pixdim, 1.0) * [1.0, 1.0, -1.0 if qfac < 0 else 1.0]
    affine = np.eye(4)
    affine[:3, :3] = rotation * steps
    affine[:3, 3] = offset
    return affine


def _lps(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spacing, origin and direction (columns: the axes) of a RAS+ affine, in ITK's LPS."""
    flip = np.array([-1.0, -1.0, 1.0])
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = flip[:, None] * affine[:3, :3] / np.where(spacing > 0, spacing, 1.0)
    return spacing, flip * affine[:3, 3] + 0.0, direction + 0.0  # + 0.0: no -0.0 in messages


def nifti_header_warnings(path: str | Path, *, what: str = "image",
                          image: sitk.Image | None = None) -> list[str]:
    """What the NIfTI header of ``path`` says that is probably not the scanner's geometry
    (see the module docstring); ``[]`` for a sane header or a file that is not NIfTI.

    Parameters
    ----------
    path
        The image file; only ``.nii`` and ``.nii.gz`` files are checked.
    what
        Human name of the image (``"phase 'pre'"``), the start of every message.
    image
        What SimpleITK read from ``path`` (its origin and direction are what the messages
        say SimpleITK used); ``None``: read from the header with SimpleITK.
    """
    p = Path(path)
    if not (p.name.lower().endswith((".nii", ".nii.gz")) and p.is_file()):
        return []
    header = read_nifti_header(p)
    if header is None or len(header.shape) < 3:
        return []
    if image is None:
        image = sitk.ImageFileReader()
        image.SetFileName(str(p))
        try:
            image.ReadImageInformation()
        except RuntimeError:  # unreadable: reading it is where that is reported
            return []
    origin = np.array(image.GetOrigin(), float)[:3]
    direction = np.array(image.GetDirection(), float).reshape(image.GetDimension(), -1)[:3, :3]
    messages = []
    if header.qform_code <= 0 and header.sform_code <= 0 and header.pixdim == (1.0, 1.0, 1.0):
        messages.append(
            f"{what}: spacing 1 x 1 x 1 mm and identity orientation come from an empty header "
            "(qform_code 0, sform_code 0), not from the scanner: shape features would be in "
            "voxels, not mm; fix the export (e.g. dcm2niix)")
    if header.qform_code > 0 and header.sform_code > 0:
        messages += _disagreement(header, origin, direction, what)
    messages += _slice_axis_first(header, direction, what)
    return messages


def _disagreement(header: NiftiHeader, origin: np.ndarray, direction: np.ndarray,
                  what: str) -> list[str]:
    q, s = _lps(header.qform), _lps(header.sform)
    details = []
    for name, i, tol, unit in (("spacing", 0, _TOL_MM, " mm"), ("origin", 1, _TOL_MM, " mm"),
                               ("direction", 2, _TOL_DIRECTION, "")):
        if np.abs(q[i] - s[i]).max() > tol:
            qv, sv = (v[i].ravel() for v in (q, s))  # direction row by row, as GetDirection()
            details.append((name, f"{name} qform {format_numbers(qv)}{unit}, sform "
                                  f"{format_numbers(sv)}{unit}"))
    if not details:
        return []
    names = [name for name, _ in details]
    used = []
    if "origin" in names or "direction" in names:
        far = [np.abs(origin - v[1]).max() / _TOL_MM + np.abs(direction - v[2]).max()
               / _TOL_DIRECTION for v in (q, s)]
        which = ("qform", "sform")[int(far[1] < far[0])]
        used.append(f"SimpleITK used the {which} for origin and direction" if min(far) <= 10
                    else f"SimpleITK used neither for origin and direction (origin "
                         f"{format_numbers(origin)} mm)")
    if "spacing" in names:
        used.append("SimpleITK takes the spacing from pixdim, as the qform does")
    return [f"{what}: the NIfTI qform and sform disagree in {' and '.join(names)} "
            f"({'; '.join(text for _, text in details)}; LPS, as SimpleITK reports them); "
            f"{'; '.join(used)} (qform_code {header.qform_code}, sform_code "
            f"{header.sform_code}; {ITK_XFORM_RULE}; nibabel takes the sform), so tools "
            "disagree on the image's geometry; fix the export so that both agree (e.g. dcm2niix)"]


def _slice_axis_first(header: NiftiHeader, direction: np.ndarray, what: str) -> list[str]:
    sizes, spacing = header.shape[:3], np.where(np.array(header.pixdim) > 0, header.pixdim, 1.0)
    in_plane = max(spacing[1], spacing[2])
    thick = spacing[0] >= _SLICE_RATIO * in_plane
    few = spacing[0] > in_plane and sizes[0] <= _FEW_SLICES * min(sizes[1], sizes[2])
    points = int(np.argmax(np.abs(direction[:, 0])))  # LPS axis that array axis i follows most
    if not (thick or few) or points == 2:  # slices stacked superior-inferior: an axial grid
        return []
    return [f"{what}: the slice axis appears first: array axis i has {sizes[0]} voxels "
            f"{_mm(spacing[0])} mm apart, axes j, k {sizes[1]} x {sizes[2]} voxels of "
            f"{_mm(spacing[1])} x {_mm(spacing[2])} mm, and the header points i "
            f"{_LPS_AXES[points]}; an export that stored an axial acquisition as (slices, rows, "
            "cols) looks like this, and geometry and resampling then treat the slice axis as "
            "in-plane (the volume lies rotated in space); re-export with the slices on the "
            f"last axis (e.g. dcm2niix), unless this is a {_ACQUISITION[points]} acquisition "
            "and the header's orientation is right"]


def _mm(value: float) -> str:
    return f"{round(float(value), 4):g}"
