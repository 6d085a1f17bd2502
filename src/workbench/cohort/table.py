"""The cohort table: one validated row per patient, the contract every stage reads.

Columns
-------
``patient_id``
    String identifier, unique within the cohort (also when upper and lower case are not told
    apart), following :data:`PATIENT_ID_RULE`: 1 to 64 ASCII letters, digits, ``_``, ``-``
    and ``.``, the first a letter or digit (``ISPY1_1001``, ``DUKE_001``, ``SYN0001``,
    ``0012``). IDs name per-patient output files (e.g. the deep-feature crop
    ``features/crops/<patient_id>.png``), so nothing else — no ``/``, ``..``, spaces or
    leading dot — is accepted.
``pcr``
    Pathological complete response, nullable integer 0/1 (missing = unlabelled patient,
    usable for prediction only).
clinical
    ``age`` (years), ``race``, ``er``, ``pgr``, ``hr``, ``her2`` (``positive`` /
    ``negative`` / ``indeterminate``), ``hr_her2`` (``HR+/HER2-`` / ``HER2+`` /
    ``triple negative``), ``laterality`` (``left`` / ``right``), ``mri_ld_mm`` (baseline
    MRI longest diameter in mm, when the source has it). Missing values are allowed.
images
    ``image_<phase>`` for each DCE phase (``image_pre``, ``image_early``, ``image_late``;
    more phases allowed) and ``mask``: paths to NIfTI/NRRD files or DICOM folders
    (a DICOM folder may carry a temporal selector, ``DIR#t=K``, see
    :mod:`workbench.imaging.io`). An image-less (clinical-only) cohort has no phases
    (``phases=()``, :attr:`CohortTable.has_images` False) and no image or mask column.
kept extras
    ``mask_space`` (``grid`` / ``physical``: how a mask relates to its image, see
    :func:`workbench.imaging.geometry.align_mask`), ``source_dataset`` (the part of a
    multi-source release a patient comes from) and ``site`` (the scanner / centre a patient
    was imaged at, e.g. by
    :func:`~workbench.cohort.synthetic.generate_multisite_cohort`; the batch variable of
    harmonisation). Any other column is dropped with one ``warning`` naming it.

Clinical values: the coded columns accept the spellings of
:data:`~workbench.cohort.coding.SPELLINGS` (``1``/``0``, ``pos``/``neg``, ``+``/``-``, ``ER+``,
``TNBC``, ``L``/``R``...; the full table is in :mod:`workbench.cohort.coding`) after a
per-column map from the run config (``cohort.coding``); explicit missing spellings (empty,
``NA``, ``unknown``, ``not done``...) are missing. Any other value is an ``error`` problem
(step ``coding``) naming the column, the value, the patient and the file: the value becomes
missing and the patient stays in ``df`` (counted and listed) but is excluded from modelling.
``age`` and ``mri_ld_mm`` that are not numbers become missing with a ``warning``.

Validation never silently drops anything, and a bad row never stops the others: a patient
excluded for a missing, malformed or duplicate identifier or a bad label is removed from
:attr:`CohortTable.df` and listed in :attr:`CohortTable.problems` (one ``error`` row, step
``validate``, naming the row, the value and the rule); every row of a duplicated ID is excluded
(which one is right cannot be guessed). Only a table without a ``patient_id`` column is a
whole-table :class:`~workbench.errors.CohortError`. A patient whose images are missing stays in
``df`` (clinical analyses can use them) but is left out of :meth:`CohortTable.imaging_ready`,
with a problem row saying why. :meth:`CohortTable.exclusions` lists, for any later stage, every
patient that did not reach it and the first recorded reason.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.cohort.coding import (
    HR_HER2_VALUES,
    LATERALITY_VALUES,
    SPELLINGS,
    STATUS_VALUES,
    check_coding,
    coding_message,
    read_clinical,
)
from workbench.errors import CohortError
from workbench.imaging.io import split_selector

log = logging.getLogger(__name__)

DEFAULT_PHASES: tuple[str, ...] = ("pre", "early", "late")
IMAGE_PREFIX = "image_"
MASK_COLUMN = "mask"
__all__ = ["CATEGORICAL_VOCAB", "CLINICAL_COLUMNS", "DEFAULT_PHASES", "HR_HER2_VALUES",
           "IMAGE_PREFIX", "KEPT_EXTRA_COLUMNS", "LATERALITY_VALUES", "MASK_COLUMN",
           "NUMERIC_CLINICAL", "PATIENT_ID_PATTERN", "PATIENT_ID_RULE", "PROBLEM_COLUMNS",
           "SPELLINGS", "STATUS_VALUES", "CohortTable", "Problem", "decode_status",
           "image_column", "patient_id_error", "problems_frame", "shown", "validate_cohort"]
CATEGORICAL_VOCAB: dict[str, tuple[str, ...] | None] = {
    "race": None,  # free text (three canonical labels, see workbench.cohort.coding)
    "er": STATUS_VALUES,
    "pgr": STATUS_VALUES,
    "hr": STATUS_VALUES,
    "her2": STATUS_VALUES,
    "hr_her2": HR_HER2_VALUES,
    "laterality": LATERALITY_VALUES,
}
NUMERIC_CLINICAL = ("age", "mri_ld_mm")
CLINICAL_COLUMNS: tuple[str, ...] = ("age", "race", "er", "pgr", "hr", "her2", "hr_her2",
                                     "laterality", "mri_ld_mm")
#: Columns beyond the cohort columns that loaders write and later stages read (module
#: docstring); every other column is dropped with a warning.
KEPT_EXTRA_COLUMNS: tuple[str, ...] = ("mask_space", "source_dataset", "site")
#: What a patient ID may be (it names per-patient output files; see the module docstring).
PATIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
PATIENT_ID_RULE = ("1 to 64 characters: ASCII letters, digits, '_', '-' and '.', the first a "
                   "letter or digit")


def patient_id_error(pid: str) -> str | None:
    """Why ``pid`` is not an allowed patient ID (:data:`PATIENT_ID_RULE`), or ``None``."""
    if PATIENT_ID_PATTERN.fullmatch(pid):
        return None
    if not pid:
        return "it is empty"
    if len(pid) > 64:
        return f"it has {len(pid)} characters"
    bad = sorted({c for c in pid if not (c.isascii() and (c.isalnum() or c in "_.-"))})
    if bad:
        return "it contains " + ", ".join(repr(c) for c in bad)
    return f"it starts with {pid[0]!r}"


def shown(value: object) -> str:
    """``repr`` of a cell value for a message: numpy scalars as plain Python (``7.5``, not
    ``np.float64(7.5)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing found wrong with a cohort, recorded instead of raised.

    ``severity`` is ``"error"`` (the patient is excluded from what the step needs) or
    ``"warning"`` (reported, the patient stays).
    """

    patient_id: str | None
    step: str
    message: str
    file: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        who = f"[patient {self.patient_id}] " if self.patient_id is not None else ""
        where = f" (file {self.file})" if self.file else ""
        return f"{self.severity.upper()}: {who}{self.step}: {self.message}{where}"


PROBLEM_COLUMNS = ["patient_id", "step", "severity", "file", "message"]


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """Problems as a tidy table (one row each, columns :data:`PROBLEM_COLUMNS`)."""
    rows = [dataclasses.asdict(p) for p in problems]
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


def image_column(phase: str) -> str:
    """Column holding the path of a DCE phase."""
    return f"{IMAGE_PREFIX}{phase}"


@dataclasses.dataclass
class CohortTable:
    """A validated cohort.

    Attributes
    ----------
    name
        Cohort name (``"synthetic"``, ``"ispy1"``...).
    df
        One row per patient (see module docstring for the columns).
    phases
        DCE phases present as ``image_<phase>`` columns, in acquisition order; ``()`` for an
        image-less (clinical-only) cohort.
    problems
        Everything found wrong while loading and checking.
    source
        Where the cohort was read from.
    """

    name: str
    df: pd.DataFrame
    phases: tuple[str, ...] = DEFAULT_PHASES
    problems: list[Problem] = dataclasses.field(default_factory=list)
    source: str = ""

    @property
    def patient_ids(self) -> list[str]:
        return self.df["patient_id"].tolist()

    @property
    def has_images(self) -> bool:
        """Whether the cohort has image phases (``False``: a clinical-only table)."""
        return bool(self.phases)

    @property
    def image_columns(self) -> list[str]:
        return [image_column(p) for p in self.phases]

    def problems_frame(self) -> pd.DataFrame:
        return problems_frame(self.problems)

    def patients_with_errors(self, steps: Iterable[str] | None = None) -> set[str]:
        wanted = None if steps is None else set(steps)
        return {p.patient_id for p in self.problems
                if p.severity == "error" and p.patient_id is not None
                and (wanted is None or p.step in wanted)}

    def labelled(self) -> pd.DataFrame:
        """Patients with a known pCR label."""
        return self.df[self.df["pcr"].notna()].reset_index(drop=True)

    def imaging_ready(self) -> pd.DataFrame:
        """Patients whose every phase and mask path is present and free of recorded errors
        (none in an image-less cohort)."""
        if not self.has_images:
            return self.df.iloc[0:0].copy()
        cols = self.image_columns + [MASK_COLUMN]
        present = [c for c in cols if c in self.df.columns]
        if len(present) < len(cols):
            return self.df.iloc[0:0].copy()
        complete = self.df[present].notna().all(axis=1)
        bad = self.patients_with_errors()
        ok = complete & ~self.df["patient_id"].isin(bad)
        return self.df[ok].reset_index(drop=True)

    def excluded_at_table(self) -> list[Problem]:
        """The error problems of patients not in :attr:`df` (excluded when the table was
        built: bad, missing or duplicate ID, bad label), rows without an ID included."""
        kept = set(self.df["patient_id"])
        return [p for p in self.problems
                if p.severity == "error" and p.patient_id not in kept]

    def known_patients(self) -> list[str | None]:
        """Every patient the source named, kept or excluded at the table, in that order; one
        ``None`` per row without an ID."""
        known: dict[str, None] = dict.fromkeys(self.patient_ids)
        idless = 0
        for problem in self.excluded_at_table():
            if problem.patient_id is None:
                idless += problem.step == "validate"
            else:
                known.setdefault(problem.patient_id)
        return list(known) + [None] * idless

    def exclusions(self, reached: Iterable[str], step: str) -> list[Problem]:
        """One ``error`` problem (step ``step``) per known patient that is not in ``reached``,
        with the first reason recorded for it (the root cause: problems are in stage order).

        Every later stage calls this, so a patient lost anywhere upstream is listed — and
        counted — at every stage after it (see :meth:`known_patients`).
        """
        reached = set(reached)
        first: dict[str | None, Problem] = {}
        for problem in self.problems:
            if problem.severity == "error" and problem.patient_id not in first:
                first[problem.patient_id] = problem
        found = []
        for pid in dict.fromkeys(p for p in self.known_patients() if p is not None):
            if pid in reached:
                continue
            why = first.get(pid)
            reason = (f"{why.step}: {why.message}" if why is not None else
                      "no path for a phase or the mask")
            found.append(Problem(pid, step, f"excluded upstream: {reason}",
                                 None if why is None else why.file))
        found += [Problem(None, step, f"excluded upstream: {p.step}: {p.message}", p.file)
                  for p in self.excluded_at_table()
                  if p.patient_id is None and p.step == "validate"]
        return found

    def add_problems(self, problems: Iterable[Problem]) -> None:
        """Record ``problems``; one already recorded is not added twice (a stage rerun on a
        cohort read back with :meth:`load` finds the same problems again)."""
        seen = set(self.problems)
        for problem in problems:
            if problem not in seen:
                self.problems.append(problem)
                seen.add(problem)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``cohort.parquet``, ``problems.csv`` and ``cohort.json`` (name, phases,
        source) into ``out_dir``; :meth:`load` reads them back."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.df.to_parquet(out / "cohort.parquet", index=False)
        self.problems_frame().to_csv(out / "problems.csv", index=False)
        (out / "cohort.json").write_text(json.dumps(
            {"name": self.name, "phases": list(self.phases), "source": self.source},
            indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> CohortTable:
        """Read a cohort written by :meth:`save` (e.g. a run directory's ``cohort/``), its
        recorded problems included, so a later stage carries on where an earlier one stopped.

        Without ``cohort.json`` (runs saved before it existed) the name is the folder's
        parent's name and the phases are the ``image_<phase>`` columns in table order.

        Raises
        ------
        CohortError
            When ``cohort.parquet`` is missing or unreadable.
        """
        folder = Path(out_dir)
        table = folder / "cohort.parquet"
        try:
            df = pd.read_parquet(table)
        except (OSError, ValueError) as exc:
            raise CohortError(f"cannot read the saved cohort ({exc}); run the cohort stage "
                              "first", step="load", path=table) from exc
        info = {}
        if (folder / "cohort.json").is_file():
            info = json.loads((folder / "cohort.json").read_text(encoding="utf-8"))
        phases = tuple(info["phases"] if "phases" in info else (
            c.removeprefix(IMAGE_PREFIX) for c in df.columns if str(c).startswith(IMAGE_PREFIX)))
        problems = []
        if (folder / "problems.csv").is_file():
            try:
                frame = pd.read_csv(folder / "problems.csv", dtype=str, keep_default_na=False)
            except pd.errors.EmptyDataError:
                frame = pd.DataFrame(columns=PROBLEM_COLUMNS)
            problems = [Problem(r["patient_id"] or None, r["step"], r["message"],
                                r["file"] or None, r["severity"] or "error")
                        for _, r in frame.iterrows()]
        return cls(name=info.get("name") or folder.resolve().parent.name, df=df,
                   phases=phases, problems=problems, source=info.get("source", ""))


def validate_cohort(
    df: pd.DataFrame,
    *,
    name: str,
    phases: Sequence[str] = DEFAULT_PHASES,
    source: str | Path = "",
    problems: Iterable[Problem] = (),
    check_files: bool = True,
    coding: Mapping[str, Mapping[str, str]] | None = None,
) -> CohortTable:
    """Validate a raw patient table and build a :class:`CohortTable`.

    Checks identifiers (present, following :data:`PATIENT_ID_RULE`, unique even ignoring
    case), labels (0/1 or missing), clinical values (``coding``, then the accepted spellings
    of :mod:`workbench.cohort.coding`), and image paths (present and existing on disk when
    ``check_files``). Bad identifiers and labels exclude the patient (each with an ``error``
    :class:`Problem`, the other patients go on); a clinical value that cannot be read is an
    ``error`` that keeps the patient in ``df`` with the value missing (excluded from
    modelling); missing images are recorded and keep the patient for clinical-only use.
    Columns that are not cohort columns are dropped with one ``warning``. Nothing is dropped
    without a :class:`Problem` saying so.

    Parameters
    ----------
    phases
        The DCE phases; ``()`` for an image-less cohort (no image or mask column added, no
        path checked).
    coding
        The run config's ``cohort.coding``: per coded column, raw value -> canonical value
        (or ``missing``), applied before the accepted spellings.

    Raises
    ------
    CohortError
        For a ``coding`` that names an uncoded column or maps to a value that is not
        canonical (checked first), or a table without a ``patient_id`` column.
    """
    checked_coding = check_coding(coding)
    source = str(source)
    found: list[Problem] = list(problems)
    if "patient_id" not in df.columns:
        raise CohortError("cohort table has no 'patient_id' column; columns are "
                          f"{list(df.columns)}",
                          step="validate", path=source or None)
    df = df.copy()
    df["patient_id"] = df["patient_id"].map(_clean_id)
    missing_id = df["patient_id"].isna()
    for idx in df.index[missing_id]:
        found.append(Problem(None, "validate", f"row {idx} has no patient_id; row skipped",
                             source or None))
    df = df[~missing_id]

    invalid = df["patient_id"].map(patient_id_error)
    for idx, pid, why in zip(df.index[invalid.notna()], df.loc[invalid.notna(), "patient_id"],
                             invalid[invalid.notna()], strict=True):
        found.append(Problem(pid, "validate",
                             f"row {idx}: patient_id {pid!r} is not allowed ({why}); a patient "
                             f"ID must be {PATIENT_ID_RULE}; patient excluded: rename it in the "
                             "source", source or None))
    df = df[invalid.isna()]

    folded = df["patient_id"].str.casefold()
    dup_mask = folded.duplicated(keep=False)
    for _, rows in df[dup_mask].groupby(folded[dup_mask]).groups.items():
        ids = list(dict.fromkeys(df.loc[rows, "patient_id"]))
        how = "" if len(ids) == 1 else f" ({', '.join(map(repr, ids))} differ only in case)"
        for pid in ids:
            found.append(Problem(pid, "validate",
                                 f"duplicate patient_id in rows {sorted(int(r) for r in rows)}"
                                 f"{how}; all its rows excluded: make the identifiers unique",
                                 source or None))
    df = df[~dup_mask]

    df, label_problems = _validate_labels(df, source)
    found += label_problems
    found += _validate_clinical(df, source, checked_coding)

    paths = [image_column(p) for p in phases] + [MASK_COLUMN] if phases else []
    for col in paths:
        if col not in df.columns:
            df[col] = pd.NA
    if check_files and phases:
        found += _check_paths(df, phases)

    for col in CLINICAL_COLUMNS:
        if col not in df.columns:
            df[col] = pd.NA
    ordered = ["patient_id", "pcr"] + list(CLINICAL_COLUMNS) + paths
    kept = [c for c in df.columns if c not in ordered and (
        c in KEPT_EXTRA_COLUMNS or c == MASK_COLUMN or str(c).startswith(IMAGE_PREFIX))]
    unknown = [c for c in df.columns if c not in ordered and c not in kept]
    if unknown:
        found.append(Problem(None, "validate", f"columns {[str(c) for c in unknown]} are not "
                             "cohort columns; ignored (cohort columns: patient_id, pcr, "
                             f"{', '.join(CLINICAL_COLUMNS)}, image_<phase>, mask, "
                             f"{', '.join(KEPT_EXTRA_COLUMNS)})", source or None, "warning"))
    df = df[ordered + kept].reset_index(drop=True)
    for col in NUMERIC_CLINICAL:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in CATEGORICAL_VOCAB:
        df[col] = df[col].astype("object").where(df[col].notna(), None)
    return CohortTable(name=name, df=df, phases=tuple(phases), problems=found, source=source)


def _clean_id(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _validate_labels(df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[Problem]]:
    found: list[Problem] = []
    if "pcr" not in df.columns:
        df = df.assign(pcr=pd.array([pd.NA] * len(df), dtype="Int64"))
        return df, found
    raw = df["pcr"]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = (raw.notna() & ~numeric.isin([0, 1])) | (raw.notna() & numeric.isna())
    for pid, value in zip(df.loc[bad, "patient_id"], raw[bad], strict=True):
        found.append(Problem(pid, "validate",
                             f"pcr label {shown(value)} is not 0, 1 or empty; patient excluded: "
                             "fix the label (1 = pCR, 0 = residual disease, empty = unknown)",
                             source or None))
    df = df[~bad].copy()
    df["pcr"] = pd.array(numeric[~bad], dtype="Int64")
    return df, found


def _validate_clinical(df: pd.DataFrame, source: str,
                       coding: Mapping[str, Mapping[str, str | None]]) -> list[Problem]:
    """Read the coded columns in place (:func:`~workbench.cohort.coding.read_clinical`); an
    unreadable value is an ``error`` (step ``coding``) and becomes missing."""
    found: list[Problem] = []
    for col in CATEGORICAL_VOCAB:
        if col not in df.columns:
            continue
        values = []
        for pid, raw in zip(df["patient_id"], df[col], strict=True):
            value, readable = read_clinical(col, raw, coding.get(col))
            if not readable:
                found.append(Problem(pid, "coding", coding_message(col, raw), source or None))
            values.append(value)
        df[col] = pd.Series(values, index=df.index, dtype="object")
    for col in NUMERIC_CLINICAL:
        if col not in df.columns:
            continue
        numeric = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & numeric.isna()
        for pid, value in zip(df.loc[bad, "patient_id"], df.loc[bad, col], strict=True):
            found.append(Problem(pid, "validate", f"{col} value {shown(value)} is not a number; "
                                 "set to missing", source or None, "warning"))
        df[col] = numeric
    return found


def _check_paths(df: pd.DataFrame, phases: Sequence[str]) -> list[Problem]:
    found: list[Problem] = []
    cols = [(image_column(p), f"phase '{p}'") for p in phases] + [(MASK_COLUMN, "tumour mask")]
    for _, row in df.iterrows():
        pid = row["patient_id"]
        for col, what in cols:
            value = row[col]
            if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
                found.append(Problem(pid, "load", f"missing {what}: no path given in column "
                                     f"'{col}'", None))
                continue
            path, _ = split_selector(str(value))
            if not Path(path).exists():
                found.append(Problem(pid, "load", f"{what} file does not exist", str(value)))
    return found


def decode_status(sheet: pd.DataFrame, column: str, patients: pd.Series, file: str, *,
                  target: str | None = None, label: str | None = None,
                  coding: Mapping[str, Mapping[str, str]] | None = None,
                  ) -> tuple[list, list[Problem]]:
    """Decode a receptor column of a clinical sheet (``1``/``0``, or any accepted spelling)
    into the canonical ``positive`` / ``negative`` / ``indeterminate`` of cohort column
    ``target`` (default ``column``), after the ``cohort.coding`` map of that column.

    Empty cells stay missing; any other value becomes missing with an ``error`` problem
    (step ``coding``) naming the cohort column, the sheet column (``label``, default
    ``column``), the value, the patient and the file.
    """
    if column not in sheet:
        return [None] * len(sheet), []
    target = target or column
    mapping = check_coding(coding).get(target)
    where = f" (column '{label or column}')"
    values: list = []
    problems: list[Problem] = []
    for pid, raw in zip(patients, sheet[column], strict=True):
        value, readable = read_clinical(target, raw, mapping)
        if not readable:
            problems.append(Problem(pid, "coding", coding_message(target, raw, where=where),
                                    file))
        values.append(value)
    return values, problems
