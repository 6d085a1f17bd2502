"""I-SPY1 (ACRIN 6657 / CALGB 150007): the TCIA clinical and outcome workbook.

``I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx`` (TCIA, July 2015 / April 2016): sheet
``predictors`` (``SUBJECTID``, ``age``, ``race_id``, ``ERpos``, ``PgRpos``, ``HR Pos``,
``Her2MostPos``, ``HR_HER2_CATEGORY``, ``HR_HER2_STATUS``, ``Laterality``, ``MRI LD Baseline``
...), sheet ``outcomes`` (``SUBJECTID``, ``PCR``, ``RCBClass`` ...), and the sheets
``Clinical Data Dictionary`` / ``Outcome Data Dictionary`` listing each variable's codes
(``1=Caucasian``, ``0=Negative``, ``1=Left``...). Codes are decoded with *those* sheets,
parsed at load time, never with a table copied into this module, and each label is read with
the accepted spellings of :mod:`workbench.cohort.coding`:

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

The run config's ``cohort.coding`` of a column is applied to the workbook's raw codes first
(``{race: {'0': Other}}``), then to the decoded labels (by
:func:`~workbench.cohort.table.validate_cohort`). A code absent from the dictionary, or a label
that cannot be read, is an ``error`` (step ``coding``) naming the patient, the column and the
code: the value becomes missing and the patient stays in the table but is excluded from
modelling. One exception, :data:`UNDEFINED_CODES`: the TCIA workbook uses ``race_id`` 0 (2
patients) without defining it; it is read as not recorded (missing), with a warning naming each
patient. A subject listed twice in a sheet is excluded with an error naming the sheet rows.

The workbook alone is an image-less cohort (``phases=()``): no image or mask column.

The images and masks of a TCIA download are found by :mod:`workbench.cohort.loaders.ispy1`,
which reads the workbook with :func:`read_ispy1_clinical`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from workbench.cohort.coding import (
    Coding,
    accepted_text,
    check_coding,
    coding_key,
    read_spelling,
)
from workbench.cohort.table import CohortTable, Problem, validate_cohort
from workbench.errors import CohortError

PATIENT_PREFIX = "ISPY1_"
CLINICAL_FILENAME = "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"

# sheet column -> (cohort column, dictionary variable)
_CODED = {
    "race_id": ("race", "race_id"),
    "ERpos": ("er", "ERpos"),
    "PgRpos": ("pgr", "PgRpos"),
    "HR Pos": ("hr", "HR Pos"),
    "Her2MostPos": ("her2", "Her2MostPos"),
    "Laterality": ("laterality", "Laterality"),
}
_PLAIN = {"age": "age", "MRI LD Baseline": "mri_ld_mm"}
#: Codes the TCIA workbook uses without defining them in its dictionary sheets: sheet column
#: -> code -> why it is read as missing (with a warning per patient, not an error).
UNDEFINED_CODES: dict[str, dict[str, str]] = {
    "race_id": {"0": "the TCIA workbook uses it without defining it: read as "
                     "not recorded"},
}


def load_ispy1_clinical(xlsx: str | Path, *, phases: Sequence[str] = (),
                        coding: Mapping[str, Mapping[str, str]] | None = None) -> CohortTable:
    """Load the I-SPY1 clinical workbook alone: an image-less cohort.

    Parameters
    ----------
    xlsx
        ``I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx`` from TCIA (shipped:
        :func:`workbench.data.ispy1_clinical_workbook`).
    phases
        ``()`` (default): no image columns. Phase names give empty image columns instead.
    coding
        The run config's ``cohort.coding`` (module docstring).

    Raises
    ------
    CohortError
        If ``coding`` is invalid, or the workbook, its data sheets or their ``SUBJECTID``
        column are missing.
    """
    df, problems = read_ispy1_clinical(xlsx, coding=coding)
    return validate_cohort(df, name="ispy1", phases=tuple(phases), source=xlsx,
                           problems=problems, check_files=False, coding=coding)


def read_ispy1_clinical(xlsx: str | Path, *,
                        coding: Mapping[str, Mapping[str, str]] | None = None,
                        ) -> tuple[pd.DataFrame, list[Problem]]:
    """The decoded clinical table (cohort columns, not yet validated) and its problems;
    ``coding`` is applied to the raw codes before the dictionary (module docstring)."""
    checked = check_coding(coding)
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
    for column, (target, variable) in _CODED.items():
        out[target], found = _decode(merged, column, codes.get(_norm(variable)), target,
                                     out["patient_id"], file, checked)
        problems += found
    out["hr_her2"], found = _hr_her2(merged, codes, out["patient_id"], file, checked)
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


def _decode(df: pd.DataFrame, column: str, codes: dict[str, str] | None, target: str,
            patients: pd.Series, file: str, coding: Coding) -> tuple[list, list[Problem]]:
    """Decode sheet ``column`` into cohort column ``target``: the ``cohort.coding`` map of
    ``target`` on the raw code, else the dictionary label read by its spellings."""
    problems: list[Problem] = []
    if column not in df:
        return [None] * len(df), problems
    mapping = coding.get(target, {})
    if not codes and not mapping:
        problems.append(Problem(None, "load", f"no codes for '{column}' in the workbook's "
                                "dictionary sheets; values left missing", file, "warning"))
        return [None] * len(df), problems
    values = []
    listing = ", ".join(f"{k}={v}" for k, v in (codes or {}).items())
    fix = (f"set to missing, patient excluded from modelling: map the code with cohort.coding: "
           f"{{{target}: {{'<code>': <value>}}}}")
    for pid, raw in zip(patients, df[column], strict=True):
        key = _code_key(raw)
        if key is None:
            values.append(None)
            continue
        if coding_key(raw) in mapping:
            values.append(mapping[coding_key(raw)])
            continue
        label = (codes or {}).get(key)
        value, readable = (None, False) if label is None else _read_label(target, label)
        if label is None and key in UNDEFINED_CODES.get(column, {}):
            problems.append(Problem(pid, "load", f"{target} code {key} (workbook column "
                                    f"'{column}') is not in the workbook's dictionary; "
                                    f"{UNDEFINED_CODES[column][key]} (missing); map it with "
                                    f"cohort.coding: {{{target}: {{'{key}': <value>}}}} to read "
                                    "it otherwise", file, "warning"))
        elif label is None:
            problems.append(Problem(pid, "coding", f"{target} code {key} (workbook column "
                                    f"'{column}') is not in the workbook's dictionary "
                                    f"({listing}); {fix.replace('<code>', key)}", file))
        elif not readable:
            problems.append(Problem(pid, "coding", f"{target} label {label!r} (workbook column "
                                    f"'{column}', code {key}) is not an accepted spelling "
                                    f"(accepted: {accepted_text(target)}); "
                                    f"{fix.replace('<code>', key)}", file))
        values.append(value)
    return values, problems


def _hr_her2(df: pd.DataFrame, codes: dict, patients: pd.Series, file: str,
             coding: Coding) -> tuple[list, list[Problem]]:
    status, p1 = _decode(df, "HR_HER2_STATUS", codes.get(_norm("HR_HER2_STATUS")), "hr_her2",
                         patients, file, coding)
    category, p2 = _decode(df, "HR_HER2_CATEGORY", codes.get(_norm("HR_HER2_CATEGORY")),
                           "hr_her2", patients, file, coding)
    problems = p1 + (p2 if "HR_HER2_STATUS" not in df else [])
    values = []
    for pid, s, c in zip(patients, status, category, strict=True):
        if s is not None and c is not None and s != c:
            problems.append(Problem(pid, "load", f"HR_HER2_STATUS says {s!r} but "
                                    f"HR_HER2_CATEGORY says {c!r}; using the status", file,
                                    "warning"))
        values.append(s if s is not None else c)
    return values, problems


_STATUS_COLUMNS = ("er", "pgr", "hr", "her2")


def _read_label(target: str, label: str) -> tuple[str | None, bool]:
    """A dictionary label as a canonical value of ``target``; receptor labels by their first
    word (``Negative for both ER and PR`` -> ``negative``)."""
    if target in _STATUS_COLUMNS and label.split():
        label = label.split()[0]
    return read_spelling(target, label)  # a label such as "Unknown" reads as missing


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
