"""Reading one DICOM MR series from a folder, with DCE timepoint selection.

A folder holds one series. A DCE acquisition often stores all its timepoints *interleaved* in
that one series (I-SPY1 ``Dynamic-3dfgre`` series: pre, early and late volumes, all slices in
one folder). :func:`read_dicom_series` then needs ``temporal_position=K`` (the ``DIR#t=K``
selector of :mod:`workbench.imaging.io`) to return timepoint ``K``.

Which files belong to which timepoint, and their order along the slice normal, come from the
header scan of :mod:`workbench.imaging.dicom_scan` (rules in its docstring): timepoints by
Temporal Position Identifier, else by Trigger Time, Acquisition Time or Instance Number at
each slice position; slices by geometry, never by file name or instance number.

The volume keeps the scanner geometry: spacing ``(PixelSpacing[1], PixelSpacing[0], slice
step from positions)``, origin = position of the first slice along the normal, direction
columns = row cosine, column cosine, normal. Rescale Slope/Intercept are applied per slice
and voxels are returned as 32-bit floats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from workbench.errors import ImageError
from workbench.imaging.dicom_scan import SliceHeader, float_or_none, scan_series
from workbench.imaging.header import DEFAULT_MAX_VOXELS, format_size, spacing_problem

SPACING_REL_TOL = 0.1  # slice steps may differ from their median by at most 10 %


def read_dicom_series(folder: str | Path, temporal_position: int | None = None,
                      patient: str | None = None,
                      max_voxels: int | None = None) -> sitk.Image:
    """Read one volume of the DICOM series stored in ``folder``.

    Parameters
    ----------
    folder
        Folder holding exactly one series (other files that are not DICOM are ignored).
    temporal_position
        Timepoint to return when the series holds several (see module docstring); ``None``
        for a single-volume series.
    patient
        Patient the series belongs to, for error messages.
    max_voxels
        Largest volume accepted (rows x columns x slices, from the headers, before any pixel
        is decoded); ``None``: :data:`~workbench.imaging.header.DEFAULT_MAX_VOXELS`.

    Returns
    -------
    SimpleITK.Image
        3-D float32 volume with spacing, origin and direction from the headers.

    Raises
    ------
    ImageError
        Not a DICOM series, several series in the folder, a multi-timepoint series read
        without a selector (or with one it does not hold), inconsistent orientation,
        missing slices, uneven slice spacing, zero or negative pixel spacing, more voxels
        than ``max_voxels``, or undecodable pixel data.
    """
    folder = Path(folder)
    scan = scan_series(folder, patient)
    labels = scan.info.timepoints
    if temporal_position is None:
        if len(labels) > 1:
            raise ImageError(
                f"the DICOM series interleaves {len(labels)} timepoints {list(labels)}; "
                f"select one with '{folder}#t=K', K in {list(labels)}",
                patient=patient, step="read", path=folder)
        key = labels[0]
    else:
        key = int(temporal_position)
        if key not in scan.by_timepoint:
            raise ImageError(
                f"timepoint #t={key} not in the series; it holds {list(labels)} "
                f"(told apart by {scan.info.ordered_by})",
                patient=patient, step="read", path=folder)
    headers = scan.by_timepoint[key]
    projections = scan.projections[key]
    first = headers[0]
    _check_volume_header(headers, folder, patient, max_voxels)

    slices = []
    for h in headers:
        slices.append(_read_pixels(h, patient))
    shapes = {s.shape for s in slices}
    if len(shapes) != 1:
        raise ImageError(f"slices of timepoint {key} differ in size: {sorted(shapes)}",
                         patient=patient, step="read", path=folder)
    volume = np.stack(slices, axis=0).astype(np.float32, copy=False)

    row = np.array(first.orientation[:3])
    col = np.array(first.orientation[3:])
    normal = np.cross(row, col)
    dz = _slice_step(projections, first, folder, patient)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((first.pixel_spacing[1], first.pixel_spacing[0], dz))
    image.SetOrigin(tuple(float(v) for v in first.position))
    image.SetDirection(tuple(float(v) for v in np.column_stack([row, col, normal]).ravel()))
    return image


def _check_volume_header(headers: list[SliceHeader], folder: Path, patient: str | None,
                         max_voxels: int | None) -> None:
    """Refuse a volume too large or with unusable pixel spacing before decoding pixels (the
    slice step is checked by :func:`_slice_step`)."""
    cap = DEFAULT_MAX_VOXELS if max_voxels is None else int(max_voxels)
    rows, cols = headers[0].shape
    size = (cols, rows, len(headers))
    if cols * rows * len(headers) > cap:
        raise ImageError(f"the DICOM series claims {cols * rows * len(headers):,} voxels "
                         f"({format_size(size)}), more than the limit of {cap:,}; if it is "
                         "genuine, raise limits.max_voxels in the run config (max_voxels= in "
                         "the API)", patient=patient, step="read", path=folder)
    for h in headers:
        why = spacing_problem(h.pixel_spacing)
        if why is not None:
            raise ImageError(f"DICOM PixelSpacing: {why}", patient=patient, step="read",
                             path=h.path)


def _read_pixels(h: SliceHeader, patient: str | None) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(h.path)
        pixels = ds.pixel_array
    except Exception as exc:
        syntax = ""
        try:
            syntax = f" (transfer syntax {ds.file_meta.TransferSyntaxUID.name})"
        except Exception:
            pass
        raise ImageError(f"cannot decode DICOM pixel data{syntax}: {exc}; install a decoder "
                         "(pylibjpeg/gdcm) or convert the series to uncompressed",
                         patient=patient, step="read", path=h.path) from exc
    if pixels.ndim != 2:
        raise ImageError(f"expected one 2-D slice per file, got pixel array shape {pixels.shape} "
                         "(multi-frame or colour data is not supported)", patient=patient,
                         step="read", path=h.path)
    slope = float_or_none(ds.get("RescaleSlope"))
    intercept = float_or_none(ds.get("RescaleIntercept"))
    out = pixels.astype(np.float32)
    if slope is not None and slope != 1.0:
        out *= np.float32(slope)
    if intercept:
        out += np.float32(intercept)
    return out


def _slice_step(projections: list[float], first: SliceHeader, folder: Path,
                patient: str | None) -> float:
    if len(projections) < 2:
        return float(first.thickness or 1.0)
    steps = np.diff(np.asarray(projections))
    step = float(np.median(steps))
    if step <= 0:
        raise ImageError("slices overlap: two files share one position", patient=patient,
                         step="read", path=folder)
    if np.abs(steps - step).max() > SPACING_REL_TOL * step:
        raise ImageError(
            f"uneven slice spacing (steps from {steps.min():.3f} to {steps.max():.3f} mm, "
            f"median {step:.3f} mm): slices are missing or the series mixes stacks",
            patient=patient, step="read", path=folder)
    return step
