"""I-SPY1 (ACRIN 6657 / CALGB 150007) from its TCIA releases.

Clinical workbook
-----------------
``I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx`` (TCIA, July 2015 / April 2016): sheet
``predictors`` (``SUBJECTID``, ``age``, ``race_id``, ``ERpos``, ``PgRpos``, ``HR Pos``,
``Her2MostPos``, ``HR_HER2_CATEGORY``, ``HR_HER2_STATUS``, ``Laterality``, ``MRI LD Baseline``
...), sheet ``outcomes`` (``SUBJECTID``, ``PCR``, ``RCBClass`` ...), and the sheets
``Clinical Data Dictionary`` / ``Outcome Data Dictionary`` listing each variable's codes
(``1=Caucasian``, ``0=Negative``, ``1=Left``...). Codes are decoded with *those* sheets,
parsed at load time, never with a table copied into this module:

================  ==================  ==================================================
cohort column      sheet column         decoding
================  ==================  ==================================================
``patient_id``    ``SUBJECTID``        ``"ISPY1_" + SUBJECTID`` (``ISPY1_1001``), the Patient
                                       ID of the DICOM headers and TCIA folder names
``pcr``           ``PCR``              0/1, blank = unknown (no surgery)
``age``           ``age``              years
``race``          ``race_id``          dictionary label (``Caucasian``, ``African American``...)
``er``/``pgr``    ``ERpos``/``PgRpos``  first word of the label: negative/positive/indeterminate
``hr``            ``HR Pos``           idem
``her2``          ``Her2MostPos``      idem; blank ("indeterminate or not done") = missing
``hr_her2``       ``HR_HER2_STATUS``   ``HR+/HER2-``, ``HER2+``, ``triple negative``
                                       (``HR_HER2_CATEGORY`` when the status is blank)
``laterality``    ``Laterality``       left/right
``mri_ld_mm``     ``MRI LD Baseline``  mm
================  ==================  ==================================================

A code absent from the dictionary (``race_id`` 0) becomes missing, with a warning naming the
patient. A subject listed twice in a sheet is excluded with an error naming the sheet rows.

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
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from workbench.cohort.table import (
    DEFAULT_PHASES,
    HR_HER2_VALUES,
    LATERALITY_VALUES,
    MASK_COLUMN,
    STATUS_VALUES,
    CohortTable,
    Problem,
    image_column,
    validate_cohort,
)
from workbench.errors import CohortError, ConfigError, WorkbenchError

log = logging.getLogger(__name__)

PATIENT_PREFIX = "ISPY1_"
CLINICAL_FILENAME = "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"
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

# sheet column -> (cohort column, dictionary variable, how labels are read)
_CODED = {
    "race_id": ("race", "race_id", "text"),
    "ERpos": ("er", "ERpos", "status"),
    "PgRpos": ("pgr", "PgRpos", "status"),
    "HR Pos": ("hr", "HR Pos", "status"),
    "Her2MostPos": ("her2", "Her2MostPos", "status"),
    "Laterality": ("laterality", "Laterality", "laterality"),
}
_PLAIN = {"age": "age", "MRI LD Baseline": "mri_ld_mm"}


# --------------------------------------------------------------------------------------------
# clinical workbook


def load_ispy1_clinical(xlsx: str | Path, *,
                        phases: Sequence[str] = DEFAULT_PHASES) -> CohortTable:
    """Load the I-SPY1 clinical workbook alone (no images).

    Parameters
    ----------
    xlsx
        ``I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx`` from TCIA.
    phases
        Phase names of the (empty) image columns.

    Raises
    ------
    CohortError
        If the workbook, its data sheets or their ``SUBJECTID`` column are missing.
    """
    df, problems = read_ispy1_clinical(xlsx)
    return validate_cohort(df, name="ispy1", phases=phases, source=xlsx, problems=problems,
                           check_files=False)


def read_ispy1_clinical(xlsx: str | Path) -> tuple[pd.DataFrame, list[Problem]]:
    """The decoded clinical table (cohort columns, not yet validated) and its problems."""
    xlsx = Path(xlsx)
    if not xlsx.is_file():
        raise CohortError("I-SPY1 clinical workbook not found; download it from the TCIA "
                          "ISPY1 collection page", step="load", path=xlsx)
    with warnings.catch_warnings():  # openpyxl: "Unknown extension is not supported"
        warnings.simplefilter("ignore", UserWarning)
        sheets = pd.read_excel(xlsx, sheet_name=None, header=None)
    file = str(xlsx)
    predictors = _data_sheet(sheets, "predictors", xlsx)
    outcomes = _data_sheet(sheets, "outcomes", xlsx)
    codes = {}
    for name in ("Clinical Data Dictionary", "Outcome Data Dictionary"):
        codes.update(parse_dictionary(_sheet(sheets, name, xlsx)))

    problems: list[Problem] = []
    dup_ids: set = set()
    for sheet_name, sheet in (("predictors", predictors), ("outcomes", outcomes)):
        sid = sheet["SUBJECTID"].map(_code_key)
        dup = sid[sid.duplicated(keep=False) & sid.notna()]
        for key, rows in dup.groupby(dup).groups.items():
            dup_ids.add(key)
            problems.append(Problem(
                PATIENT_PREFIX + key, "load",
                f"SUBJECTID {key} appears {len(rows)} times in sheet '{sheet_name}' "
                f"(spreadsheet rows {[int(r) + 2 for r in rows]}); patient excluded: make the "
                "identifiers unique", file))
    predictors = predictors.assign(_key=predictors["SUBJECTID"].map(_code_key))
    outcomes = outcomes.assign(_key=outcomes["SUBJECTID"].map(_code_key))
    for idx in outcomes.index[outcomes["_key"].isna()]:
        problems.append(Problem(None, "load", f"row {int(idx) + 2} of sheet 'outcomes' has no "
                                "SUBJECTID; row skipped", file))
    unnamed = predictors[predictors["_key"].isna()]  # kept: validation reports them
    predictors = predictors[predictors["_key"].notna() & ~predictors["_key"].isin(dup_ids)]
    outcomes = outcomes[outcomes["_key"].notna() & ~outcomes["_key"].isin(dup_ids)]

    merged = predictors.merge(outcomes, on="_key", how="outer", suffixes=("", "_outcomes"),
                              indicator=True)
    merged = pd.concat([merged, unnamed.assign(_merge="left_only")], ignore_index=True)
    out = pd.DataFrame({"patient_id": [None if k is None else PATIENT_PREFIX + k
                                       for k in merged["_key"]]}, index=merged.index)
    for side, sheet_name in (("left_only", "outcomes"), ("right_only", "predictors")):
        for pid in out.loc[merged["_merge"] == side, "patient_id"].dropna():
            problems.append(Problem(pid, "load", f"no row in sheet '{sheet_name}'; its "
                                    "variables are missing", file, "warning"))

    out["pcr"] = merged["PCR"] if "PCR" in merged else pd.NA
    for column, target in _PLAIN.items():
        out[target] = merged[column] if column in merged else pd.NA
    for column, (target, variable, kind) in _CODED.items():
        out[target], found = _decode(merged, column, codes.get(_norm(variable)), kind,
                                     out["patient_id"], file)
        problems += found
    out["hr_her2"], found = _hr_her2(merged, codes, out["patient_id"], file)
    problems += found
    for column in list(_CODED) + list(_PLAIN) + ["PCR", "HR_HER2_STATUS"]:
        if column not in merged:
            problems.append(Problem(None, "load", f"workbook has no column '{column}'; "
                                    "left missing", file, "warning"))
    return out.reset_index(drop=True), problems


def parse_dictionary(sheet: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Codes of each variable in a TCIA dictionary sheet: ``{variable: {code: label}}``.

    A variable starts at a row whose name cell (2nd column) is filled; the ``code=label``
    lines under it (any later cell of the row) are its codes. Variable names are keyed by
    :func:`_norm` (lower case, letters and digits only, first line of the cell).
    """
    result: dict[str, dict[str, str]] = {}
    current: str | None = None
    code_line = re.compile(r"^\s*([^=]+?)\s*=\s*(.+?)\s*$", re.S)
    for _, row in sheet.iterrows():
        cells = row.tolist()
        name = cells[1] if len(cells) > 1 else None
        if isinstance(name, str) and name.strip() and "=" not in name:
            current = _norm(name.strip().splitlines()[0])
            result.setdefault(current, {})
            rest = cells[2:]
        else:
            rest = cells[1:]
        if current is None:
            continue
        for cell in rest:
            if isinstance(cell, str) and (m := code_line.match(cell)):
                code, label = m.group(1).strip(), m.group(2).strip()
                if code.lower() == "blank":
                    continue  # "Blank= not done": blank cells are simply missing
                result[current][_code_key(code)] = label
    return {k: v for k, v in result.items() if v}


def _decode(df: pd.DataFrame, column: str, codes: dict[str, str] | None, kind: str,
            patients: pd.Series, file: str) -> tuple[list, list[Problem]]:
    problems: list[Problem] = []
    if column not in df:
        return [None] * len(df), problems
    if not codes:
        problems.append(Problem(None, "load", f"no codes for '{column}' in the workbook's "
                                "dictionary sheets; values left missing", file, "warning"))
        return [None] * len(df), problems
    values = []
    listing = ", ".join(f"{k}={v}" for k, v in codes.items())
    for pid, raw in zip(patients, df[column], strict=True):
        key = _code_key(raw)
        if key is None:
            values.append(None)
            continue
        label = codes.get(key)
        value = None if label is None else _READERS[kind](label)
        if label is None:
            problems.append(Problem(pid, "load", f"{column} code {key} is not in the workbook's "
                                    f"dictionary ({listing}); set to missing", file, "warning"))
        elif value is None:
            problems.append(Problem(pid, "load", f"{column} label {label!r} cannot be read as "
                                    f"a {kind}; set to missing", file, "warning"))
        values.append(value)
    return values, problems


def _hr_her2(df: pd.DataFrame, codes: dict, patients: pd.Series,
             file: str) -> tuple[list, list[Problem]]:
    status, p1 = _decode(df, "HR_HER2_STATUS", codes.get(_norm("HR_HER2_STATUS")), "hr_her2",
                         patients, file)
    category, p2 = _decode(df, "HR_HER2_CATEGORY", codes.get(_norm("HR_HER2_CATEGORY")),
                           "hr_her2", patients, file)
    problems = p1 + (p2 if "HR_HER2_STATUS" not in df else [])
    values = []
    for pid, s, c in zip(patients, status, category, strict=True):
        if s is not None and c is not None and s != c:
            problems.append(Problem(pid, "load", f"HR_HER2_STATUS says {s!r} but "
                                    f"HR_HER2_CATEGORY says {c!r}; using the status", file,
                                    "warning"))
        values.append(s if s is not None else c)
    return values, problems


def _read_status(label: str) -> str | None:
    word = label.strip().split()[0].lower() if label.strip() else ""
    return word if word in STATUS_VALUES else None


def _read_hr_her2(label: str) -> str | None:
    text = " ".join(label.lower().replace(",", " ").split())
    if "triple" in text:
        return HR_HER2_VALUES[2]
    if re.search(r"her2 pos", text) and "her2 neg" not in text:
        return HR_HER2_VALUES[1]
    if re.search(r"hr pos", text) and "her2 neg" in text:
        return HR_HER2_VALUES[0]
    return None


def _read_laterality(label: str) -> str | None:
    word = label.strip().lower()
    return word if word in LATERALITY_VALUES else None


_READERS = {"text": str.strip, "status": _read_status, "hr_her2": _read_hr_her2,
            "laterality": _read_laterality}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _code_key(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text or None


def _sheet(sheets: dict[str, pd.DataFrame], name: str, xlsx: Path) -> pd.DataFrame:
    for key, frame in sheets.items():
        if key.strip().lower() == name.lower():
            return frame
    raise CohortError(f"sheet '{name}' not found; the workbook has {list(sheets)}: use the "
                      "TCIA I-SPY1 clinical workbook unchanged", step="load", path=xlsx)


def _data_sheet(sheets, name: str, xlsx: Path) -> pd.DataFrame:
    raw = _sheet(sheets, name, xlsx)
    if raw.empty:
        raise CohortError(f"sheet '{name}' is empty", step="load", path=xlsx)
    frame = raw.iloc[1:].copy()
    frame.columns = [str(c).strip() for c in raw.iloc[0]]
    frame.index = range(len(frame))
    if "SUBJECTID" not in frame:
        raise CohortError(f"sheet '{name}' has no SUBJECTID column; columns are "
                          f"{list(frame.columns)}", step="load", path=xlsx)
    return frame.dropna(how="all")


# --------------------------------------------------------------------------------------------
# images


def load_ispy1(root: str | Path, *, clinical: str | Path | None = None,
               masks: str | Path | None = None, phases: Sequence[str] | None = DEFAULT_PHASES,
               images: str = "dicom", read_headers: bool = True) -> CohortTable:
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

    Raises
    ------
    CohortError
        If ``root`` or the clinical workbook is missing or malformed.
    ConfigError
        For an unknown phase or ``images`` value.
    """
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
    df, problems = read_ispy1_clinical(xlsx)

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
    table = validate_cohort(df, name="ispy1", phases=phases, source=xlsx, problems=problems)
    table.source = str(root)
    return table


def _dicom_phases(patient_dir: Path, pid: str, phases: Sequence[str],
                  read_headers: bool) -> tuple[dict[str, str], list[Problem]]:
    study = _baseline_study(patient_dir, pid)
    series = _dce_series(study, pid)
    notes: list[Problem] = []
    if read_headers:
        from workbench.imaging.dicom import describe_dicom_series

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
