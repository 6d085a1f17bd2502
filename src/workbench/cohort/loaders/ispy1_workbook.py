"""I-SPY1 (ACRIN 6657 / CALGB 150007): the TCIA clinical and outcome workbook.

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

The images and masks of a TCIA download are found by :mod:`workbench.cohort.loaders.ispy1`,
which reads the workbook with :func:`read_ispy1_clinical`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from workbench.cohort.table import (
    DEFAULT_PHASES,
    HR_HER2_VALUES,
    LATERALITY_VALUES,
    STATUS_VALUES,
    CohortTable,
    Problem,
    validate_cohort,
)
from workbench.errors import CohortError

PATIENT_PREFIX = "ISPY1_"
CLINICAL_FILENAME = "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"

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
