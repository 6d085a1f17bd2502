"""Derived images of a preprocessed cohort: negative controls and perturbed copies.

Both the image negative controls (:mod:`workbench.imaging.controls`) and the robustness
perturbations (:mod:`workbench.imaging.perturb`) turn each patient's preprocessed phases and
mask into new ones, which then go through the same radiomics extraction as the real images.
:func:`derive_cohort` runs that per patient with the one batch runner (failure isolation,
progress, joblib or Dask) and keeps the results in a content-addressed cache, like
preprocessing: a folder per ``(inputs' contents, derivation, settings, seed, code)`` with a
``done.json`` written last, so an interrupted stage resumes and a rerun reads.

Derived images are written cropped to the derived mask's bounding box plus ``margin`` voxels
(default 6 = PyRadiomics' ``padDistance`` 5 + 1). Extraction crops to the box plus
``padDistance`` anyway (``preCrop: true``), so the features are those of the full image, while
the cache holds a few megabytes instead of gigabytes and each unit reads less.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from workbench.batch import Job, run_batch
from workbench.cohort.table import MASK_COLUMN, Problem, image_column
from workbench.errors import WorkbenchError
from workbench.hashing import code_digest, digest_many, json_digest
from workbench.imaging.controls import derive_control
from workbench.imaging.io import read_image, write_image
from workbench.imaging.perturb import Perturbation, apply_perturbation

__all__ = ["DERIVATIONS", "derive_cohort"]

#: Derivation families and the code that computes them (its digest is in every key).
DERIVATIONS: dict[str, tuple[str, ...]] = {
    "control": ("imaging/controls", "imaging/body", "pipeline/derived"),
    "perturb": ("imaging/perturb", "pipeline/derived"),
}
DONE_FILE = "done.json"


def _derive(family: str, images: dict[str, sitk.Image], mask: sitk.Image, spec: Mapping,
            seed: int, patient: str, reference_phase: str):
    if family == "control":
        return derive_control(spec["kind"], images, mask, seed=seed, patient=patient,
                              reference_phase=reference_phase)
    spec = {**spec, "translate_mm": tuple(spec.get("translate_mm", (0.0, 0.0, 0.0)))}
    return apply_perturbation(images, mask, Perturbation(**spec), seed=seed,
                              reference_phase=reference_phase, patient=patient)


def _crop(images: dict[str, sitk.Image], mask: sitk.Image, margin: int, patient: str):
    roi = sitk.GetArrayViewFromImage(mask) > 0
    if roi.sum() < 2:
        raise WorkbenchError("the derived mask has fewer than 2 voxels", patient=patient,
                             step="derive")
    idx = np.nonzero(roi)
    lo = np.array([int(i.min()) for i in idx])[::-1]  # x, y, z
    hi = np.array([int(i.max()) for i in idx])[::-1]
    size = np.array(mask.GetSize())
    start = np.maximum(lo - margin, 0)
    stop = np.minimum(hi + margin, size - 1)
    extent = [int(v) for v in stop - start + 1]
    start_list = [int(v) for v in start]
    crop = {p: sitk.RegionOfInterest(im, extent, start_list) for p, im in images.items()}
    return crop, sitk.RegionOfInterest(mask, extent, start_list)


def _derive_one(pid: str, paths: dict[str, str], mask_path: str, family: str, spec: dict,
                seed: int, out_dir: str, key: str, margin: int, reference_phase: str) -> dict:
    """One patient's derived images into ``out_dir/key`` (a :func:`run_batch` job)."""
    folder = Path(out_dir) / key
    done = _load_done(folder)
    if done is not None:
        return _row(pid, folder, done, cached=True)
    images = {p: read_image(path, patient=pid, what=f"phase '{p}'") for p, path in paths.items()}
    mask = read_image(mask_path, patient=pid, what="tumour mask")
    # one random stream per patient (and, inside the derivation, per kind or phase)
    patient_seed = zlib.crc32(f"{seed}:{pid}".encode())
    derived, dmask = _derive(family, images, mask, spec, patient_seed, pid, reference_phase)
    derived, dmask = _crop(derived, dmask, margin, pid)
    tmp = Path(out_dir) / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        files = {image_column(p): f"image_{p}.nii.gz" for p in derived}
        for p, image in derived.items():
            write_image(sitk.Cast(image, sitk.sitkFloat32), tmp / files[image_column(p)])
        files[MASK_COLUMN] = "mask.nii.gz"
        write_image(sitk.Cast(dmask > 0, sitk.sitkUInt8), tmp / files[MASK_COLUMN])
        record = {"key": key, "family": family, "spec": spec, "seed": seed, "files": files,
                  "inputs": {**paths, MASK_COLUMN: mask_path},
                  "mask_voxels": int((sitk.GetArrayViewFromImage(dmask) > 0).sum())}
        (tmp / DONE_FILE).write_text(json.dumps(record, indent=1, default=str))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError as exc:
            if _load_done(folder) is None:
                raise WorkbenchError(f"cannot move the derived images into the cache: {exc}",
                                     patient=pid, step="write", path=folder) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _row(pid, folder, record, cached=False)


def _load_done(folder: Path) -> dict | None:
    f = folder / DONE_FILE
    if not f.is_file():
        return None
    try:
        record = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    if not all((folder / name).is_file() for name in record.get("files", {}).values()):
        return None
    return record


def _row(pid: str, folder: Path, record: dict, *, cached: bool) -> dict:
    row: dict[str, Any] = {"patient_id": pid}
    row.update({col: str(folder / name) for col, name in record["files"].items()})
    row["mask_voxels"] = record["mask_voxels"]
    row["cached"] = cached
    return row


def derive_cohort(table: pd.DataFrame, phases: Sequence[str], family: str, spec: Mapping,
                  out_dir: str | Path, *, seed: int, jobs: int = 1, scheduler: Any = None,
                  progress: bool = True, desc: str = "derive", itk_threads: int = 1,
                  margin: int = 6, reference_phase: str | None = None
                  ) -> tuple[pd.DataFrame, list[Problem]]:
    """Derive every patient of a preprocessing table (``patient_id``, ``image_<phase>``,
    ``mask``) with ``family`` (``control`` or ``perturb``) and ``spec``.

    Each patient draws from its own random stream (``seed`` and the patient ID), so a
    patient's derived images do not depend on who else is in the table.

    Returns the derived table (same columns for ``phases``, plus ``mask_voxels`` and
    ``cached``) and one :class:`~workbench.cohort.table.Problem` per patient that failed
    (named, with the step; the others go on).
    """
    if family not in DERIVATIONS:
        raise WorkbenchError(f"unknown derivation {family!r}; known: {sorted(DERIVATIONS)}",
                             step="derive")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference_phase = reference_phase or phases[0]
    cols = [image_column(p) for p in phases] + [MASK_COLUMN]
    rows_in = [(str(r["patient_id"]), {p: str(r[image_column(p)]) for p in phases},
                str(r[MASK_COLUMN])) for _, r in table.iterrows()]
    digests = digest_many(spec_ for _, paths, mask in rows_in
                          for spec_ in [*paths.values(), mask])
    code = code_digest(DERIVATIONS[family])
    rows, problems, work, cached = [], [], [], 0
    for pid, paths, mask in rows_in:
        inputs = [digests.get(p) for p in [*paths.values(), mask]]
        if not all(isinstance(d, str) for d in inputs):
            bad = next(d for d in inputs if not isinstance(d, str))
            problems.append(Problem(pid, "derive", f"cannot read an input: {bad}", mask))
            continue
        key = json_digest({"family": family, "spec": dict(spec), "seed": seed,
                           "phases": list(phases), "inputs": inputs, "margin": margin,
                           "reference": reference_phase, "code": code})[:24]
        done = _load_done(out / key)
        if done is not None:
            rows.append(_row(pid, out / key, done, cached=True))
            cached += 1
            continue
        work.append(Job(pid, _derive_one, (pid, paths, mask, family, dict(spec), seed,
                                            str(out), key, margin, reference_phase),
                        step=f"{family} {spec.get('kind') or spec.get('name')}"))
    for outcome in run_batch(work, workers=jobs, scheduler=scheduler, itk_threads=itk_threads,
                             progress=progress, desc=desc, done_before=cached):
        if outcome.ok:
            rows.append(outcome.value)
        else:
            p = outcome.problem
            problems.append(Problem(p["patient_id"], p["step"], p["message"], p["file"]))
    order = {pid: i for i, (pid, _, _) in enumerate(rows_in)}
    rows.sort(key=lambda r: order[r["patient_id"]])
    frame = pd.DataFrame(rows, columns=["patient_id", *cols, "mask_voxels", "cached"])
    return frame, problems
