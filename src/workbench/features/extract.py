"""Cohort-level driver shared by the feature stages: the store look-up around the batch runner.

A stage (:func:`workbench.features.radiomics.extract_radiomics`,
:func:`workbench.features.kinetic.extract_kinetic`) turns its table into :class:`Task` objects,
one per unit of work with its content-addressed key (see :mod:`workbench.features.store`).
:func:`run_tasks` loads every unit already in the store and hands the others to the one
per-patient runner (:func:`workbench.batch.run_batch`: failure isolation, progress, local
processes or a Dask cluster — see there for running on a cluster); each record is written
atomically by the worker as soon as it finishes, so a killed run resumes where it stopped. A
unit that fails becomes an errors-table row (``patient_id, step, file, message``); the batch
goes on. Results are identical whichever way the work runs: every unit runs with the same
SimpleITK thread count (``itk_threads``, see :mod:`workbench.batch`) and one BLAS thread (a test
checks Dask and two jobs against the sequential run).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.batch import DEFAULT_ITK_THREADS, Job, problem_row, run_batch
from workbench.cohort.table import MASK_COLUMN, Problem, image_column
from workbench.errors import CohortError, WorkbenchError
from workbench.features.store import FeatureStore, errors_frame
from workbench.files import atomic_path
from workbench.hashing import digest_many

log = logging.getLogger(__name__)


#: Step of the errors-table rows of patients that never reached the stage (see
#: :meth:`FeatureResult.add_upstream`).
UPSTREAM_STEP = "excluded upstream"


class FeatureError(WorkbenchError):
    """A feature-extraction step failed for one patient (bad mask, filter impossible...)."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of work: ``func(*args, patient=patient_id)`` returns ``{feature: float}``.

    ``func`` must be a module-level function (it is pickled by reference for worker
    processes). ``cost`` orders the work, largest first, to balance the workers.
    """

    patient_id: str
    unit: str
    namespace: str
    key: str
    func: Callable[..., dict[str, float]]
    args: tuple
    cost: float = 1.0


@dataclasses.dataclass
class FeatureResult:
    """What a feature stage produced.

    Attributes
    ----------
    features
        One row per patient whose every unit succeeded; index ``patient_id``; float64 columns.
    errors
        One row per problem: ``patient_id, step, file, message``; patients excluded before
        the stage have step :data:`UPSTREAM_STEP` (see :meth:`add_upstream`).
    n_cached, n_computed
        Patients served entirely from the store / with at least one unit computed in this run
        (a failed patient counts in neither).
    seconds
        Wall-clock time of the stage.
    out_dir
        Store root.
    units_cached, units_computed
        Units of work (a patient's shape, one phase, ...) loaded from / written to the store.
    """

    features: pd.DataFrame
    errors: pd.DataFrame
    n_cached: int
    n_computed: int
    seconds: float
    out_dir: Path | None = None
    units_cached: int = 0
    units_computed: int = 0

    def _upstream_rows(self) -> pd.Series:
        if not len(self.errors):
            return pd.Series(dtype=bool)
        return self.errors["step"] == UPSTREAM_STEP

    @property
    def n_failed(self) -> int:
        """Patients that failed in this stage (those excluded upstream not counted)."""
        if not len(self.errors):
            return 0
        return int(self.errors.loc[~self._upstream_rows(), "patient_id"].nunique())

    @property
    def n_upstream(self) -> int:
        """Patients excluded before this stage (a source row without an ID counts as one)."""
        if not len(self.errors):
            return 0
        rows = self.errors[self._upstream_rows()]
        return int(rows["patient_id"].nunique() + rows["patient_id"].isna().sum())

    @property
    def n_patients(self) -> int:
        """Every patient the stage was told about: done, failed here or excluded upstream."""
        return len(self.features) + self.n_failed + self.n_upstream

    def add_upstream(self, exclusions: Iterable[Problem], table_ids: Iterable[str]) -> None:
        """Put the patients that never reached this stage in its errors table.

        ``exclusions`` are the cohort's problems for patients missing from the stage's input
        (:meth:`~workbench.cohort.table.CohortTable.exclusions`); they become rows with step
        :data:`UPSTREAM_STEP`. A patient of ``table_ids`` (the stage's input) with neither a
        feature row nor an error row gets one saying so, so that no patient vanishes.
        """
        rows = [problem_row(p.patient_id, UPSTREAM_STEP,
                            p.message.removeprefix(f"{UPSTREAM_STEP}: "), p.file)
                for p in exclusions]
        accounted = set(self.features.index) | set(self.errors["patient_id"].dropna())
        rows += [problem_row(pid, "features", "no features and no error recorded for this "
                             "patient (please report this)")
                 for pid in table_ids if pid not in accounted]
        self.errors = errors_frame(rows + self.errors.to_dict("records"))

    def problems(self, stage: str) -> list:
        """The errors of this stage as cohort :class:`~workbench.cohort.table.Problem` rows
        (severity ``error``, step ``<stage>:<step>``), as the run records them in
        ``problems.csv``; rows of patients excluded upstream are left out (their reason is
        recorded where it arose)."""
        def text(value: Any) -> str | None:
            return None if value is None or pd.isna(value) or value == "" else str(value)

        errors = self.errors[~self._upstream_rows()] if len(self.errors) else self.errors
        return [Problem(text(r.get("patient_id")), f"{stage}:{r['step']}", str(r["message"]),
                        text(r.get("file")), "error") for _, r in errors.iterrows()]

    def save(self, path: str | Path) -> Path:
        """Write ``features`` as parquet to ``path`` and ``errors`` to ``<stem>.errors.csv``.

        A parquet file that already holds exactly ``features`` is left as it is (a warm run
        would rewrite every table unchanged: seconds for the 8,576 deep columns, where
        reading and comparing takes one); see :func:`holds_table`."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not holds_table(out, self.features):
            with atomic_path(out) as tmp:
                self.features.to_parquet(tmp)
        self.errors.to_csv(out.with_name(f"{out.stem}.errors.csv"), index=False)
        return out


def holds_table(path: Path, frame: pd.DataFrame) -> bool:
    """Whether the parquet file ``path`` holds exactly what writing ``frame`` would: the same
    columns, index (values and names), float64 dtypes, ``attrs`` (as parquet keeps them:
    JSON, so a tuple reads back as a list) and bit-identical values (``-0.0`` is not ``0.0``
    here). Anything else -- no file, an unreadable one, another dtype -- is ``False``: the
    caller writes."""
    if not path.is_file() or not all(dt == "float64" for dt in frame.dtypes):
        return False
    try:
        attrs = json.loads(json.dumps(frame.attrs))
        existing = pd.read_parquet(path)
    except Exception:  # unreadable or not parquet, attrs parquet cannot keep: write
        return False
    return (list(existing.columns) == list(frame.columns)
            and existing.index.equals(frame.index)
            and list(existing.index.names) == list(frame.index.names)
            and all(dt == "float64" for dt in existing.dtypes)
            and existing.attrs == attrs
            and existing.to_numpy().tobytes() == frame.to_numpy().tobytes())


# --------------------------------------------------------------------------- one unit
def compute_unit(func: Callable[..., dict[str, float]], args: tuple, patient_id: str,
                 unit: str, namespace: str, key: str, store_root: str, meta: dict) -> dict:
    """Compute one unit and store its record atomically (runs in the worker)."""
    start = time.perf_counter()
    values = func(*args, patient=patient_id)
    record = {"key": key, "patient_id": patient_id, "unit": unit, "namespace": namespace,
              "features": {k: float(v) for k, v in values.items()},
              "seconds": round(time.perf_counter() - start, 4), "meta": meta}
    FeatureStore(store_root, namespace).save(key, record)
    return record


# --------------------------------------------------------------------------- the batch
@dataclasses.dataclass
class BatchOutcome:
    """Records by ``(patient_id, unit)``, error rows, and which units were cached."""

    records: dict[tuple[str, str], dict]
    errors: list[dict]
    cached_units: set[tuple[str, str]]
    computed_units: set[tuple[str, str]]


def run_tasks(tasks: Sequence[Task], store_root: str | Path, *, meta: dict, jobs: int = 1,
              scheduler: Any = None, progress: bool = True, desc: str = "features",
              errors: Iterable[dict] = (),
              itk_threads: int = DEFAULT_ITK_THREADS) -> BatchOutcome:
    """Load cached units, compute the rest with :func:`~workbench.batch.run_batch`, collect
    records and errors.

    Parameters
    ----------
    tasks
        Units of work (see :class:`Task`).
    store_root
        Store root folder.
    meta
        Provenance stored in every new record (parameters, library versions...).
    jobs
        Local worker processes when ``scheduler`` is ``None``.
    scheduler
        ``None``, a scheduler address ``"tcp://host:port"``, a ``distributed.Client`` or a Dask
        cluster object (see :mod:`workbench.batch`).
    progress
        Show a tqdm bar (done / cached / failed counts and ETA).
    desc
        Bar label.
    errors
        Error rows found while building the tasks; returned with the others.
    itk_threads
        SimpleITK threads of every unit, wherever it runs (the stage puts it in its keys).
    """
    outcome = BatchOutcome({}, list(errors), set(), set())
    todo: list[Job] = []
    for task in tasks:
        record = FeatureStore(store_root, task.namespace).load(task.key)
        if record is None:
            todo.append(Job(task.patient_id, compute_unit,
                            (task.func, task.args, task.patient_id, task.unit, task.namespace,
                             task.key, str(store_root), meta),
                            step=task.unit, cost=task.cost, tag=task))
        else:
            outcome.records[(task.patient_id, task.unit)] = record
            outcome.cached_units.add((task.patient_id, task.unit))
    log.info("%s: %d units cached, %d to compute", desc, len(outcome.cached_units), len(todo))
    for done in run_batch(todo, workers=jobs, scheduler=scheduler, itk_threads=itk_threads,
                          progress=progress, desc=desc, unit="unit",
                          done_before=len(outcome.cached_units)):
        task = done.job.tag
        ident = (task.patient_id, task.unit)
        if done.ok:
            store = FeatureStore(store_root, task.namespace)
            if not store.exists(task.key):  # a worker that cannot see the store
                store.save(task.key, done.value)
            outcome.records[ident] = done.value
            outcome.computed_units.add(ident)
        else:
            outcome.errors.append(done.problem)
    return outcome


def finish(stage: str, table_ids: Sequence[str], rows: dict[str, dict[str, float]],
           batch: BatchOutcome, units_of: dict[str, list[str]], start: float,
           store_root: Path) -> FeatureResult:
    """Assemble a :class:`FeatureResult`: rows in table order, counts, errors, timing."""
    ids = [pid for pid in table_ids if pid in rows]
    columns: list[str] = []
    seen: set[str] = set()
    for pid in ids:
        for name in rows[pid]:
            if name not in seen:
                seen.add(name)
                columns.append(name)
    data = [[rows[pid].get(c, float("nan")) for c in columns] for pid in ids]
    features = pd.DataFrame(data, columns=columns, dtype="float64",
                            index=pd.Index(ids, name="patient_id"))
    n_computed = sum(1 for pid in ids
                     if any((pid, u) in batch.computed_units for u in units_of[pid]))
    errors = errors_frame(batch.errors)
    seconds = time.perf_counter() - start
    log.info("%s: %d patients (%d computed, %d cached), %d failed, in %.1f s", stage, len(ids),
             n_computed, len(ids) - n_computed, errors["patient_id"].nunique(), seconds)
    return FeatureResult(features=features, errors=errors, n_cached=len(ids) - n_computed,
                         n_computed=n_computed, seconds=seconds, out_dir=Path(store_root),
                         units_cached=len(batch.cached_units),
                         units_computed=len(batch.computed_units))


# --------------------------------------------------------------------------- table helpers
def prepare_table(table: Any, required: Sequence[str]) -> pd.DataFrame:
    """The stage's input table: a DataFrame (or ``.table`` of a PreprocessResult) with unique
    ``patient_id``; missing ``required`` columns are added empty (reported per patient)."""
    df = getattr(table, "table", table)
    if not isinstance(df, pd.DataFrame):
        raise CohortError(f"expected the preprocessing table (a DataFrame), got {type(df)}",
                          step="features")
    if "patient_id" not in df.columns:
        raise CohortError("the preprocessing table has no 'patient_id' column",
                          step="features")
    dup = df["patient_id"][df["patient_id"].duplicated()].tolist()
    if dup:
        raise CohortError(f"duplicate patient_id values {dup[:5]} in the preprocessing table",
                          step="features")
    df = df.copy()
    for col in required:
        if col not in df.columns:
            df[col] = None
    return df.reset_index(drop=True)


def path_cell(row: pd.Series, col: str) -> str | None:
    """A path cell as text, ``None`` when empty."""
    value = row.get(col)
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    return str(value)


def unit_inputs(row: pd.Series, pid: str, phases: Sequence[str], digests: dict
            ) -> tuple[list[dict], dict[str, tuple[str, str]]]:
    """Paths and digests of a patient's mask and phases, or the error rows saying what lacks."""
    errors, inputs = [], {}
    for col, what in [(MASK_COLUMN, "tumour mask")] + [(image_column(p), f"phase '{p}'")
                                                       for p in phases]:
        path = path_cell(row, col)
        if path is None:
            errors.append(problem_row(pid, "load", f"no {what}: column '{col}' is empty "
                                    "(missing from the cohort, or failed preprocessing)"))
            continue
        digest = digests.get(path)
        if not Path(path).exists():
            errors.append(problem_row(pid, "read", f"{what} file not found", path))
            continue
        if not isinstance(digest, str):
            msg = digest.message if isinstance(digest, WorkbenchError) else str(digest)
            errors.append(problem_row(pid, "read", f"cannot read {what}: {msg}", path))
            continue
        inputs[col] = (path, digest)
    return errors, inputs


def patients_with_inputs(df: pd.DataFrame, phases: Sequence[str]
                         ) -> tuple[list[dict], list[tuple[str, pd.Series, dict]]]:
    """Hash every input once, then split patients into error rows and ready ones.

    Returns the error rows (see :func:`unit_inputs`) and ``(patient_id, row, inputs)`` for
    each patient whose mask and phases are all present and readable.
    """
    cols = [image_column(p) for p in phases] + [MASK_COLUMN]
    digests = digest_many(v for _, r in df.iterrows() for v in (path_cell(r, c) for c in cols)
                          if v)
    errors, ready = [], []
    for _, row in df.iterrows():
        pid = str(row["patient_id"])
        found, inputs = unit_inputs(row, pid, phases, digests)
        if found:
            errors += found
        else:
            ready.append((pid, row, inputs))
    return errors, ready

