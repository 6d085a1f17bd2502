"""Clinical value coding: how a source's spellings become the cohort table's canonical values.

The coded clinical columns (:data:`workbench.names.CODED_CLINICAL_COLUMNS`) hold canonical
values: ``er``, ``pgr``, ``hr``, ``her2`` are ``positive`` / ``negative`` /
``indeterminate``; ``hr_her2`` is ``HR+/HER2-`` / ``HER2+`` / ``triple negative``;
``laterality`` is ``left`` / ``right``; ``race`` is free text, with one canonical label for
each group the clinical model tells apart (``Caucasian``, ``African American``, ``Asian``;
any other text is kept as written and modelled as "other"). Each cell a source gives is read
in this order (:func:`read_clinical`):

1. the run config's per-column map ``cohort.coding`` (:func:`check_coding`), e.g.
   ``{laterality: {'1': left, '2': right}}``: keys are compared as text, stripped, ignoring
   case, and numbers as numbers (``1``, ``"1"``, ``1.0`` and ``"1.0"`` are one key); targets
   must be canonical values (case aside), or ``missing`` (or another missing spelling) to
   declare a code missing;
2. the explicit missing spellings: empty, ``NA``, ``N/A``, ``NaN``, ``<NA>``, ``unknown``,
   ``unk``, ``not done``, ``ND``, ``missing``, ``not available``, ``.``: missing, without a
   problem (the predict coverage table reports missingness);
3. the accepted spellings of :data:`SPELLINGS`, compared ignoring case after stripping and
   collapsing whitespace, with the minus sign ``−`` (U+2212) and the en dash ``–`` read as
   ``-``, and numbers read as numbers (``1``, ``1.0``, ``"1"`` are ``positive``):

   ==============  =================  =====================================================
   column          canonical          also accepted
   ==============  =================  =====================================================
   er, pgr, hr,    ``positive``       pos, +, 1, yes, y, true, p
   her2            ``negative``       neg, -, −, 0, no, n, false
                   ``indeterminate``  equivocal, borderline
                   (each may follow the marker's name: ``ER+``, ``ER negative``, ``PR: pos``,
                   ``PgR-``, ``HR pos``, ``HER2+``, ``HER-2 neg``)
   hr_her2         ``HR+/HER2-``      HR+/HER2−, HR+ HER2-, HRposHER2neg, HR pos HER2 neg,
                                      HR positive HER2 negative, luminal
                   ``HER2+``          HER2 positive, HER2-positive, HER2pos, HER2 pos,
                                      HR+/HER2+, HR-/HER2+, HRposHER2pos, HRnegHER2pos
                   ``triple negative``  triple-negative, triple_negative, TripleNeg,
                                      triple neg, TN, TNBC, HR-/HER2-, HRnegHER2neg
                   (spaces, ``_``, ``/`` and ``,`` are ignored in this column)
   laterality      ``left``           l, lt
                   ``right``          r, rt
   race            ``Caucasian``      white, caucasian
                   ``African          black, african american, african-american,
                   American``         black or african american
                   ``Asian``          asian
                   (any other text is kept as written; a bare number is a code: refused)
   ==============  =================  =====================================================

4. anything else is an ``error`` problem (step ``coding``, :func:`coding_message`) naming the
   column, the value, the patient and the file and saying how to map it; the value becomes
   missing and the patient stays in the table (counted and listed) but is excluded from
   modelling (:meth:`~workbench.cohort.table.CohortTable.patients_with_errors`).

The numeric columns ``age`` and ``mri_ld_mm`` are not coded: a value that is not a number
becomes missing with a ``warning`` (see :mod:`workbench.cohort.table`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from workbench.errors import CohortError
from workbench.names import CODED_CLINICAL_COLUMNS

STATUS_VALUES = ("positive", "negative", "indeterminate")
HR_HER2_VALUES = ("HR+/HER2-", "HER2+", "triple negative")
LATERALITY_VALUES = ("left", "right")
RACE_VALUES = ("Caucasian", "African American", "Asian")

_STATUS_SPELLINGS: dict[str, tuple[str, ...]] = {
    "positive": ("pos", "+", "1", "yes", "y", "true", "p"),
    "negative": ("neg", "-", "\u2212", "0", "no", "n", "false"),
    "indeterminate": ("equivocal", "borderline"),
}
#: Accepted spellings of each coded column: ``{column: {canonical: (spelling, ...)}}``
#: (see the module docstring for how they are compared).
SPELLINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "race": {
        "Caucasian": ("white", "caucasian"),
        "African American": ("black", "african american", "african-american",
                             "black or african american"),
        "Asian": ("asian",),
    },
    "er": _STATUS_SPELLINGS,
    "pgr": _STATUS_SPELLINGS,
    "hr": _STATUS_SPELLINGS,
    "her2": _STATUS_SPELLINGS,
    "hr_her2": {
        "HR+/HER2-": ("HR+/HER2\u2212", "HR+ HER2-", "HRposHER2neg", "HR pos HER2 neg",
                      "HR positive HER2 negative", "luminal"),
        "HER2+": ("HER2 positive", "HER2-positive", "HER2pos", "HER2 pos", "HR+/HER2+",
                  "HR-/HER2+", "HRposHER2pos", "HRnegHER2pos"),
        "triple negative": ("triple-negative", "triple_negative", "TripleNeg", "triple neg",
                            "TN", "TNBC", "HR-/HER2-", "HRnegHER2neg"),
    },
    "laterality": {"left": ("l", "lt"), "right": ("r", "rt")},
}
#: Spellings read as missing, without a problem.
MISSING_SPELLINGS: tuple[str, ...] = ("", "na", "n/a", "nan", "<na>", "unknown", "unk",
                                      "not done", "nd", "missing", "not available", ".")
#: Marker names that may precede a receptor status (``ER+``, ``PgR negative``).
_MARKERS: dict[str, tuple[str, ...]] = {"er": ("er",), "pgr": ("pgr", "pr"), "hr": ("hr",),
                                        "her2": ("her2", "her-2")}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
#: Canonical values per coded column (``race``: the labels with spellings; others pass).
VOCABULARIES: dict[str, tuple[str, ...]] = {col: tuple(SPELLINGS[col])
                                            for col in CODED_CLINICAL_COLUMNS}

#: A checked ``cohort.coding``: column -> normalised key -> canonical value (``None``: missing).
Coding = dict[str, dict[str, str | None]]


def coding_key(value: object) -> str | None:
    """The text a cell is compared by: stripped, whitespace collapsed, case folded, ``−``/``–``
    as ``-``, numbers as numbers (``1``, ``1.0``, ``"1.0"`` -> ``"1"``); ``None`` if missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else _number_text(float(value))
    text = " ".join(str(value).split()).casefold().replace("\u2212", "-").replace("\u2013", "-")
    if _NUMBER.fullmatch(text):
        return _number_text(float(text))
    return text


def _number_text(number: float) -> str:
    if math.isinf(number):
        return str(number)
    return str(int(number)) if number.is_integer() else repr(number)


def _column_key(column: str, text: str) -> str:
    """Column-specific comparison form of a :func:`coding_key` text."""
    if column == "hr_her2":
        return re.sub(r"[\s_/,]", "", text)
    return text


def _lookup(column: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, spellings in SPELLINGS[column].items():
        for spelling in (canonical, *spellings):
            key = _column_key(column, coding_key(spelling) or "")
            if table.setdefault(key, canonical) != canonical:  # programming error
                raise AssertionError(f"{column} spelling {spelling!r} is ambiguous")
    return table


_LOOKUPS: dict[str, dict[str, str]] = {col: _lookup(col) for col in SPELLINGS}
_MISSING = frozenset(MISSING_SPELLINGS)
if tuple(SPELLINGS) != CODED_CLINICAL_COLUMNS:  # programming error: one list of coded columns
    raise AssertionError(f"SPELLINGS columns {tuple(SPELLINGS)} differ from "
                         f"workbench.names.CODED_CLINICAL_COLUMNS {CODED_CLINICAL_COLUMNS}")


def read_spelling(column: str, value: object) -> tuple[str | None, bool]:
    """Read ``value`` of a coded ``column`` by the missing and accepted spellings alone.

    Returns ``(canonical value or None, readable)``: ``(None, True)`` for a missing value,
    ``(None, False)`` for a value that is not an accepted spelling.
    """
    key = coding_key(value)
    if key is None or key in _MISSING:
        return None, True
    lookup = _LOOKUPS[column]
    found = lookup.get(_column_key(column, key))
    if found is not None:
        return found, True
    for marker in _MARKERS.get(column, ()):
        rest = key[len(marker):] if key.startswith(marker) else ""
        if rest[:1] in (" ", ":", "+", "-") and (rest := rest.lstrip(" :")) in lookup:
            return lookup[rest], True
    if column == "race":
        if _NUMBER.fullmatch(key):
            return None, False  # a code, not a label
        return " ".join(str(value).split()), True
    return None, False


def read_clinical(column: str, value: object,
                  mapping: Mapping[str, str | None] | None = None) -> tuple[str | None, bool]:
    """Read one cell of a coded ``column``: the checked ``cohort.coding`` map of that column
    first (``mapping``, from :func:`check_coding`), then :func:`read_spelling`.

    Returns ``(canonical value or None, readable)`` (``readable`` is False only for a value
    neither mapped nor accepted: a coding error).
    """
    if mapping:
        key = coding_key(value)
        if key is not None and key in mapping:
            return mapping[key], True
    return read_spelling(column, value)


def check_coding(coding: Mapping[str, Mapping[object, object]] | None) -> Coding:
    """Check a ``cohort.coding`` map and normalise it for :func:`read_clinical`.

    Raises
    ------
    CohortError
        For a column that is not coded, a target that is not a canonical value of its column
        (nor a missing spelling), or two keys that read alike with different targets; the
        message names the config key ``cohort.coding.<column>``.
    """
    checked: Coding = {}
    for column, mapping in (coding or {}).items():
        where = f"cohort.coding.{column}"
        if column not in CODED_CLINICAL_COLUMNS:
            raise CohortError(f"{where}: {column!r} is not a coded clinical column; coded "
                              f"columns are {list(CODED_CLINICAL_COLUMNS)}", step="coding")
        if not isinstance(mapping, Mapping):
            raise CohortError(f"{where} must map raw values to canonical values, got "
                              f"{type(mapping).__name__}", step="coding")
        out: dict[str, str | None] = {}
        for raw, target in mapping.items():
            key = coding_key(raw)
            if key is None:
                raise CohortError(f"{where}: an empty key cannot be mapped (empty cells are "
                                  "missing already)", step="coding")
            value = _target(column, raw, target, where)
            if key in out and out[key] != value:
                raise CohortError(f"{where}: keys reading as {key!r} map to both "
                                  f"{out[key]!r} and {value!r}", step="coding")
            out[key] = value
        checked[column] = out
    return checked


def _target(column: str, raw: object, target: object, where: str) -> str | None:
    text = coding_key(target) if isinstance(target, str) else None
    if text is not None and text in _MISSING:
        return None
    if column == "race":
        value, ok = read_spelling(column, target) if isinstance(target, str) else (None, False)
        if ok and value is not None:
            return value
        allowed = "a label (text, not a number)"
    else:
        canon = {c.casefold(): c for c in VOCABULARIES[column]}
        if text is not None and text in canon:
            return canon[text]
        allowed = f"one of {list(VOCABULARIES[column])}"
    raise CohortError(f"{where}: target {target!r} (for {raw!r}) is not {allowed}, nor "
                      "'missing'; map each raw value to a canonical value", step="coding")


def accepted_text(column: str) -> str:
    """The accepted spellings of ``column``, for a message."""
    parts = []
    for canonical, spellings in SPELLINGS[column].items():
        parts.append(f"{canonical} ({', '.join(spellings)})")
    text = "; ".join(parts)
    if column in _MARKERS:
        text += f"; each may follow the marker's name ({column.upper()}+, {column.upper()} neg)"
    if column == "race":
        text += "; or any label that is not a number"
    return text + "; empty, NA, unknown, not done = missing"


def coding_message(column: str, value: object, *, what: str = "value",
                   where: str = "") -> str:
    """The message of a coding error: ``"<column> value <v> is not an accepted spelling ...;
    set to missing, patient excluded from modelling: ... map it with cohort.coding ..."``.

    It starts with the cohort column (``er value 'pos.' ...``): the predict coverage table
    (:mod:`workbench.external.coverage`) counts these errors per column by that prefix.
    ``where`` (e.g. ``" (workbook column 'ERpos')"``) follows the value.
    """
    key = coding_key(value)
    shown = value.item() if isinstance(value, np.generic) else value
    example = "<label>" if column == "race" else "<" + " | ".join(VOCABULARIES[column]) + ">"
    return (f"{column} {what} {shown!r}{where} is not an accepted spelling (accepted: "
            f"{accepted_text(column)}); set to missing, patient excluded from modelling: fix "
            f"the source, or map it with cohort.coding: {{{column}: {{{key!r}: {example}}}}}")
