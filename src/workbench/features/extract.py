"""Cohort-level driver shared by the feature stages: cache look-up, parallel execution, errors.

A stage (:func:`workbench.features.radiomics.extract_radiomics`,
:func:`workbench.features.kinetic.extract_kinetic`) turns its table into :class:`Task` objects,
one per unit of work with its content-addressed key (see :mod:`workbench.features.store`).
:func:`run_tasks` loads every unit already in the store, runs the others and writes each
record atomically as soon as it finishes, so a killed run resumes where it stopped. A unit that
fails becomes an errors-table row (``patient_id, step, file, message``); the batch goes on.

Where the work runs
-------------------
``jobs=1``
    In this process, one unit after the other.
``jobs=N`` (``-1`` = one per CPU)
    N joblib (loky) worker processes on this machine; SimpleITK threads are divided among them.
``scheduler="tcp://host:8786"``, a ``distributed.Client`` or a Dask cluster object
    Each unit is submitted with ``client.submit`` and collected with ``as_completed``; ``jobs``
    is then ignored. Workers need the same Python environment and must see the input images
    and the store folder at the same paths (a shared filesystem); they write the records.

A multi-machine Dask cluster, by hand::

    # on the scheduler host
    dask scheduler --port 8786
    # on every compute host (same venv, same shared paths); one thread per process:
    # PyRadiomics is single-threaded C, so processes are what scale
    dask worker tcp://scheduler-host:8786 --nworkers 8 --nthreads 1 --memory-limit 4GiB
    # then, anywhere
    extract_radiomics(table, "data/interim/features", params_path=..., scheduler="tcp://scheduler-host:8786")

On SLURM with ``dask-jobqueue`` (not a dependency of the workbench; ``pip install
dask-jobqueue`` on the login node)::

    from dask_jobqueue import SLURMCluster
    from distributed import Client

    cluster = SLURMCluster(queue="cpu", account="my-project", cores=8, processes=8,
                           memory="32GB", walltime="02:00:00",
                           python="/path/to/.venv/bin/python",
                           job_extra_directives=["--constraint=intel"])
    cluster.scale(jobs=10)                      # 10 SLURM jobs x 8 single-threaded workers
    with Client(cluster) as client:
        result = extract_radiomics(table, "/shared/features", params_path=..., scheduler=client)

Results are identical whichever way the work runs (a test checks Dask against the local run).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.cohort.table import MASK_COLUMN, image_column
from workbench.errors import CohortError, WorkbenchError
from workbench.features.store import FeatureStore, error_row, errors_frame

log = logging.getLogger(__name__)


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
        One row per problem: ``patient_id, step, file, message``.
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

    @property
    def n_failed(self) -> int:
        return int(self.errors["patient_id"].nunique()) if len(self.errors) else 0

    def problems(self, stage: str) -> list:
        """The errors as cohort :class:`~workbench.cohort.table.Problem` rows (severity
        ``error``, step ``<stage>:<step>``), as the run records them in ``problems.csv``."""
        from workbench.cohort.table import Problem

        def text(value: Any) -> str | None:
            return None if value is None or pd.isna(value) or value == "" else str(value)

        return [Problem(text(r.get("patient_id")), f"{stage}:{r['step']}", str(r["message"]),
                        text(r.get("file")), "error") for _, r in self.errors.iterrows()]

    def save(self, path: str | Path) -> Path:
        """Write ``features`` as parquet to ``path`` and ``errors`` to ``<stem>.errors.csv``."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.features.to_parquet(out)
        self.errors.to_csv(out.with_name(f"{out.stem}.errors.csv"), index=False)
        return out


# --------------------------------------------------------------------------- one unit
def execute_task(func: Callable[..., dict[str, float]], args: tuple, patient_id: str, unit: str,
                 namespace: str, key: str, store_root: str, meta: dict,
                 threads: int | None = None) -> dict:
    """Run one unit, store its record atomically, and return an outcome; never raises.

    Outcome: ``{"status": "computed", "record": {...}}`` or ``{"status": "failed",
    "error": {patient_id, step, file, message}, "traceback": str | None}``.
    """
    if threads:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    start = time.perf_counter()
    try:
        values = func(*args, patient=patient_id)
        record = {"key": key, "patient_id": patient_id, "unit": unit, "namespace": namespace,
                  "features": {k: float(v) for k, v in values.items()},
                  "seconds": round(time.perf_counter() - start, 4), "meta": meta}
        FeatureStore(store_root, namespace).save(key, record)
        return {"status": "computed", "record": record}
    except WorkbenchError as err:
        cause = err.__cause__
        tb = None
        if cause is not None and not isinstance(cause, WorkbenchError):
            tb = "".join(traceback.format_exception(cause))
        return {"status": "failed", "traceback": tb,
                "error": error_row(patient_id, err.step or unit, err.message, err.path)}
    except Exception as exc:  # a bug or an unforeseen library failure: still per patient
        return {"status": "failed", "traceback": traceback.format_exc(),
                "error": error_row(patient_id, unit, f"unexpected {type(exc).__name__}: {exc}")}


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
              errors: Iterable[dict] = ()) -> BatchOutcome:
    """Load cached units, compute the rest (locally or on Dask), collect records and errors.

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
        cluster object (see module docstring).
    progress
        Show a tqdm bar (done / cached / failed counts and ETA).
    desc
        Bar label.
    errors
        Error rows found while building the tasks; returned with the others.
    """
    from tqdm.auto import tqdm

    outcome = BatchOutcome({}, list(errors), set(), set())
    todo: list[Task] = []
    for task in tasks:
        record = FeatureStore(store_root, task.namespace).load(task.key)
        if record is None:
            todo.append(task)
        else:
            outcome.records[(task.patient_id, task.unit)] = record
            outcome.cached_units.add((task.patient_id, task.unit))
    todo.sort(key=lambda t: -t.cost)
    counts = {"done": 0, "failed": 0, "cached": len(outcome.cached_units)}
    log.info("%s: %d units cached, %d to compute", desc, counts["cached"], len(todo))
    with tqdm(total=len(tasks), desc=desc, unit="unit", disable=not progress,
              initial=counts["cached"]) as bar:
        bar.set_postfix(counts, refresh=False)
        for task, result in _execute_all(todo, str(store_root), meta, jobs, scheduler):
            ident = (task.patient_id, task.unit)
            if result["status"] == "computed":
                counts["done"] += 1
                record = result["record"]
                store = FeatureStore(store_root, task.namespace)
                if not store.exists(task.key):  # a worker that cannot see the store
                    store.save(task.key, record)
                outcome.records[ident] = record
                outcome.computed_units.add(ident)
            else:
                counts["failed"] += 1
                outcome.errors.append(result["error"])
                log.warning("[patient %s] %s: %s (%s)", task.patient_id,
                            result["error"]["step"], result["error"]["message"],
                            result["error"]["file"])
                if result.get("traceback"):
                    log.debug("traceback for patient %s:\n%s", task.patient_id,
                              result["traceback"])
            bar.set_postfix(counts, refresh=False)
            bar.update()
    return outcome


def _execute_all(todo: list[Task], store_root: str, meta: dict, jobs: int,
                 scheduler: Any) -> Iterator[tuple[Task, dict]]:
    if not todo:
        return
    if scheduler is not None:
        yield from _execute_dask(todo, store_root, meta, scheduler)
        return
    n_jobs = n_workers(jobs, len(todo))
    if n_jobs == 1:
        for task in todo:
            yield task, execute_task(task.func, task.args, task.patient_id, task.unit,
                                     task.namespace, task.key, store_root, meta)
        return
    from joblib import Parallel, delayed

    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1)(
        delayed(_indexed)(i, t.func, t.args, t.patient_id, t.unit, t.namespace, t.key,
                          store_root, meta, threads) for i, t in enumerate(todo))
    for index, result in results:
        yield todo[index], result


def _indexed(index: int, *args: Any) -> tuple[int, dict]:
    return index, execute_task(*args)


def _execute_dask(todo: list[Task], store_root: str, meta: dict,
                  scheduler: Any) -> Iterator[tuple[Task, dict]]:
    from distributed import Client, as_completed

    if isinstance(scheduler, Client):
        client, owned = scheduler, False
    else:  # an address or a cluster object
        client, owned = Client(scheduler), True
    try:
        futures, by_key = [], {}
        for task in todo:
            fut = client.submit(execute_task, task.func, task.args, task.patient_id, task.unit,
                                task.namespace, task.key, store_root, meta, 1, pure=False,
                                priority=int(task.cost),
                                key=f"{task.namespace}-{task.patient_id}-{task.key[:16]}")
            futures.append(fut)
            by_key[fut.key] = task
        for fut in as_completed(futures):
            task = by_key[fut.key]
            try:
                result = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not unpickle
                result = {"status": "failed", "traceback": traceback.format_exc(),
                          "error": error_row(task.patient_id, task.unit,
                                             f"Dask task failed: {type(exc).__name__}: {exc}")}
            yield task, result
    finally:
        if owned:
            client.close()


def n_workers(jobs: int, n_tasks: int) -> int:
    """Worker count for ``jobs`` (``-1`` = every CPU, ``-2`` = all but one...)."""
    cpus = os.cpu_count() or 1
    n = cpus if jobs in (-1, 0) else (max(1, cpus + 1 + jobs) if jobs < -1 else jobs)
    return max(1, min(n, n_tasks))


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
            errors.append(error_row(pid, "load", f"no {what}: column '{col}' is empty "
                                    "(missing from the cohort, or failed preprocessing)"))
            continue
        digest = digests.get(path)
        if not Path(path).exists():
            errors.append(error_row(pid, "read", f"{what} file not found", path))
            continue
        if not isinstance(digest, str):
            msg = digest.message if isinstance(digest, WorkbenchError) else str(digest)
            errors.append(error_row(pid, "read", f"cannot read {what}: {msg}", path))
            continue
        inputs[col] = (path, digest)
    return errors, inputs


def patients_with_inputs(df: pd.DataFrame, phases: Sequence[str]
                         ) -> tuple[list[dict], list[tuple[str, pd.Series, dict]]]:
    """Hash every input once, then split patients into error rows and ready ones.

    Returns the error rows (see :func:`unit_inputs`) and ``(patient_id, row, inputs)`` for
    each patient whose mask and phases are all present and readable.
    """
    from workbench.features.store import digest_many

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

