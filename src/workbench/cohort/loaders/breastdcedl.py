"""BreastDCEDL (Fridman et al. 2025, arXiv:2506.12190; Zenodo 10.5281/zenodo.15627233).

Curated NIfTI of the pre-treatment DCE-MRI of I-SPY1, I-SPY2 and Duke. File names, from the
dataset code (``utils/data_utils.py``: ``NIFTI_SUFFIX`` / ``MASK_SUFFIX``) and the released
archives::

    I-SPY1  <pid>_spy1_vis1_acq<K>.nii.gz       <pid>_spy1_vis1_mask.nii.gz   pid ISPY1_1001
    I-SPY2  <pid>_spy2_vis1_dce_aqc_<K>.nii.gz  <pid>_spy2_vis1_mask.nii.gz   pid ACRIN-6698-102212
                                                                                 or ISPY2-550421
    Duke    <pid>_duke_aqc_<K>.nii.gz           <pid>_duke_mask.nii.gz        pid Breast_MRI_001

``K`` is the 0-based acquisition index. Folders vary between releases (Zenodo I-SPY1:
``BreastDCEDL_spy1/spt1_dce/`` + ``spy1_mask/`` + ``BreastDCEDL_spy1_metadata.csv``; demo
archive: ``dce/`` + ``mask/`` + ``BreastDCEDL_metadata_min_crop.csv``), so every NIfTI file
below ``root`` is found by its name, whatever its folder.

Metadata CSV (``metadata=``, default: ``BreastDCEDL_metadata.csv`` in ``root``, else the one
``*metadata*.csv`` found in ``root`` or one folder below): ``pid``, ``pCR``, ``age``,
``race_white``/``race_black`` (-> ``race`` ``Caucasian``/``African American``/``other``),
``ER``, ``PR``, ``HR``, ``HER2`` (0/1), ``HR_HER2_STATUS``
(``HRposHER2neg``/``HER2pos``/``TripleNeg``; coded values are read with the spellings of
:mod:`workbench.cohort.coding`, anything else is a coding error),
``MRI_LD_Baseline`` (I-SPY1 sheet), and the acquisition indices chosen by the curators'
radiologists, ``pre``, ``post_early``, ``post_late`` (I-SPY2 typically 0, 2 and 5 or 6).
Column names are matched without regard to case.

Phases: ``pre``/``early``/``late`` = acquisitions ``pre``/``post_early``/``post_late`` of
the metadata; where those columns are absent or blank, 0, 1 and the **last** acquisition. When
a patient has exactly 3 files and the metadata indices point past them (the "min-crop"
release keeps only the 3 chosen acquisitions), the 3 files are taken in order, with one
warning for the cohort. Duke cases come with tumour bounding boxes, not masks: their ``mask``
stays empty. ``source_dataset`` (``ispy1``/``ispy2``/``duke``) comes from the patient ID (the
``dataset`` column of the published I-SPY1 sheet says ``duke``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from workbench.cohort.coding import check_coding
from workbench.cohort.table import (
    DEFAULT_PHASES,
    MASK_COLUMN,
    CohortTable,
    Problem,
    decode_status,
    image_column,
    validate_cohort,
)
from workbench.errors import CohortError, ConfigError

METADATA_FILENAME = "BreastDCEDL_metadata.csv"
KNOWN_PHASES = ("pre", "early", "late")
PHASE_COLUMNS = {"pre": "pre", "early": "post_early", "late": "post_late"}
_IMAGE = re.compile(r"^(?P<pid>.+?)_(?:spy1_vis1_acq|spy2_vis1_dce_aqc_|duke_aqc_)(?P<k>\d+)"
                    r"\.nii(?:\.gz)?$", re.I)
_MASK = re.compile(r"^(?P<pid>.+?)_(?:spy1_vis1|spy2_vis1|duke)_mask\.nii(?:\.gz)?$", re.I)


def load_breastdcedl(root: str | Path, *, phases: Sequence[str] | None = DEFAULT_PHASES,
                     metadata: str | Path | None = None,
                     coding: Mapping[str, Mapping[str, str]] | None = None) -> CohortTable:
    """Load a BreastDCEDL release (any of its I-SPY1, I-SPY2, Duke parts).

    Parameters
    ----------
    root
        Folder holding the NIfTI volumes and masks (in any sub-folders).
    phases
        Any of ``"pre"``, ``"early"``, ``"late"``, in acquisition order (``None``: all three).
    metadata
        Metadata CSV; default: see module docstring.
    coding
        The run config's ``cohort.coding`` (see :func:`~workbench.cohort.table.validate_cohort`).

    Raises
    ------
    CohortError
        If ``coding`` is invalid, or ``root`` or the metadata CSV is missing, ambiguous, or has
        no ``pid`` column.
    ConfigError
        For an unknown phase.
    """
    check_coding(coding)
    root = Path(root)
    phases = tuple(phases or DEFAULT_PHASES)
    bad = [p for p in phases if p not in KNOWN_PHASES]
    if bad:
        raise ConfigError(f"phases must be among {list(KNOWN_PHASES)}; got {bad}", step="load")
    if not root.is_dir():
        raise CohortError("BreastDCEDL root folder not found", step="load", path=root)
    csv = Path(metadata) if metadata is not None else _find_metadata(root)
    if not csv.is_file():
        raise CohortError("BreastDCEDL metadata CSV not found", step="load", path=csv)
    sheet = pd.read_csv(csv)
    sheet.columns = [str(c).strip().lower() for c in sheet.columns]
    if "pid" not in sheet:
        raise CohortError(f"metadata has no 'pid' column; columns are {list(sheet.columns)}",
                          step="load", path=csv)
    file = str(csv)
    problems: list[Problem] = []

    df = pd.DataFrame({"patient_id": sheet["pid"].map(_text)})
    df["pcr"] = sheet["pcr"] if "pcr" in sheet else pd.NA
    df["age"] = sheet["age"] if "age" in sheet else pd.NA
    df["race"] = [_race(w, b) for w, b in zip(_col(sheet, "race_white"),
                                              _col(sheet, "race_black"), strict=True)]
    for source, target in (("er", "er"), ("pr", "pgr"), ("hr", "hr"), ("her2", "her2")):
        df[target], found = decode_status(sheet, source, df["patient_id"], file, target=target,
                                          label=source.upper(), coding=coding)
        problems += found
    df["hr_her2"] = list(_col(sheet, "hr_her2_status"))  # read by validate_cohort
    df["mri_ld_mm"] = sheet["mri_ld_baseline"] if "mri_ld_baseline" in sheet else pd.NA
    df["source_dataset"] = df["patient_id"].map(_dataset_of)

    images, masks = _scan_files(root)
    known = set(df["patient_id"].dropna())
    for pid in sorted(set(images) | set(masks)):
        if pid not in known:
            where = images[pid][min(images[pid])] if pid in images else masks[pid]
            problems.append(Problem(pid, "load", "image files have no row in the metadata; "
                                    "patient not loaded: add the row or remove the files",
                                    str(Path(where).parent)))
    columns: dict[str, list] = {image_column(p): [] for p in phases}
    columns[MASK_COLUMN] = []
    renumbered = []
    for i, pid in enumerate(df["patient_id"]):
        files = images.get(pid, {}) if pid else {}
        if pid and not files:
            problems.append(Problem(pid, "load", "no acquisition files for this metadata row; "
                                    "clinical data only", str(root), "warning"))
        wanted = {p: _index(sheet, PHASE_COLUMNS[p], i) for p in KNOWN_PHASES}
        chosen, index, was_renumbered = _choose(files, wanted)
        if was_renumbered:
            renumbered.append(pid)
        for p in phases:
            if pid and files and p not in chosen:
                problems.append(Problem(pid, "load", f"no acquisition file for phase '{p}' "
                                        f"(index {index.get(p)}); found {sorted(files)}",
                                        str(Path(files[min(files)]).parent)))
            columns[image_column(p)].append(chosen.get(p))
        columns[MASK_COLUMN].append(masks.get(pid) if pid else None)
        if pid and files and pid not in masks and _dataset_of(pid) != "duke":
            problems.append(Problem(pid, "load", "no mask file <pid>_<dataset>_mask.nii.gz for "
                                    "this patient", str(Path(files[min(files)]).parent),
                                    "warning"))
    if renumbered:
        problems.append(Problem(None, "load", f"{len(renumbered)} patients have 3 acquisition "
                                "files while the metadata indices point past them; taken as "
                                f"pre/early/late in order (min-crop release): {renumbered[:5]}"
                                f"{'...' if len(renumbered) > 5 else ''}", file, "warning"))
    for column, values in columns.items():
        df[column] = values
    if ((df["source_dataset"] == "duke") & df[MASK_COLUMN].isna()).any():
        problems.append(Problem(None, "load", "Duke cases come with tumour bounding boxes "
                                "(metadata mask_start/sraw/scol...), not masks: their mask "
                                "column stays empty", file, "warning"))
    table = validate_cohort(df, name="breastdcedl", phases=phases, source=csv,
                            problems=problems, coding=coding)
    table.source = str(root)
    return table


def _find_metadata(root: Path) -> Path:
    if (root / METADATA_FILENAME).is_file():
        return root / METADATA_FILENAME
    found = sorted(root.glob("*metadata*.csv")) or sorted(root.glob("*/*metadata*.csv"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise CohortError(f"no metadata CSV ({METADATA_FILENAME} or *metadata*.csv) in the "
                          "root or one folder below; pass metadata= its path", step="load",
                          path=root)
    raise CohortError(f"several metadata CSVs {[str(f) for f in found]}; pass metadata= the "
                      "one to use", step="load", path=root)


def _scan_files(root: Path) -> tuple[dict[str, dict[int, str]], dict[str, str]]:
    images: dict[str, dict[int, str]] = defaultdict(dict)
    masks: dict[str, str] = {}
    for path in sorted(root.rglob("*.nii*")):
        if (m := _MASK.match(path.name)) is not None:
            masks.setdefault(m["pid"], str(path))
        elif (m := _IMAGE.match(path.name)) is not None:
            images[m["pid"]].setdefault(int(m["k"]), str(path))
    return dict(images), masks


def _choose(files: dict[int, str], wanted: dict[str, int | None]
            ) -> tuple[dict[str, str], dict[str, int], bool]:
    """Files of each phase, the acquisition index used for each, and whether renumbered."""
    if not files:
        return {}, {}, False
    defaults = {"pre": 0, "early": 1, "late": max(files)}
    index = {p: defaults[p] if k is None else k for p, k in wanted.items()}
    if len(files) == 3 and any(k not in files for k in index.values()) and all(
            k is not None for k in wanted.values()):
        index = dict(zip(KNOWN_PHASES, sorted(files), strict=True))
        return {p: files[k] for p, k in index.items()}, index, True
    return {p: files[k] for p, k in index.items() if k in files}, index, False


def _index(sheet: pd.DataFrame, column: str, row: int) -> int | None:
    if column not in sheet:
        return None
    value = pd.to_numeric(pd.Series([sheet[column].iloc[row]]), errors="coerce").iloc[0]
    return None if pd.isna(value) else int(value)


def _race(white, black) -> str | None:
    w, b = (pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0] for v in (white, black))
    if pd.isna(w) and pd.isna(b):
        return None
    if w == 1:
        return "Caucasian"
    if b == 1:
        return "African American"
    return "other"


def _dataset_of(pid: str | None) -> str | None:
    if not pid:
        return None
    if pid.upper().startswith("ISPY1"):
        return "ispy1"
    if pid.upper().startswith(("ISPY2", "ACRIN-6698")):
        return "ispy2"
    if pid.startswith("Breast_MRI"):
        return "duke"
    return None


def _col(sheet: pd.DataFrame, column: str) -> pd.Series:
    return sheet[column] if column in sheet else pd.Series([None] * len(sheet))


def _text(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).strip() or None
