"""Cohort QC: read every image of every patient and report all that is wrong.

``workbench cohort check COHORT`` runs :func:`check_cohort` and prints
:func:`format_report`: counts, label balance, grid statistics and one line per problem
(patient, step, file, message). Nothing stops at the first bad patient, nor at the first
problem of a patient: every unreadable file, every phase off the grid and every phase that is
another phase's file again is its own line, naming that file.

What is checked (each finding one :class:`~workbench.cohort.table.Problem`: step, severity):

* reading (``read``, error): what :func:`~workbench.imaging.io.read_image` refuses (missing,
  not a regular file, not a 3-D scalar volume, over the voxel cap, unusable spacing,
  truncated, undecodable), and one input given for two images;
* values (``values``, error): NaN or infinite voxels;
* NIfTI header sanity (``header``, warning: the patient stays), from the raw header of
  ``.nii`` / ``.nii.gz`` files (:func:`~workbench.imaging.nifti_header.nifti_header_warnings`):
  an empty header (qform_code and sform_code 0, pixdim 1 × 1 × 1: spacing in voxels, not
  mm), a qform and sform that disagree in spacing, origin or direction (both values, and which
  one SimpleITK used), and a slice axis stored first (array axis i with the largest spacing
  and not pointing superior-inferior: an axial acquisition stored as (slices, rows, cols));
* the mask (``mask``, error): aligned to the first phase when it is in another space, binary
  and not empty;
* geometry (``geometry``, error): every image on the first phase's grid.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from workbench.batch import Job, run_batch
from workbench.cohort.table import MASK_COLUMN, CohortTable, Problem, image_column
from workbench.errors import WorkbenchError
from workbench.files import atomic_write_text
from workbench.hashing import (
    code_digest,
    digest_many,
    identical_inputs,
    json_digest,
    split_selector,
)
from workbench.imaging.geometry import align_mask, check_mask, describe, grid_mismatches
from workbench.imaging.io import read_image
from workbench.imaging.nifti_header import nifti_header_warnings

log = logging.getLogger(__name__)


@dataclass
class QCReport:
    """Result of :func:`check_cohort`."""

    cohort: CohortTable
    images: pd.DataFrame  # one row per patient: size, spacing, mask voxels, tumour volume
    problems: list[Problem] = field(default_factory=list)

    @property
    def all_problems(self) -> list[Problem]:
        return list(self.cohort.problems) + list(self.problems)

    @property
    def ok_patients(self) -> list[str]:
        bad = {p.patient_id for p in self.all_problems if p.severity == "error"}
        ready = set(self.cohort.imaging_ready()["patient_id"])
        return [pid for pid in self.cohort.patient_ids if pid in ready and pid not in bad]


def check_patient(row: pd.Series, phases: tuple[str, ...],
                  max_voxels: int | None = None) -> tuple[dict, list[Problem]]:
    """Read one patient's phases and mask and check geometry, mask and values.

    ``max_voxels`` is passed to :func:`~workbench.imaging.io.read_image` (``None``: its
    default).
    """
    pid = str(row["patient_id"])
    problems: list[Problem] = []
    specs = {f"phase '{phase}'": str(row[image_column(phase)]) for phase in phases}
    mask_spec = row[MASK_COLUMN]
    specs["tumour mask"] = str(mask_spec)
    for name, earlier, how in identical_inputs(specs):
        problems.append(Problem(pid, "read", f"{name} and {earlier} are the same input "
                                f"({how}: {specs[earlier]}); each phase must be its own "
                                "acquisition: fix the cohort table", specs[name]))
    images = {}
    for phase in phases:
        spec = row[image_column(phase)]
        try:
            img = read_image(spec, patient=pid, what=f"phase '{phase}'", max_voxels=max_voxels)
            problems += _header_warnings(pid, spec, img, f"phase '{phase}'")
            arr = sitk.GetArrayViewFromImage(img)
            if not np.isfinite(arr).all():
                problems.append(Problem(pid, "values", f"phase '{phase}' has "
                                        f"{int((~np.isfinite(arr)).sum())} NaN/inf voxels",
                                        str(spec)))
            images[f"phase '{phase}'"] = img
        except WorkbenchError as exc:
            problems.append(Problem(pid, exc.step or "read", exc.message, str(spec)))
    record: dict = {"patient_id": pid}
    try:
        mask = read_image(mask_spec, patient=pid, what="tumour mask", max_voxels=max_voxels)
        problems += _header_warnings(pid, mask_spec, mask, "tumour mask")
        space = row.get("mask_space")
        if images and isinstance(space, str) and space != "grid":
            mask = align_mask(mask, next(iter(images.values())), mask_space=space,
                              patient=pid, path=str(mask_spec))
        images["tumour mask"] = mask
        voxels = check_mask(mask, patient=pid, path=str(mask_spec))
        record["mask_voxels"] = voxels
        record["tumour_ml"] = voxels * float(np.prod(mask.GetSpacing())) / 1000.0
    except WorkbenchError as exc:
        problems.append(Problem(pid, exc.step or "mask", exc.message, str(mask_spec)))
    for exc in grid_mismatches(images, patient=pid, paths=specs):
        problems.append(Problem(pid, "geometry", exc.message, exc.path))
    if images:
        geo = describe(next(iter(images.values())))
        record.update(size=geo["size"], spacing_mm=tuple(round(s, 3) for s in geo["spacing"]))
    return record, problems


def _header_warnings(pid: str, spec: object, image: sitk.Image, what: str) -> list[Problem]:
    """NIfTI header sanity of one image SimpleITK read (warnings; ``[]`` if not NIfTI)."""
    return [Problem(pid, "header", message, str(spec), "warning")
            for message in nifti_header_warnings(str(spec), what=what, image=image)]


#: Code whose source shapes a patient's QC result (part of every QC cache key).
QC_CODE = ("cohort/check", "cohort/table", "imaging", "hashing")


def check_cohort(cohort: CohortTable, *, jobs: int = 1, progress: bool = True,
                 max_voxels: int | None = None, store: str | Path | None = None) -> QCReport:
    """Check every patient with complete paths (in parallel); never stops early.

    ``max_voxels`` caps the voxels of every image, checked from its header before it is read
    (``None``: :data:`~workbench.imaging.header.DEFAULT_MAX_VOXELS`; the run config's
    ``limits.max_voxels``).

    ``store``: a folder of QC results keyed by everything :func:`check_patient` depends on
    (:func:`qc_key`: the patient's row, the contents of its input files, ``max_voxels``, the
    SimpleITK version and the QC code); a patient whose key is stored is not read again.
    Unforeseen failures are never stored. ``None``: every patient is checked.
    """
    ready = cohort.imaging_ready()
    rows = [row for _, row in ready.iterrows()]
    keys = _qc_keys(rows, cohort.phases, max_voxels) if store is not None else [None] * len(rows)
    results: dict[int, tuple[dict, list[Problem]]] = {}
    for i, key in enumerate(keys):
        if key is not None and (found := _load_qc(Path(store), key)) is not None:
            results[i] = found
    work = [Job(str(row["patient_id"]), check_patient, (row, cohort.phases, max_voxels),
                step="qc", tag=i)
            for i, row in enumerate(rows) if i not in results]
    for outcome in run_batch(work, workers=jobs, progress=progress, desc="QC",
                             done_before=len(results)):
        i = outcome.job.tag
        if outcome.ok:
            results[i] = outcome.value
            if keys[i] is not None:
                _save_qc(Path(store), keys[i], *outcome.value)
        else:  # check_patient records what it expects; this is the unforeseen
            p = outcome.problem
            results[i] = ({"patient_id": outcome.job.patient_id},
                          [Problem(p["patient_id"], p["step"], p["message"], p["file"])])
    records = [results[i][0] for i in range(len(rows))]
    problems = [p for i in range(len(rows)) for p in results[i][1]]
    return QCReport(cohort=cohort, images=pd.DataFrame(records), problems=problems)


def qc_key(row: pd.Series, phases: tuple[str, ...], max_voxels: int | None,
           digests: dict[str, str], code: str) -> str | None:
    """The key of a patient's QC result: every cell :func:`check_patient` reads, each input's
    path, resolved path (symbolic links followed) and content digest, ``max_voxels``, the
    SimpleITK version and ``code`` (:data:`QC_CODE`). ``None`` when an input has no digest
    in ``digests`` (missing, unreadable or not a regular file: checked every time)."""
    inputs = {}
    for name, col in [(f"phase '{p}'", image_column(p)) for p in phases] + [
            ("tumour mask", MASK_COLUMN)]:
        spec = str(row[col])
        digest = digests.get(spec)
        if not isinstance(digest, str):
            return None
        inputs[name] = [spec, os.path.realpath(split_selector(spec)[0]), digest]
    space = row.get("mask_space")
    return json_digest({"patient_id": str(row["patient_id"]), "phases": list(phases),
                        "inputs": inputs, "mask_space": space if isinstance(space, str) else None,
                        "max_voxels": max_voxels, "simpleitk": sitk.Version_VersionString(),
                        "code": code})


def _qc_keys(rows: list[pd.Series], phases: tuple[str, ...],
             max_voxels: int | None) -> list[str | None]:
    specs = [str(row[c]) for row in rows for c in [image_column(p) for p in phases] +
             [MASK_COLUMN]]
    digests = digest_many(specs)
    code = code_digest(QC_CODE)
    return [qc_key(row, phases, max_voxels, digests, code) for row in rows]


def _load_qc(store: Path, key: str) -> tuple[dict, list[Problem]] | None:
    try:
        data = json.loads((store / f"{key}.json").read_text(encoding="utf-8"))
        record = {k: tuple(v) if isinstance(v, list) else v for k, v in data["record"].items()}
        return record, [Problem(**p) for p in data["problems"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: check the patient again


def _save_qc(store: Path, key: str, record: dict, problems: list[Problem]) -> None:
    if any(isinstance(v, list) for v in record.values()):
        return  # a list would come back as a tuple: keep the result exact, do not store it
    try:
        atomic_write_text(store / f"{key}.json", json.dumps(
            {"record": record, "problems": [dataclasses.asdict(p) for p in problems]},
            default=_plain))
    except (OSError, TypeError, ValueError) as exc:  # a cache that cannot be written costs time
        log.warning("could not store the QC result %s in %s: %s", key, store, exc)


def _plain(value):
    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def format_report(report: QCReport) -> str:
    """Human-readable QC summary followed by every problem, one per line."""
    c = report.cohort
    df = c.df
    labelled = df["pcr"].notna()
    n_pcr = int((df["pcr"] == 1).sum())
    lines = [
        f"Cohort '{c.name}' ({c.source})",
        f"  patients in table      : {len(df)}",
        f"  with known pCR         : {int(labelled.sum())} ({n_pcr} pCR, "
        f"{int(labelled.sum()) - n_pcr} non-pCR"
        + (f", pCR rate {n_pcr / labelled.sum():.1%})" if labelled.any() else ")"),
        f"  phases                 : {', '.join(c.phases) or 'none (image-less cohort)'}",
        f"  with complete images   : {len(c.imaging_ready())}",
        f"  passing image QC       : {len(report.ok_patients)}",
    ]
    imgs = report.images
    if not imgs.empty and "spacing_mm" in imgs:
        sp = np.array([s for s in imgs["spacing_mm"].dropna() if len(s) == 3])
        if sp.size:
            lines.append(f"  in-plane spacing (mm)  : {sp[:, 0].min():.2f}–{sp[:, 0].max():.2f}; "
                         f"slice spacing {sp[:, 2].min():.2f}–{sp[:, 2].max():.2f}")
        if "tumour_ml" in imgs and imgs["tumour_ml"].notna().any():
            v = imgs["tumour_ml"].dropna()
            lines.append(f"  tumour volume (ml)     : median {v.median():.1f} "
                         f"(range {v.min():.1f}–{v.max():.1f})")
    problems = report.all_problems
    n_err = sum(p.severity == "error" for p in problems)
    lines.append(f"  problems               : {n_err} errors, {len(problems) - n_err} warnings")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)
