"""MAMA-MIA (Garrucho et al., Synapse syn60868042): 1,506 pre-treatment DCE-MRI cases.

Layout (release README, ``src/clinical_data.py`` and the notebooks of
``github.com/LidiaGarrucho/MAMA-MIA``; code using the release)::

    <root>/clinical_and_imaging_info.xlsx        sheet "dataset_info", one row per case
    <root>/images/<PATIENT_ID>/<patient_id>_0000.nii.gz   phase 0 (pre-contrast)
                               <patient_id>_0001.nii.gz   phase 1 (1st post-contrast) ...
    <root>/segmentations/expert/<patient_id>.nii.gz        expert tumour segmentation
    <root>/segmentations/automatic/<patient_id>.nii.gz     nnU-Net segmentation

Patient IDs look like ``DUKE_001``, ``ISPY1_1001``, ``ISPY2_100899``, ``NACT_01``; file names
are matched without regard to case (the release writes them in lower case inside upper-case
folders).

Phases: ``pre`` = ``_0000``, ``early`` = ``_0001`` (first post-contrast, the study's early
phase), ``late`` = the **last** phase file (``_0002`` for 3-phase cases; later phases for
I-SPY2/Duke cases with 4 to 8, the washout end of the curve). A case with fewer than 3 phase
files leaves ``late`` empty.

Clinical columns (sheet ``dataset_info``): ``patient_id``, ``pcr`` (0/1/blank), ``age``,
``ethnicity`` -> ``race`` (as written, or its canonical label: ``caucasian`` -> ``Caucasian``),
``er``, ``pr`` -> ``pgr``, ``hr``, ``her2`` (0/1 -> negative/positive, or any spelling of
:mod:`workbench.cohort.coding`; anything else is a coding error), ``hr_her2`` from
``hr``/``her2`` (``her2`` 1 -> ``HER2+``; 0 with ``hr`` 1 -> ``HR+/HER2-``; both 0 ->
``triple negative``), else from ``tumor_subtype``
(``triple_negative``, ``her2_*``); ``dataset`` is kept as ``source_dataset``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from workbench.cohort.coding import check_coding
from workbench.cohort.table import (
    DEFAULT_PHASES,
    HR_HER2_VALUES,
    MASK_COLUMN,
    CohortTable,
    Problem,
    decode_status,
    image_column,
    validate_cohort,
)
from workbench.errors import CohortError, ConfigError

CLINICAL_FILENAME = "clinical_and_imaging_info.xlsx"
CLINICAL_SHEET = "dataset_info"
KNOWN_PHASES = ("pre", "early", "late")
SEGMENTATIONS = ("expert", "automatic")


def load_mama_mia(root: str | Path, *, phases: Sequence[str] | None = DEFAULT_PHASES,
                  clinical: str | Path | None = None,
                  segmentation: str = "expert",
                  coding: Mapping[str, Mapping[str, str]] | None = None) -> CohortTable:
    """Load a MAMA-MIA download.

    Parameters
    ----------
    root
        Folder holding ``images/``, ``segmentations/`` and the clinical workbook.
    phases
        Any of ``"pre"``, ``"early"``, ``"late"``, in acquisition order (``None``: all three).
    clinical
        Clinical workbook; default ``<root>/clinical_and_imaging_info.xlsx``.
    segmentation
        ``"expert"`` (default) or ``"automatic"`` masks.
    coding
        The run config's ``cohort.coding`` (see :func:`~workbench.cohort.table.validate_cohort`).

    Raises
    ------
    CohortError
        If ``coding`` is invalid, or ``root`` or the clinical workbook is missing or has no
        ``patient_id`` column.
    ConfigError
        For an unknown phase or segmentation.
    """
    check_coding(coding)
    root = Path(root)
    phases = tuple(phases or DEFAULT_PHASES)
    bad = [p for p in phases if p not in KNOWN_PHASES]
    if bad:
        raise ConfigError(f"phases must be among {list(KNOWN_PHASES)}; got {bad}", step="load")
    if segmentation not in SEGMENTATIONS:
        raise ConfigError(f"segmentation must be one of {list(SEGMENTATIONS)}; got "
                          f"{segmentation!r}", step="load")
    if not root.is_dir():
        raise CohortError("MAMA-MIA root folder not found", step="load", path=root)
    xlsx = Path(clinical) if clinical is not None else root / CLINICAL_FILENAME
    sheet = _read_sheet(xlsx)
    file = str(xlsx)
    problems: list[Problem] = []

    df = pd.DataFrame({"patient_id": sheet["patient_id"].map(_text)})
    df["pcr"] = sheet["pcr"] if "pcr" in sheet else pd.NA
    df["age"] = sheet["age"] if "age" in sheet else pd.NA
    df["race"] = sheet["ethnicity"].map(_text) if "ethnicity" in sheet else None
    for source, target in (("er", "er"), ("pr", "pgr"), ("hr", "hr"), ("her2", "her2")):
        df[target], found = decode_status(sheet, source, df["patient_id"], file,
                                          target=target, coding=coding)
        problems += found
    subtypes = sheet["tumor_subtype"] if "tumor_subtype" in sheet else [None] * len(df)
    df["hr_her2"] = [_hr_her2(hr, her2, subtype) for hr, her2, subtype in zip(
        df["hr"], df["her2"], subtypes, strict=True)]
    df["source_dataset"] = sheet["dataset"].map(_text) if "dataset" in sheet else None

    image_dirs = _index(root / "images", dirs=True)
    mask_dir = root / "segmentations" / segmentation
    masks = _index(mask_dir, dirs=False)
    if not image_dirs:
        problems.append(Problem(None, "load", "no patient folders under images/",
                                str(root / "images"), "warning"))
    if not masks:
        problems.append(Problem(None, "load", f"no {segmentation} segmentations found",
                                str(mask_dir), "warning"))
    known = {p.lower() for p in df["patient_id"].dropna()}
    for key, folder in sorted(image_dirs.items()):
        if key not in known:
            problems.append(Problem(folder.name, "load", "image folder has no row in the "
                                    "clinical workbook; patient not loaded: add the row or "
                                    "remove the folder", str(folder)))

    declared = sheet["num_phases"] if "num_phases" in sheet else pd.Series([None] * len(df))
    columns: dict[str, list] = {image_column(p): [] for p in phases}
    columns[MASK_COLUMN] = []
    for pid, n_declared in zip(df["patient_id"], declared, strict=True):
        folder = image_dirs.get(pid.lower()) if pid else None
        files = _phase_files(folder, pid) if folder is not None else {}
        if pid and folder is None:
            problems.append(Problem(pid, "load", "no image folder for this clinical row; "
                                    "clinical data only", str(root / "images" / pid), "warning"))
        elif pid and not pd.isna(n_declared) and len(files) != int(n_declared):
            problems.append(Problem(pid, "load", f"{len(files)} phase files found but "
                                    f"num_phases says {int(n_declared)}", str(folder), "warning"))
        chosen = _choose_phases(files)
        for p in phases:
            columns[image_column(p)].append(chosen.get(p))
        mask = masks.get(pid.lower()) if pid else None
        if pid and folder is not None and mask is None and masks:
            problems.append(Problem(pid, "load", f"no {segmentation} segmentation for this "
                                    "patient", str(mask_dir / f"{pid.lower()}.nii.gz"),
                                    "warning"))
        columns[MASK_COLUMN].append(None if mask is None else str(mask))
    for column, values in columns.items():
        df[column] = values
    table = validate_cohort(df, name="mama_mia", phases=phases, source=xlsx, problems=problems,
                            coding=coding)
    table.source = str(root)
    return table


def _read_sheet(xlsx: Path) -> pd.DataFrame:
    if not xlsx.is_file():
        raise CohortError(f"MAMA-MIA clinical workbook not found; expected {CLINICAL_FILENAME} "
                          "in the dataset root or clinical= its path", step="load", path=xlsx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sheets = pd.read_excel(xlsx, sheet_name=None)
    sheet = sheets.get(CLINICAL_SHEET)
    if sheet is None:
        sheet = next((s for s in sheets.values() if "patient_id" in s.columns), None)
    if sheet is None:
        raise CohortError(f"no sheet '{CLINICAL_SHEET}' with a patient_id column; sheets are "
                          f"{list(sheets)}", step="load", path=xlsx)
    sheet.columns = [str(c).strip().lower() for c in sheet.columns]
    return sheet.reset_index(drop=True)


def _index(folder: Path, *, dirs: bool) -> dict[str, Path]:
    """Children of ``folder`` keyed by lower-case patient ID (``.nii[.gz]`` stripped)."""
    if not folder.is_dir():
        return {}
    out = {}
    for p in folder.iterdir():
        if dirs and p.is_dir():
            out[p.name.lower()] = p
        elif not dirs and p.is_file() and re.search(r"\.nii(\.gz)?$", p.name, re.I):
            out[re.sub(r"\.nii(\.gz)?$", "", p.name, flags=re.I).lower()] = p
    return out


def _phase_files(folder: Path, pid: str) -> dict[int, str]:
    pattern = re.compile(rf"^{re.escape(pid)}_(\d{{4}})\.nii(?:\.gz)?$", re.I)
    out = {}
    for p in sorted(folder.iterdir()):
        m = pattern.match(p.name)
        if m:
            out.setdefault(int(m.group(1)), str(p))
    return out


def _choose_phases(files: dict[int, str]) -> dict[str, str]:
    chosen = {}
    if 0 in files:
        chosen["pre"] = files[0]
    if 1 in files:
        chosen["early"] = files[1]
    last = max(files, default=None)
    if last is not None and last >= 2:
        chosen["late"] = files[last]
    return chosen


def _hr_her2(hr: str | None, her2: str | None, subtype) -> str | None:
    if her2 == "positive":
        return HR_HER2_VALUES[1]
    if her2 == "negative" and hr == "positive":
        return HR_HER2_VALUES[0]
    if her2 == "negative" and hr == "negative":
        return HR_HER2_VALUES[2]
    text = _text(subtype) or ""
    if text.startswith("triple"):
        return HR_HER2_VALUES[2]
    if text.startswith("her2"):
        return HR_HER2_VALUES[1]
    return None


def _text(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).strip() or None
