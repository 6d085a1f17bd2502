"""The header scan of one DICOM MR series folder: its files, slice positions and timepoints.

Only headers are read (pixels are not): :func:`describe_dicom_series` says what a folder
holds, and :func:`scan_series` also returns the files of each timepoint, sorted along the
slice normal, for :func:`workbench.imaging.dicom.read_dicom_series` to read.

How timepoints are told apart, in order of preference:

1. Temporal Position Identifier (0020,0100): ``K`` is its value (1-based in DICOM).
2. Otherwise, at every slice position, the files are ranked by Trigger Time (0018,1060), else
   Acquisition Time (0008,0032), else Instance Number; the ``k``-th file of each position
   belongs to timepoint ``K = k`` (1-based). This works whether the time tag is constant
   within a volume or varies slice by slice.

Slices are ordered by geometry, never by file name or instance number: Image Position
(Patient) projected on the slice normal (row cosine x column cosine of Image Orientation
(Patient)).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections import defaultdict
from pathlib import Path

import numpy as np

from workbench.errors import ImageError

_HEADER_TAGS = [
    "SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "PatientID", "StudyDate",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
    "SpacingBetweenSlices", "Rows", "Columns", "TemporalPositionIdentifier",
    "NumberOfTemporalPositions", "TriggerTime", "AcquisitionTime", "InstanceNumber",
    "RescaleSlope", "RescaleIntercept",
]
POSITION_DECIMALS = 2  # slice positions equal to 0.01 mm are the same slice
ORIENTATION_TOL = 1e-4


@dataclasses.dataclass(frozen=True)
class SliceHeader:
    """The header fields of one slice file that placing and grouping it needs."""

    path: Path
    series_uid: str
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    shape: tuple[int, int]
    tpi: int | None
    trigger_ms: float | None
    acquisition_s: float | None
    instance: int | None
    thickness: float | None


@dataclasses.dataclass(frozen=True)
class DicomSeriesInfo:
    """What a DICOM series folder holds, read from headers only.

    Attributes
    ----------
    folder
        The series folder.
    description
        Series Description (0008,103E), ``""`` when absent.
    patient_id, study_date
        Patient ID and Study Date (``YYYYMMDD``) of the series, ``""`` when absent.
    n_files
        DICOM image files in the folder.
    n_slices
        Distinct slice positions.
    timepoints
        Labels accepted by ``temporal_position`` (``DIR#t=K``), in acquisition order.
    times_s
        Time of each timepoint in seconds after the first one (``None`` when the headers
        carry no trigger or acquisition time).
    ordered_by
        Tag used to tell timepoints apart (``"TemporalPositionIdentifier"``,
        ``"TriggerTime"``, ``"AcquisitionTime"``, ``"InstanceNumber"``, or ``"single"``).
    """

    folder: str
    description: str
    patient_id: str
    study_date: str
    n_files: int
    n_slices: int
    timepoints: tuple[int, ...]
    times_s: tuple[float | None, ...]
    ordered_by: str


@dataclasses.dataclass
class SeriesScan:
    """A scanned series: its description and the files of each timepoint."""

    info: DicomSeriesInfo
    by_timepoint: dict[int, list[SliceHeader]]  # files of each timepoint sorted along the normal
    projections: dict[int, list[float]]


def list_temporal_positions(folder: str | Path, *, patient: str | None = None) -> list[int]:
    """Timepoint labels of the series in ``folder`` (``[1]`` for a single volume).

    Raises
    ------
    ImageError
        If the folder holds no readable DICOM series, or several series.
    """
    return list(describe_dicom_series(folder, patient=patient).timepoints)


def describe_dicom_series(folder: str | Path, *, patient: str | None = None) -> DicomSeriesInfo:
    """Describe the series in ``folder`` from its headers (pixels are not read)."""
    return scan_series(Path(folder), patient).info


def scan_series(folder: Path, patient: str | None) -> SeriesScan:
    """Read and check the headers of the series in ``folder``; see the module docstring."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not folder.is_dir():
        raise ImageError("DICOM folder not found", patient=patient, step="read", path=folder)
    headers: list[SliceHeader] = []
    meta: dict[str, str] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        except InvalidDicomError:
            continue  # not a DICOM file (README, checksum list...)
        except Exception as exc:
            raise ImageError(f"cannot read DICOM header: {exc}", patient=patient, step="read",
                             path=path) from exc
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            if "PixelSpacing" not in ds:
                continue  # a non-image object (report, presentation state)
            raise ImageError("DICOM image lacks ImagePositionPatient/ImageOrientationPatient, "
                             "so slices cannot be placed", patient=patient, step="read",
                             path=path)
        headers.append(_header(ds, path, patient))
        if not meta:
            meta = {"description": str(ds.get("SeriesDescription", "") or ""),
                    "patient_id": str(ds.get("PatientID", "") or ""),
                    "study_date": str(ds.get("StudyDate", "") or "")}
    if not headers:
        raise ImageError("folder holds no DICOM image files", patient=patient, step="read",
                         path=folder)
    uids = sorted({h.series_uid for h in headers})
    if len(uids) > 1:
        raise ImageError(f"folder holds {len(uids)} DICOM series (SeriesInstanceUID {uids}); "
                         "put each series in its own folder", patient=patient, step="read",
                         path=folder)
    ref = np.array(headers[0].orientation)
    for h in headers:
        if np.abs(np.array(h.orientation) - ref).max() > ORIENTATION_TOL:
            raise ImageError("slices have different ImageOrientationPatient; the folder mixes "
                             "acquisitions", patient=patient, step="read", path=h.path)
    normal = np.cross(ref[:3], ref[3:])
    proj = {h.path: float(np.dot(np.array(h.position), normal)) for h in headers}

    by_position: dict[float, list[SliceHeader]] = defaultdict(list)
    for h in headers:
        by_position[round(proj[h.path], POSITION_DECIMALS)].append(h)
    counts = {len(v) for v in by_position.values()}
    if len(counts) != 1:
        raise ImageError(
            f"slice positions hold unequal numbers of files ({min(counts)} to {max(counts)}, "
            f"{len(headers)} files): the series is incomplete or mixes acquisitions",
            patient=patient, step="read", path=folder)
    n_t = counts.pop()
    groups, ordered_by = _split_timepoints(by_position, n_t)

    by_timepoint: dict[int, list[SliceHeader]] = {}
    projections: dict[int, list[float]] = {}
    for label, members in groups.items():
        members = sorted(members, key=lambda h: proj[h.path])
        by_timepoint[label] = members
        projections[label] = [proj[h.path] for h in members]
    labels = tuple(sorted(by_timepoint))
    info = DicomSeriesInfo(
        folder=str(folder), description=meta["description"], patient_id=meta["patient_id"],
        study_date=meta["study_date"], n_files=len(headers), n_slices=len(by_position),
        timepoints=labels, times_s=_relative_times(by_timepoint, labels), ordered_by=ordered_by)
    return SeriesScan(info=info, by_timepoint=by_timepoint, projections=projections)


def _header(ds, path: Path, patient: str | None) -> SliceHeader:
    try:
        position = tuple(float(v) for v in ds.ImagePositionPatient)
        orientation = tuple(float(v) for v in ds.ImageOrientationPatient)
        spacing = tuple(float(v) for v in ds.get("PixelSpacing", [1.0, 1.0]))
        if len(position) != 3 or len(orientation) != 6 or len(spacing) != 2:
            raise ValueError("wrong number of values")
    except (TypeError, ValueError) as exc:
        raise ImageError(f"unreadable geometry tags ({exc})", patient=patient, step="read",
                         path=path) from exc
    return SliceHeader(
        path=path,
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        position=position,
        orientation=orientation,
        pixel_spacing=spacing,
        shape=(int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)),
        tpi=_int_or_none(ds.get("TemporalPositionIdentifier")),
        trigger_ms=float_or_none(ds.get("TriggerTime")),
        acquisition_s=_dicom_time_seconds(ds.get("AcquisitionTime")),
        instance=_int_or_none(ds.get("InstanceNumber")),
        thickness=float_or_none(ds.get("SpacingBetweenSlices")) or float_or_none(
            ds.get("SliceThickness")),
    )


def _split_timepoints(by_position: dict[float, list[SliceHeader]],
                      n_t: int) -> tuple[dict[int, list[SliceHeader]], str]:
    """Assign each file a timepoint label; see the module docstring for the rules."""
    members = [h for group in by_position.values() for h in group]
    if n_t == 1:
        tpis = {h.tpi for h in members}
        label = tpis.pop() if len(tpis) == 1 and None not in tpis else 1
        return {label: members}, "single"
    tpi_sets = {tuple(sorted(h.tpi for h in g)) if all(h.tpi is not None for h in g) else None
                for g in by_position.values()}
    if len(tpi_sets) == 1:
        only = tpi_sets.pop()
        if only is not None and len(set(only)) == n_t:
            groups: dict[int, list[SliceHeader]] = defaultdict(list)
            for h in members:
                groups[int(h.tpi)].append(h)
            return dict(groups), "TemporalPositionIdentifier"
    for name, attr in (("TriggerTime", "trigger_ms"), ("AcquisitionTime", "acquisition_s")):
        if all(getattr(h, attr) is not None for h in members) and all(
                len({getattr(h, attr) for h in g}) == n_t for g in by_position.values()):
            return _rank_groups(by_position, lambda h, a=attr: (getattr(h, a), h.instance or 0,
                                                                h.path.name)), name
    return _rank_groups(by_position, lambda h: (h.instance or 0, h.path.name)), "InstanceNumber"


def _rank_groups(by_position, key) -> dict[int, list[SliceHeader]]:
    groups: dict[int, list[SliceHeader]] = defaultdict(list)
    for group in by_position.values():
        for rank, h in enumerate(sorted(group, key=key), start=1):
            groups[rank].append(h)
    return dict(groups)


def _relative_times(by_timepoint: dict[int, list[SliceHeader]],
                    labels: tuple[int, ...]) -> tuple[float | None, ...]:
    for attr, scale in (("trigger_ms", 1e-3), ("acquisition_s", 1.0)):
        values = []
        for label in labels:
            times = [getattr(h, attr) for h in by_timepoint[label]]
            values.append(None if any(t is None for t in times) else float(np.median(times)))
        if all(v is not None for v in values) and (
                len(labels) == 1 or len(set(values)) == len(values)):
            return tuple(round((v - values[0]) * scale, 3) for v in values)
    return tuple(None for _ in labels)


def _int_or_none(value) -> int | None:
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def float_or_none(value) -> float | None:
    """A DICOM number as float; ``None`` when absent or unreadable."""
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _dicom_time_seconds(value) -> float | None:
    """``HHMMSS.FFFFFF`` (DICOM TM) as seconds after midnight."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        whole, _, frac = text.partition(".")
        whole = whole.ljust(6, "0")
        t = _dt.time(int(whole[0:2]), int(whole[2:4]), int(whole[4:6]))
    except ValueError:
        return None
    return t.hour * 3600 + t.minute * 60 + t.second + (float(f"0.{frac}") if frac else 0.0)
