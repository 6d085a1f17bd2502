"""The one per-patient runner: failure isolation, progress, local processes or Dask.

Every per-patient loop of the workbench — image QC, synthetic-cohort generation,
preprocessing, radiomics, kinetics and the deep crops — hands its work to :func:`run_batch` as
:class:`Job` objects. Each job runs under the same guard: a
:class:`~workbench.errors.WorkbenchError` becomes a problem row naming the patient, the step
and the file; any other exception becomes an "unexpected" problem row with its traceback
logged; the batch always goes on. The caller decides what a failure means for its stage.

Where the work runs
-------------------
``workers=1``
    In this process, one job after the other.
``workers=N`` (``-1`` = one per CPU, ``-2`` = all but one...)
    N joblib (loky) worker processes on this machine.
``scheduler="tcp://host:8786"``, a ``distributed.Client`` or a Dask cluster object
    Each job is submitted with ``client.submit`` and collected with ``as_completed``;
    ``workers`` is then ignored. Workers need the same Python environment and must see the
    input files at the same paths (a shared filesystem).

A multi-machine Dask cluster, by hand::

    dask scheduler --port 8786                       # on the scheduler host
    dask worker tcp://scheduler-host:8786 --nworkers 8 --nthreads 1 --memory-limit 4GiB
    workbench extract radiomics --cohort C --out DIR --scheduler tcp://scheduler-host:8786

(PyRadiomics is single-threaded C, so processes, not threads, are what scale.)

SimpleITK threads and identical results
---------------------------------------
Some ITK filters split their work by thread and add the partial results in a different order
for a different thread count: N4's B-spline fit gives a bias field that differs in the last
bits between 1 and 2 threads; after z-scoring and binning at 0.1 SD, ``--jobs 1`` and
``--jobs 2`` on 2 cores (2 and 1 threads per patient) gave 3,505 different values among the
17,020 radiomics features of 10 synthetic patients (up to 0.7 %), and 99 of 170 kinetic ones.
(Otsu body masks, resampling and z-score statistics were bit-identical.) So
``itk_threads`` pins SimpleITK's thread count to a fixed value in every job, whichever way the
work runs, instead of dividing the machine's CPUs among the workers: results then depend on
that configured value (recorded in every cache key and the run manifest), never on
``--jobs``, the scheduler or the machine's CPU count.

On SLURM, with
``dask-jobqueue`` (not a dependency; ``pip install dask-jobqueue``)::

    from dask_jobqueue import SLURMCluster
    from distributed import Client

    cluster = SLURMCluster(queue="cpu", account="my-project", cores=8, processes=8,
                           memory="32GB", walltime="02:00:00",
                           python="/path/to/.venv/bin/python")
    cluster.scale(jobs=10)                      # 10 SLURM jobs x 8 single-threaded workers
    with Client(cluster) as client:
        result = extract_radiomics(table, "/shared/features", params_path=..., scheduler=client)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import SimpleITK as sitk
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_ITK_THREADS", "Job", "Outcome", "n_workers", "pinned_itk_threads",
           "problem_row", "run_batch"]

#: SimpleITK threads per job unless configured (``itk_threads``): one, because results must
#: not depend on the machine, and on a busy machine more threads per job buy little.
DEFAULT_ITK_THREADS = 1


def problem_row(patient_id: str | None, step: str, message: str,
                file: str | None = None) -> dict[str, str | None]:
    """One problem: ``patient_id, step, file, message`` (the errors-table row)."""
    return {"patient_id": patient_id, "step": step, "file": file, "message": message}


@dataclasses.dataclass(frozen=True)
class Job:
    """One piece of per-patient work: ``func(*args, **kwargs)``.

    ``func`` must be a module-level function (it is pickled by reference for worker
    processes). ``step`` names the work in a problem row when the error does not name its own
    step; ``cost`` orders the work, largest first, to balance the workers; ``tag`` is any
    caller data carried back with the outcome.
    """

    patient_id: str
    func: Callable[..., Any]
    args: tuple = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    step: str = "run"
    cost: float = 1.0
    tag: Any = None


@dataclasses.dataclass
class Outcome:
    """What one :class:`Job` gave: its value, or the problem row saying why it failed."""

    job: Job
    value: Any = None
    problem: dict[str, str | None] | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


_PIN_LOCK = threading.Lock()
_pin: dict[str, Any] = {"depth": 0, "threads": None, "saved": None}


@contextlib.contextmanager
def pinned_itk_threads(threads: int | None) -> Iterator[None]:
    """Run the block with SimpleITK's global default thread count set to ``threads``, and
    restore the previous count when the last pinned block of this process ends.

    ``None`` leaves the count alone. Pinned blocks may nest and may run at once in several
    threads of one process (a Dask worker with several threads) when they ask for the same
    count; asking for another count while one is pinned raises :class:`RuntimeError`, because
    one of the two computations would silently run with the wrong count.
    """
    if threads is None:
        yield
        return
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"itk_threads must be an integer >= 1, got {threads!r}")
    with _PIN_LOCK:
        if _pin["depth"] and _pin["threads"] != threads:
            raise RuntimeError(f"SimpleITK threads are pinned to {_pin['threads']} in this "
                               f"process; cannot pin them to {threads} at the same time")
        if not _pin["depth"]:
            _pin["saved"] = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
            _pin["threads"] = threads
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
        _pin["depth"] += 1
    try:
        yield
    finally:
        with _PIN_LOCK:
            _pin["depth"] -= 1
            if not _pin["depth"]:
                sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(_pin["saved"])
                _pin["threads"] = None


def run_guarded(func: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any],
                patient_id: str, step: str, threads: int | None = None
                ) -> tuple[Any, dict | None, str | None, bool]:
    """Run one job and return ``(value, problem, traceback, unexpected)``; never raises.

    ``threads`` pins SimpleITK's thread count for the job (:func:`pinned_itk_threads`).
    ``unexpected`` marks a failure that is not a :class:`~workbench.errors.WorkbenchError`
    (a bug or an unforeseen library failure): its traceback is logged as an error, where a
    workbench error's cause is only debug detail."""
    try:
        with pinned_itk_threads(threads):
            return func(*args, **kwargs), None, None, False
    except WorkbenchError as err:
        cause = err.__cause__
        tb = None
        if cause is not None and not isinstance(cause, WorkbenchError):
            tb = "".join(traceback.format_exception(cause))
        return None, problem_row(patient_id, err.step or step, err.message, err.path), tb, False
    except Exception as exc:  # a bug or an unforeseen library failure: still per patient
        return (None, problem_row(patient_id, step, f"unexpected {type(exc).__name__}: {exc}"),
                traceback.format_exc(), True)


def _indexed(index: int, *args: Any) -> tuple[int, tuple]:
    return index, run_guarded(*args)


def n_workers(jobs: int, n_tasks: int) -> int:
    """Worker count for ``jobs`` (``-1`` / ``0`` = every CPU, ``-2`` = all but one...),
    never more than the number of tasks."""
    cpus = os.cpu_count() or 1
    n = cpus if jobs in (-1, 0) else (max(1, cpus + 1 + jobs) if jobs < -1 else jobs)
    return max(1, min(n, n_tasks))


def run_batch(jobs: Sequence[Job], *, workers: int = 1, scheduler: Any = None,
              itk_threads: int | None = None, progress: bool = True, desc: str = "batch",
              unit: str = "patient", done_before: int = 0) -> Iterator[Outcome]:
    """Run every job, yielding each :class:`Outcome` as it completes (any order).

    Parameters
    ----------
    jobs
        The work; run largest ``cost`` first.
    workers
        Local worker processes when ``scheduler`` is ``None`` (see the module docstring).
    scheduler
        ``None``, a Dask scheduler address, a ``distributed.Client`` or a cluster object.
    itk_threads
        SimpleITK threads of every job, wherever it runs (in this process, a local worker or
        a Dask worker); ``None`` leaves SimpleITK's setting alone. Pass a fixed value for any
        work whose results matter (see "SimpleITK threads" in the module docstring).
    progress
        Show a tqdm bar with done / failed counts.
    desc, unit
        Bar label and unit.
    done_before
        Work already done (e.g. served from a cache): the bar starts there and shows it as
        ``cached``.
    """
    todo = sorted(jobs, key=lambda j: -j.cost)
    counts = {"done": 0, "failed": 0}
    if done_before:
        counts["cached"] = done_before
    with tqdm(total=len(todo) + done_before, initial=done_before, desc=desc, unit=unit,
              disable=not progress) as bar:
        bar.set_postfix(counts, refresh=False)
        for job, (value, problem, tb, unexpected) in _execute(todo, workers, scheduler,
                                                              itk_threads):
            if problem is None:
                counts["done"] += 1
            else:
                counts["failed"] += 1
                log.warning("[patient %s] %s: %s (%s)", problem["patient_id"], problem["step"],
                            problem["message"], problem["file"])
                if tb:
                    log.log(logging.ERROR if unexpected else logging.DEBUG,
                            "traceback for patient %s:\n%s", job.patient_id, tb)
            bar.set_postfix(counts, refresh=False)
            bar.update()
            yield Outcome(job, value, problem, tb)


def _execute(todo: list[Job], workers: int, scheduler: Any,
             threads: int | None) -> Iterator[tuple[Job, tuple]]:
    if not todo:
        return
    if scheduler is not None:
        yield from _execute_dask(todo, scheduler, threads)
        return
    n_jobs = n_workers(workers, len(todo))
    if n_jobs == 1:
        for job in todo:
            yield job, run_guarded(job.func, job.args, job.kwargs, job.patient_id, job.step,
                                   threads)
        return
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1)(
        delayed(_indexed)(i, j.func, j.args, j.kwargs, j.patient_id, j.step, threads)
        for i, j in enumerate(todo))
    for index, result in results:
        yield todo[index], result


def _execute_dask(todo: list[Job], scheduler: Any,
                  threads: int | None) -> Iterator[tuple[Job, tuple]]:
    from distributed import Client, as_completed

    if isinstance(scheduler, Client):
        client, owned = scheduler, False
    else:  # an address or a cluster object
        client, owned = Client(scheduler), True
    try:
        futures, by_key = [], {}
        for i, job in enumerate(todo):
            fut = client.submit(run_guarded, job.func, job.args, job.kwargs, job.patient_id,
                                job.step, threads, pure=False,
                                priority=int(job.cost),
                                key=f"{job.step}-{job.patient_id}-{i}-{uuid.uuid4().hex[:8]}")
            futures.append(fut)
            by_key[fut.key] = job
        for fut in as_completed(futures):
            job = by_key[fut.key]
            try:
                result = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not unpickle
                result = (None, problem_row(job.patient_id, job.step,
                                            f"Dask task failed: {type(exc).__name__}: {exc}"),
                          traceback.format_exc(), True)
            yield job, result
    finally:
        if owned:
            client.close()
