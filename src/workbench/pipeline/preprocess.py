"""Preprocess a whole cohort into a content-addressed cache (per patient: :mod:`workbench.batch`).

Layout of ``out_dir``::

    out_dir/
      <cache_key>/            one folder per patient input set + settings
        image_<phase>.nii.gz  z-scored phases on the 1 mm grid (float32)
        mask.nii.gz           tumour mask on the same grid (uint8)
        done.json             record + provenance; its presence marks the folder complete

``cache_key`` hashes the *contents* of every input file (a DICOM folder: every file in it and
the temporal selector), the settings' :meth:`~PreprocessSettings.key` (SimpleITK's thread
count included), the SimpleITK version and the source of the code that computes the images
(:data:`PREPROCESS_CODE`, by :func:`~workbench.hashing.code_digest`). A rerun with the same inputs and settings recomputes nothing; renaming or moving the
raw data does not invalidate the cache, editing a file or a setting does. Each folder is built
under a temporary name and renamed into place in one step, with ``done.json`` written last
inside it, so a killed run never leaves a half patient that looks complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import SimpleITK as sitk

from workbench.batch import Job, n_workers, run_batch
from workbench.cohort.table import MASK_COLUMN, CohortTable, Problem, image_column, problems_frame
from workbench.errors import ImageError, WorkbenchError
from workbench.hashing import code_digest, digest_many, input_digest
from workbench.imaging.io import write_image
from workbench.imaging.preprocess import PreprocessSettings, preprocess_patient

log = logging.getLogger(__name__)

DONE_FILE = "done.json"
#: Code whose source shapes the preprocessed images (part of every cache key).
PREPROCESS_CODE = ("imaging", "pipeline/preprocess")


@dataclasses.dataclass
class PreprocessResult:
    """What :func:`preprocess_cohort` produced.

    Attributes
    ----------
    table
        One row per preprocessed patient: ``patient_id``, ``image_<phase>`` and ``mask``
        (paths of the preprocessed NIfTI files), ``cache_key``, ``cached`` and the record
        columns of :func:`~workbench.imaging.preprocess.preprocess_patient`.
    problems
        One :class:`~workbench.cohort.table.Problem` per patient excluded: failed here, or
        excluded upstream (at the cohort table, by QC, or without images; step
        ``preprocess``, message ``excluded upstream: <step>: <reason>``).
    n_cached, n_computed
        Patients found in the cache / computed in this run.
    n_failed, n_upstream
        Patients that failed here / were excluded before this stage (a row of the source
        without an ID counts as one).
    """

    table: pd.DataFrame
    problems: list[Problem]
    n_cached: int
    n_computed: int
    out_dir: Path
    n_failed: int = 0
    n_upstream: int = 0

    @property
    def n_patients(self) -> int:
        """Every patient of the source: done, failed here or excluded upstream."""
        return len(self.table) + self.n_failed + self.n_upstream

    def problems_frame(self) -> pd.DataFrame:
        return problems_frame(self.problems)


# --------------------------------------------------------------------------- cache key
def cache_key(paths: Mapping[str, str], mask_path: str, settings: PreprocessSettings,
              mask_space: str = "grid", code: str | None = None,
              digests: Mapping[str, str] | None = None) -> str:
    """Key of one patient's output folder (see module docstring); 24 hex digits.

    ``code`` is :func:`preprocess_code_digest`, computed here when not given (a cohort run
    computes it once, so every patient of the run is keyed by the same code). ``digests``
    maps input specs to their :func:`~workbench.hashing.input_digest` when already known (a
    cohort run hashes every input once, in parallel); the others are hashed here."""
    code = preprocess_code_digest() if code is None else code
    digests = digests or {}
    h = hashlib.sha256()
    h.update(f"settings={settings.key()};sitk={sitk.Version_VersionString()};"
             f"code={code}".encode())
    if mask_space != "grid":
        h.update(f";mask_space={mask_space}".encode())
    seen: dict[str, str] = {}
    for name, spec in list(paths.items()) + [(MASK_COLUMN, mask_path)]:
        what = "tumour mask" if name == MASK_COLUMN else f"phase '{name}'"
        digest = digests.get(spec) or input_digest(spec, what=what)
        if digest in seen:  # as cohort QC: one file is not two acquisitions
            raise ImageError(f"{what} and {seen[digest]} are the same input (identical "
                             "content); each phase must be its own acquisition: fix the cohort "
                             "table", step="read", path=spec)
        seen[digest] = what
        h.update(f";{name}=".encode() + digest.encode())
    return h.hexdigest()[:24]


def preprocess_code_digest() -> str:
    """:func:`~workbench.hashing.code_digest` of :data:`PREPROCESS_CODE`."""
    return code_digest(PREPROCESS_CODE)


# --------------------------------------------------------------------------- one patient
def _output_files(phases: list[str]) -> dict[str, str]:
    files = {image_column(p): f"{image_column(p)}.nii.gz" for p in phases}
    files[MASK_COLUMN] = "mask.nii.gz"
    return files


def _load_done(folder: Path, phases: list[str]) -> dict | None:
    """The folder's ``done.json`` if it is complete (every output present), else ``None``."""
    done = folder / DONE_FILE
    if not done.is_file():
        return None
    try:
        meta = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    files = _output_files(phases)
    if meta.get("files") != files or not all((folder / f).is_file() for f in files.values()):
        return None
    return meta


def _row(pid: str, folder: Path, meta: dict, cached: bool) -> dict:
    row = {"patient_id": pid}
    row.update({col: str(folder / name) for col, name in meta["files"].items()})
    row["cache_key"] = folder.name
    row["cached"] = cached
    row.update({k: v for k, v in meta["record"].items() if k != "patient_id"})
    return row


def _process_one(pid: str, paths: dict[str, str], mask_path: str, settings: PreprocessSettings,
                 out_dir: Path, mask_space: str = "grid", code: str | None = None,
                 max_voxels: int | None = None, key: str | None = None) -> dict:
    """Preprocess one patient into the cache (a :func:`~workbench.batch.run_batch` job);
    returns its table row. ``key``: its :func:`cache_key`, when already computed."""
    phases = list(paths)
    code = preprocess_code_digest() if code is None else code
    key = cache_key(paths, mask_path, settings, mask_space, code) if key is None else key
    folder = out_dir / key
    meta = _load_done(folder, phases)
    if meta is not None:
        return _row(pid, folder, meta, True)
    result = preprocess_patient(paths, mask_path, settings, patient=pid, mask_space=mask_space,
                                max_voxels=max_voxels)
    tmp = out_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        files = _output_files(phases)
        for phase, image in result.images.items():
            write_image(image, tmp / files[image_column(phase)])
        write_image(result.mask, tmp / files[MASK_COLUMN])
        meta = {"cache_key": key, "settings": dataclasses.asdict(settings),
                "settings_key": settings.key(), "inputs": {**paths, MASK_COLUMN: mask_path},
                "files": files, "record": result.record, "simpleitk": _sitk_version(),
                "code": code}
        (tmp / DONE_FILE).write_text(json.dumps(meta, indent=1, default=str))
        if folder.exists():  # stale incomplete folder from an older run
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError as exc:
            if _load_done(folder, phases) is None:  # not a concurrent identical patient
                raise WorkbenchError(f"cannot move the result into the cache: {exc}",
                                     patient=pid, step="write", path=folder) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _row(pid, folder, meta, False)


def _sitk_version() -> str:
    return sitk.Version_VersionString()


# --------------------------------------------------------------------------- cohort
def _known_keys(tasks: list[tuple[str, dict[str, str], str, str]], settings: PreprocessSettings,
                code: str) -> list[tuple[str, dict[str, str], str, str, str | None]]:
    """Every task with its :func:`cache_key`, all inputs hashed at once (threads; the
    digest cache, when one is active, spares unchanged files); ``None`` where an input
    cannot be hashed or the key is refused: the patient's job computes it again and reports
    why, as it always has."""
    digests = digest_many(spec for _, paths, mask, _ in tasks for spec in [*paths.values(), mask])
    known = {spec: d for spec, d in digests.items() if isinstance(d, str)}
    out = []
    for pid, paths, mask, space in tasks:
        try:
            key = cache_key(paths, mask, settings, space, code, digests=known)
        except WorkbenchError:
            key = None
        out.append((pid, paths, mask, space, key))
    return out


def preprocess_cohort(cohort: CohortTable, out_dir: str | Path, *,
                      settings: PreprocessSettings | None = None, jobs: int = 1,
                      scheduler: Any = None, progress: bool = True,
                      max_voxels: int | None = None) -> PreprocessResult:
    """Preprocess every imaging-ready patient of ``cohort`` into a content-addressed cache.

    Parameters
    ----------
    cohort
        Validated cohort; only :meth:`CohortTable.imaging_ready` patients are processed, the
        others are reported as skipped with the reason recorded at validation.
    out_dir
        Cache folder (see module docstring), e.g. ``data/interim/preprocessed``.
    settings
        Preprocessing parameters (default :class:`PreprocessSettings()`).
    jobs
        Patients processed in parallel (joblib processes); ``-1`` = one per CPU. Each uses
        ``settings.itk_threads`` SimpleITK threads, so the images do not depend on ``jobs``.
    scheduler
        A Dask scheduler address, client or cluster instead of local processes (see
        :mod:`workbench.batch`; the workers must see ``out_dir``).
    progress
        Show a tqdm bar with done / cached / failed counts.
    max_voxels
        Largest image accepted, checked from each header before reading (``None``:
        :data:`~workbench.imaging.header.DEFAULT_MAX_VOXELS`; the run config's
        ``limits.max_voxels``). Refuses inputs, never changes a result: not in the cache key.

    Returns
    -------
    PreprocessResult
        A failing patient never stops the batch: it becomes a problem row.
    """
    settings = PreprocessSettings() if settings is None else settings
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ready = cohort.imaging_ready()
    problems = cohort.exclusions(ready["patient_id"], "preprocess")
    n_upstream = len(problems)
    phases = list(cohort.phases)
    has_space = "mask_space" in ready.columns
    tasks = [(str(r["patient_id"]), {p: str(r[image_column(p)]) for p in phases},
              str(r[MASK_COLUMN]),
              str(r["mask_space"]) if has_space and isinstance(r["mask_space"], str) else "grid")
             for _, r in ready.iterrows()]
    start = time.perf_counter()
    log.info("preprocessing %d patients (%d skipped) into %s with %d job(s), settings %s",
             len(tasks), len(problems), out, n_workers(jobs, len(tasks)), settings.key())
    code = preprocess_code_digest()
    rows, counts = [], {"computed": 0, "cached": 0, "failed": 0}
    work = []
    for pid, paths, mask, space, key in _known_keys(tasks, settings, code):
        meta = None if key is None else _load_done(out / key, list(paths))
        if meta is not None:  # in the cache: no worker needed
            rows.append(_row(pid, out / key, meta, True))
            counts["cached"] += 1
            continue
        work.append(Job(pid, _process_one, (pid, paths, mask, settings, out, space, code,
                                            max_voxels, key), step="preprocess"))
    for outcome in run_batch(work, workers=jobs, scheduler=scheduler,
                             itk_threads=settings.itk_threads, progress=progress,
                             desc="preprocess", done_before=counts["cached"]):
        if outcome.ok:
            rows.append(outcome.value)
            counts["cached" if outcome.value["cached"] else "computed"] += 1
        else:
            counts["failed"] += 1
            p = outcome.problem
            problems.append(Problem(p["patient_id"], p["step"], p["message"], p["file"]))

    order = {task[0]: i for i, task in enumerate(tasks)}
    rows.sort(key=lambda r: order[r["patient_id"]])
    lead = ["patient_id"] + [image_column(p) for p in phases] + [MASK_COLUMN, "cache_key",
                                                                  "cached"]
    table = pd.DataFrame(rows)
    table = table[lead + [c for c in table.columns if c not in lead]] if rows else \
        pd.DataFrame(columns=lead)
    log.info("preprocessing done in %.1f s: %d computed, %d cached, %d failed, %d skipped",
             time.perf_counter() - start, counts["computed"], counts["cached"],
             counts["failed"], n_upstream)
    return PreprocessResult(table=table, problems=problems, n_cached=counts["cached"],
                            n_computed=counts["computed"], out_dir=out,
                            n_failed=counts["failed"], n_upstream=n_upstream)
