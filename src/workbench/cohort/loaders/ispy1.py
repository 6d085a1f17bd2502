"""I-SPY1 (ACRIN 6657 / CALGB 150007) from its TCIA releases: images, masks and workbook.

The clinical workbook (patients, pCR, coded clinical columns) is read by
:mod:`workbench.cohort.loaders.ispy1_workbook`; this module finds each patient's DCE series
and STV mask and joins them to it.

Images: TCIA/NBIA download (``images="dicom"``, default)
-------------------------------------------------------
``<root>/ISPY1_<SUBJECTID>/<study>/<series>/*.dcm`` (``root`` may also be the folder *above*
the ``ISPY1`` collection folder). Study folders are named ``MM-DD-YYYY-<accession>-<desc>``
(dates shifted by TCIA); the pre-treatment visit (T1) is the **earliest study date** (from the
folder name, else the Study Date header). Series folders are named
``<SeriesNumber>.000000-<SeriesDescription>-<5 digits>``, e.g. ``3.000000-Dynamic-3dfgre-55919``.
The DCE series is the original acquisition whose description names a dynamic T1 sequence
(``dynamic``, ``dce``, ``3dfgre``, ``spgr``, ``fl3d``, ``vibrant``, ``dyn``...). Derived
objects the UCSF core lab added to each study are skipped: SER and PE maps
(``Dynamic-3dfgre SER``, ``... PE1``), segmentations and VOIs, numbered ``Sref*10000 + 1000``
and up (so 10000 and above; Philips originals may exceed 1000), and localizers; among several
candidates the one with most files wins. If no description names a DCE sequence, a series
whose header declares several temporal positions is taken. Folders named by UID are
described from their first header instead.

The DCE series stores its timepoints interleaved; phases are temporal selectors on it
(:mod:`workbench.imaging.dicom`): ``image_pre = DIR#t=<1st>``, ``image_early = DIR#t=<2nd>``,
``image_late = DIR#t=<3rd>`` for the usual 3 timepoints (ACRIN 6657: pre, ~2'30" and ~7'30"
post-injection). With ``read_headers=True`` (default) the headers are read to check this:
with more than 3 timepoints, early/late are those nearest 150 s / 450 s after the first when
the headers carry times, else the 2nd and the **last**, with a warning; 2 timepoints leave
``late`` empty; 1 timepoint is an error (that site stored phases in separate series: build a
manifest by hand).

Masks: ISPY1-Tumor-SEG-Radiomics (Chitalia et al. 2022, TCIA)
-------------------------------------------------------------
Expert structural tumour volume (STV) masks ``masks_stv_manual/ISPY1_<SUBJECTID>.nii.gz``.
``masks=`` names that folder; by default the first of ``<root>/masks``,
``<root>/masks_stv_manual``, ``<root>/NIfTI-Files/masks_stv_manual`` and
``<root>/ISPY1-Tumor-SEG-Radiomics/NIfTI-Files/masks_stv_manual`` (also tried one level up).
Those masks are drawn on that collection's **1 mm resampled** images, not on the native DICOM
grid: with ``images="dicom"`` the table marks them ``mask_space="physical"`` and QC and
preprocessing resample each mask onto its DICOM image in physical space (nearest neighbour),
checking that the tumour stays inside the image
(:func:`workbench.imaging.geometry.align_mask`). ``images="nifti"`` uses that collection's own images instead,
which share the masks' grid: ``images_bias-corrected_resampled_zscored_nifti/ISPY1_<id>/
ISPY1_<id>_DCE_000{0,1,2}_*.nii[.gz]`` = pre, early (1st post-contrast), late (2nd post).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.cohort.coding import check_coding
from workbench.cohort.loaders.ispy1_workbook import (
    CLINICAL_FILENAME,
    PATIENT_PREFIX,
    read_ispy1_clinical,
)
from workbench.cohort.table import (
    DEFAULT_PHASES,
    MASK_COLUMN,
    CohortTable,
    Problem,
    image_column,
    validate_cohort,
)
from workbench.errors import CohortError, ConfigError, WorkbenchError
from workbench.imaging.dicom_scan import describe_dicom_series

log = logging.getLogger(__name__)

KNOWN_PHASES = ("pre", "early", "late")
MASK_DIRS = ("masks", "masks_stv_manual", "NIfTI-Files/masks_stv_manual",
             "ISPY1-Tumor-SEG-Radiomics/NIfTI-Files/masks_stv_manual")
NIFTI_IMAGE_DIRS = ("images_bias-corrected_resampled_zscored_nifti",
                    "NIfTI-Files/images_bias-corrected_resampled_zscored_nifti",
                    "ISPY1-Tumor-SEG-Radiomics/NIfTI-Files/"
                    "images_bias-corrected_resampled_zscored_nifti")
EARLY_S, LATE_S = 150.0, 450.0  # ACRIN 6657 nominal early / late post-contrast times
DERIVED_SERIES_NUMBER = 10000  # core-lab objects: Sref*10000 + 1000, + 1001, + 2000...
_DCE_WORDS = re.compile(r"dyn|dce|3dfgre|spgr|fl3d|vibrant|3dsag", re.I)
_DERIVED_WORDS = re.compile(r"\b(ser|pe\d*|seg\w*|voi|mask|thresh\w*|loc\w*)\b", re.I)
_SERIES_NAME = re.compile(r"^(?P<num>\d+)(?:\.\d+)?-(?P<desc>.*)-\d+$")
_STUDY_DATE = re.compile(r"^(?P<m>\d{2})-(?P<d>\d{2})-(?P<y>\d{4})")


def load_ispy1(root: str | Path, *, clinical: str | Path | None = None,
               masks: str | Path | None = None, phases: Sequence[str] | None = DEFAULT_PHASES,
               images: str = "dicom", read_headers: bool = True,
               coding: Mapping[str, Mapping[str, str]] | None = None) -> CohortTable:
    """Load an I-SPY1 download: clinical workbook, DCE images and STV masks.

    Parameters
    ----------
    root
        Download folder holding ``ISPY1_<id>/`` patient folders (or the ``ISPY1`` collection
        folder); with ``images="nifti"``, the folder holding the ISPY1-Tumor-SEG-Radiomics
        ``images_bias-corrected_resampled_zscored_nifti`` folder (or ``NIfTI-Files``).
    clinical
        Clinical workbook; default ``<root>/`` or ``<root>/../`` + :data:`CLINICAL_FILENAME`.
    masks
        Folder of STV masks ``ISPY1_<id>.nii.gz``; default: see module docstring.
    phases
        Any of ``"pre"``, ``"early"``, ``"late"``, in acquisition order (``None``: all three).
    images
        ``"dicom"`` (TCIA DICOM download) or ``"nifti"`` (ISPY1-Tumor-SEG-Radiomics images).
    read_headers
        Read the DCE headers to map timepoints to phases (see module docstring); ``False``
        takes ``#t=1,2,3`` without looking.
    coding
        The run config's ``cohort.coding``, applied to the workbook's codes and labels
        (:mod:`workbench.cohort.loaders.ispy1_workbook`).

    Raises
    ------
    CohortError
        If ``coding`` is invalid, or ``root`` or the clinical workbook is missing or malformed.
    ConfigError
        For an unknown phase or ``images`` value.
    """
    check_coding(coding)
    root = Path(root)
    phases = tuple(phases or DEFAULT_PHASES)
    bad = [p for p in phases if p not in KNOWN_PHASES]
    if bad:
        raise ConfigError(f"phases must be among {list(KNOWN_PHASES)}; got {bad}", step="load")
    if images not in ("dicom", "nifti"):
        raise ConfigError(f"images must be 'dicom' or 'nifti'; got {images!r}", step="load")
    if not root.is_dir():
        raise CohortError("I-SPY1 root folder not found", step="load", path=root)
    xlsx = Path(clinical) if clinical is not None else _find_clinical(root)
    df, problems = read_ispy1_clinical(xlsx, coding=coding)

    mask_dir = Path(masks) if masks is not None else _first_dir(root, MASK_DIRS)
    if mask_dir is None or not mask_dir.is_dir():
        where = str(mask_dir) if mask_dir is not None else f"{root} ({', '.join(MASK_DIRS)})"
        problems.append(Problem(None, "load", f"STV mask folder not found in {where}; no "
                                "masks: pass masks= the masks_stv_manual folder", None, "warning"))
        mask_dir = None
    if images == "dicom":
        folders = _patient_folders(_collection_dir(root))
    else:
        nifti_dir = _first_dir(root, NIFTI_IMAGE_DIRS)
        folders = {} if nifti_dir is None else _patient_folders(nifti_dir)
        if nifti_dir is None:
            problems.append(Problem(None, "load", "no images_bias-corrected_resampled_zscored"
                                    f"_nifti folder under {root} or its parent", None, "warning"))
    if not folders:
        problems.append(Problem(None, "load", f"no {PATIENT_PREFIX}<id> patient folders found "
                                f"under {root}", str(root), "warning"))

    known = set(df["patient_id"].dropna())
    for pid, folder in sorted(folders.items()):
        if pid not in known:
            problems.append(Problem(pid, "load", "image folder has no row in the clinical "
                                    "workbook; patient not loaded: add the patient to the "
                                    "workbook or remove the folder", str(folder)))
    paths: dict[str, dict[str, str]] = {}
    for pid in df["patient_id"].dropna():
        if pid not in folders:
            problems.append(Problem(pid, "load", "no image folder for this clinical row; "
                                    "clinical data only", str(root / pid), "warning"))
            continue
        try:
            if images == "dicom":
                found, notes = _dicom_phases(folders[pid], pid, phases, read_headers)
            else:
                found, notes = _nifti_phases(folders[pid], pid, phases), []
        except WorkbenchError as exc:
            problems.append(Problem(pid, exc.step or "load", exc.message,
                                    exc.path or str(folders[pid])))
            continue
        problems += notes
        paths[pid] = found
    for phase in phases:
        df[image_column(phase)] = df["patient_id"].map(
            lambda p, ph=phase: paths.get(p, {}).get(ph))
    df[MASK_COLUMN] = df["patient_id"].map(lambda p: _mask_path(mask_dir, p))
    if mask_dir is not None:
        for pid in df.loc[df[MASK_COLUMN].isna() & df["patient_id"].isin(paths), "patient_id"]:
            problems.append(Problem(pid, "load", "no STV mask for this patient",
                                    str(mask_dir / f"{pid}.nii.gz"), "warning"))
    # STV masks of ISPY1-Tumor-SEG-Radiomics lie on that collection's 1 mm resampled grid,
    # not on the DICOM grid: QC and preprocessing resample them onto the image in physical
    # space (nearest neighbour) and check that the tumour stays inside the image.
    df["mask_space"] = "physical" if images == "dicom" else "grid"
    table = validate_cohort(df, name="ispy1", phases=phases, source=xlsx, problems=problems,
                            coding=coding)
    table.source = str(root)
    return table


def _dicom_phases(patient_dir: Path, pid: str, phases: Sequence[str],
                  read_headers: bool) -> tuple[dict[str, str], list[Problem]]:
    study = _baseline_study(patient_dir, pid)
    series = _dce_series(study, pid)
    notes: list[Problem] = []
    if read_headers:
        info = describe_dicom_series(series, patient=pid)
        chosen, note = _map_timepoints(info.timepoints, info.times_s)
        if note:
            notes.append(Problem(pid, "load", note, str(series), "warning"))
        if not chosen:
            raise CohortError(f"DCE series holds {len(info.timepoints)} timepoint; this site "
                              "stored each phase in its own series: list them in a manifest",
                              patient=pid, step="load", path=series)
    else:
        chosen = {"pre": 1, "early": 2, "late": 3}
    return {p: f"{series}#t={chosen[p]}" for p in phases if p in chosen}, notes


def _map_timepoints(labels: Sequence[int],
                    times: Sequence[float | None]) -> tuple[dict[str, int], str | None]:
    n = len(labels)
    if n < 2:
        return {}, None
    if n == 2:
        return {"pre": labels[0], "early": labels[1]}, ("DCE series holds 2 timepoints; "
                                                        "'late' left empty")
    if n == 3:
        return dict(zip(KNOWN_PHASES, labels, strict=True)), None
    if all(t is not None for t in times):
        post = list(range(1, n))
        early = min(post, key=lambda i: abs(times[i] - EARLY_S))
        late = min([i for i in post if i > early] or [n - 1], key=lambda i: abs(times[i] - LATE_S))
        how = (f"early/late nearest {EARLY_S:.0f} s/{LATE_S:.0f} s after the first "
               f"(times {[round(t) for t in times]} s)")
    else:
        early, late = 1, n - 1
        how = "no times in the headers: early = 2nd, late = last"
    return ({"pre": labels[0], "early": labels[early], "late": labels[late]},
            f"DCE series holds {n} timepoints {list(labels)}; {how}: "
            f"early #t={labels[early]}, late #t={labels[late]}")


def _baseline_study(patient_dir: Path, pid: str) -> Path:
    studies = [p for p in patient_dir.iterdir() if p.is_dir()]
    if not studies:
        raise CohortError("patient folder holds no study folders", patient=pid, step="load",
                          path=patient_dir)
    return min(studies, key=lambda s: (_study_date(s), s.name))


def _study_date(study: Path) -> str:
    m = _STUDY_DATE.match(study.name)
    if m:
        return f"{m['y']}{m['m']}{m['d']}"
    header = _first_header(study)
    return str(header.get("StudyDate", "") or "99999999") if header is not None else "99999999"


def _dce_series(study: Path, pid: str) -> Path:
    described = []
    for folder in sorted(p for p in study.iterdir() if p.is_dir()):
        m = _SERIES_NAME.match(folder.name)
        if m:
            number, description = int(m["num"]), m["desc"]
        else:
            header = _first_header(folder)
            if header is None:
                continue
            number = int(header.get("SeriesNumber", 0) or 0)
            description = str(header.get("SeriesDescription", "") or "")
        described.append((folder, number, description))
    original = [(folder, desc) for folder, number, desc in described
                if number < DERIVED_SERIES_NUMBER and not _DERIVED_WORDS.search(desc)]
    named = [folder for folder, desc in original if _DCE_WORDS.search(desc)]
    if not named:  # unusual description: trust headers that declare several timepoints
        named = [folder for folder, _ in original
                 if int((_first_header(folder) or {}).get("NumberOfTemporalPositions", 0) or 0) > 1]
    candidates = [(sum(1 for f in folder.iterdir() if f.is_file()), folder) for folder in named]
    if not candidates:
        listing = [f"{n}: {d}" for _, n, d in described]
        raise CohortError(f"no original DCE series in the baseline study; series are {listing}",
                          patient=pid, step="load", path=study)
    return max(candidates, key=lambda c: (c[0], c[1].name))[1]


def _first_header(folder: Path):
    import pydicom

    for path in sorted(folder.rglob("*")):
        if path.is_file():
            try:
                return pydicom.dcmread(path, stop_before_pixels=True,
                                       specific_tags=["StudyDate", "SeriesNumber",
                                                      "SeriesDescription",
                                                      "NumberOfTemporalPositions"])
            except Exception:
                continue
    return None


def _nifti_phases(patient_dir: Path, pid: str, phases: Sequence[str]) -> dict[str, str]:
    pattern = re.compile(rf"^{re.escape(pid)}_DCE_(\d{{4}})(?:_.*)?\.nii(?:\.gz)?$", re.I)
    by_index: dict[int, Path] = {}
    for path in sorted(patient_dir.iterdir()):
        m = pattern.match(path.name)
        if m:
            by_index.setdefault(int(m.group(1)), path)
    wanted = dict(zip(KNOWN_PHASES, range(3), strict=True))
    return {p: str(by_index[wanted[p]]) for p in phases if wanted[p] in by_index}


def _mask_path(mask_dir: Path | None, pid: str | None) -> str | None:
    if mask_dir is None or pid is None:
        return None
    for suffix in (".nii.gz", ".nii"):
        path = mask_dir / f"{pid}{suffix}"
        if path.is_file():
            return str(path)
    return None


def _patient_folders(folder: Path) -> dict[str, Path]:
    pattern = re.compile(rf"^{PATIENT_PREFIX}\d+$")
    return {p.name: p for p in folder.iterdir() if p.is_dir() and pattern.match(p.name)}


def _collection_dir(root: Path) -> Path:
    if any(_patient_folders(root)) or not (root / "ISPY1").is_dir():
        return root
    return root / "ISPY1"


def _first_dir(root: Path, candidates: Sequence[str]) -> Path | None:
    for base in (root, root.parent):
        for rel in candidates:
            if (base / rel).is_dir():
                return base / rel
    return None


def _find_clinical(root: Path) -> Path:
    for base in (root, root.parent):
        if (base / CLINICAL_FILENAME).is_file():
            return base / CLINICAL_FILENAME
    raise CohortError(f"clinical workbook {CLINICAL_FILENAME} not found in {root} or its "
                      "parent; pass clinical= its path", step="load", path=root)
