"""The ``manifest`` cohort format: one CSV row per patient with image and mask paths.

Columns: ``patient_id`` (required), ``pcr`` (0/1 or empty), any clinical column of
:mod:`workbench.cohort.table`, one ``image_<phase>`` column per DCE phase and ``mask``.
Paths may be absolute or relative to the CSV's folder; each is a NIfTI/NRRD/MetaImage file,
a DICOM folder, or ``DICOM_FOLDER#t=K`` (see :mod:`workbench.imaging.io`).

Example::

    patient_id,pcr,age,hr_her2,image_pre,image_early,image_late,mask
    P001,1,51,HER2+,P001/pre.nii.gz,P001/early.nii.gz,P001/late.nii.gz,P001/mask.nii.gz

A CSV with neither an ``image_<phase>`` nor a ``mask`` column is an image-less
(clinical-only) cohort: ``phases=()`` whatever ``phases`` asks, no path checked. Clinical
values are read as :mod:`workbench.cohort.coding` says (``0``/``1`` receptors included).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from workbench.cohort.coding import check_coding
from workbench.cohort.table import (
    DEFAULT_PHASES,
    IMAGE_PREFIX,
    MASK_COLUMN,
    CohortTable,
    validate_cohort,
)
from workbench.errors import CohortError
from workbench.imaging.io import split_selector

log = logging.getLogger(__name__)


def _phases_from_columns(columns: Sequence[str]) -> tuple[str, ...]:
    found = [c[len(IMAGE_PREFIX):] for c in columns if c.startswith(IMAGE_PREFIX)]
    ordered = [p for p in DEFAULT_PHASES if p in found] + [p for p in found
                                                           if p not in DEFAULT_PHASES]
    return tuple(ordered)


def _resolve(value: object, base: Path) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    path, temporal = split_selector(text)
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = (base / p).resolve()
    return f"{p}#t={temporal}" if temporal is not None else str(p)


def load_manifest(csv_path: str | Path, *, phases: Sequence[str] | None = None,
                  name: str | None = None, check_files: bool = True,
                  coding: Mapping[str, Mapping[str, str]] | None = None) -> CohortTable:
    """Load a manifest CSV into a validated :class:`CohortTable`.

    Parameters
    ----------
    csv_path
        The CSV file, or a folder holding ``manifest.csv``.
    phases
        Phases to use; by default every ``image_<phase>`` column, in the order
        pre, early, late, then any others. Ignored (no phases) when the CSV has no image and
        no mask column.
    name
        Cohort name (default: the CSV's folder name).
    check_files
        Record a problem for every path that does not exist.
    coding
        The run config's ``cohort.coding`` (see :func:`~workbench.cohort.table.validate_cohort`).

    Raises
    ------
    CohortError
        If the file cannot be read as CSV, lacks ``patient_id``, has a ``mask`` column but no
        image column, or ``coding`` is invalid.
    """
    check_coding(coding)  # a bad map is a config error, reported before any reading
    path = Path(csv_path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise CohortError("manifest CSV not found", step="load", path=path)
    try:
        raw = pd.read_csv(path, dtype={"patient_id": str}, keep_default_na=True)
    except Exception as exc:
        raise CohortError(f"cannot read manifest CSV: {exc}", step="load", path=path) from exc
    if not _phases_from_columns(raw.columns) and MASK_COLUMN not in raw.columns:
        if phases:
            log.info("%s has no image or mask column: an image-less (clinical-only) cohort",
                     path)
        phases = ()
    elif phases is None:
        phases = _phases_from_columns(raw.columns)
        if not phases:
            raise CohortError("manifest has a 'mask' column but no image_<phase> column (e.g. "
                              "image_pre): add the phases' paths, or drop the mask column for "
                              "a clinical-only cohort", step="load", path=path)
    base = path.parent.resolve()
    for col in [f"{IMAGE_PREFIX}{p}" for p in phases] + [MASK_COLUMN]:
        if col in raw.columns:
            raw[col] = raw[col].map(lambda v: _resolve(v, base)).astype("object")
    return validate_cohort(raw, name=name or path.parent.name, phases=tuple(phases),
                           source=path, check_files=check_files, coding=coding)
