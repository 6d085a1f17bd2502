"""Which of a saved model's input features a cohort provides, and the strict rule on them.

A model reads raw columns: the inputs of each block's selection pipeline (``rad__...``,
``dl_<net>__...``), a strategy's raw columns, and the ``clin__`` columns built from the cohort's
clinical table (:func:`workbench.models.feature_sets.clinical_matrix`). Before any prediction
:func:`coverage_table` says, per input feature and over the patients to be scored, how many have
a value, how many miss it (and are imputed by the model's imputer, with which value), and how
many had a value that could not be read (a coding error of the cohort table). Statuses:

``present``
    every scored patient has a value;
``partly missing``
    some have none: the model imputes them (``imputed_with``), which is reported, not hidden;
``absent``
    nobody has a value (the column is missing from the cohort, or empty): every patient would
    get the imputed constant, so the feature is silently switched off;
``unmappable``
    some values could not be read (e.g. ``er`` coded ``pos.``): they are missing now, and were
    not meant to be.

:func:`check_coverage` refuses ``absent`` and ``unmappable`` features unless the caller allows
missing values (``workbench predict --allow-missing``): a miscoded column must not quietly
become the training median for everyone (it once turned an external AUC into 0.505).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from workbench.cohort.table import Problem
from workbench.errors import WorkbenchError
from workbench.names import BLOCK_PREFIXES, CLINICAL_PREFIX

__all__ = ["COVERAGE_COLUMNS", "CLINICAL_SOURCES", "CoverageError", "check_coverage",
           "clinical_source", "coverage_lines", "coverage_table", "model_inputs"]

COVERAGE_COLUMNS = ["feature", "source", "status", "n_present", "n_missing", "n_unmappable",
                    "n_imputed", "imputed_with", "note"]
#: ``clin__`` design column (or its prefix, ending in ``*``) -> the cohort column it is built
#: from; mirrors :func:`workbench.models.feature_sets.clinical_matrix` (a test checks that
#: every column it can build is covered).
CLINICAL_SOURCES: dict[str, str] = {
    "clin__age": "age", "clin__er_pos": "er", "clin__pgr_pos": "pgr", "clin__hr_pos": "hr",
    "clin__her2_pos": "her2", "clin__subtype_*": "hr_her2",
    "clin__laterality_right": "laterality", "clin__race_*": "race",
    "clin__mri_ld_mm": "mri_ld_mm"}
_CODING_MESSAGE = re.compile(r"^(?P<column>[a-z_0-9]+) (value|code|label) ")


class CoverageError(WorkbenchError):
    """A feature the model needs is absent, or some of its values could not be read."""


def clinical_source(column: str) -> str:
    """The cohort column a ``clin__`` design column is built from."""
    if column in CLINICAL_SOURCES:
        return CLINICAL_SOURCES[column]
    for key, source in CLINICAL_SOURCES.items():
        if key.endswith("*") and column.startswith(key[:-1]):
            return source
    return column.removeprefix(CLINICAL_PREFIX)


def _block_of(column: str) -> str:
    for block, prefix in BLOCK_PREFIXES.items():
        if column.startswith(prefix):
            return block
    return "other"


def model_inputs(model) -> pd.Series:
    """Every raw input column of a fitted :class:`~workbench.models.fusion.FusionModel`
    (index) and its source: a feature block, or the cohort column of a clinical feature."""
    found: dict[str, str] = {}
    for block, columns in (model.block_inputs or {}).items():
        for column in columns:
            found[column] = block
    for column in model.design_columns:
        if column.startswith("sig__") or column in found:
            continue
        found[column] = (clinical_source(column) if column.startswith(CLINICAL_PREFIX)
                         else _block_of(column))
    return pd.Series(found, name="source", dtype=object).rename_axis("feature")


def _imputer_values(model) -> dict[str, float]:
    """Fill values of the first fitted SimpleImputer of the model's classifier pipeline, by
    input column; empty when it has none (or it is not a pipeline)."""
    steps = model.classifier.steps if isinstance(model.classifier, Pipeline) else []
    for _, step in steps:
        if isinstance(step, SimpleImputer) and hasattr(step, "statistics_"):
            names = getattr(step, "feature_names_in_", None)
            if names is None:
                names = model.design_columns
            return dict(zip(map(str, names), map(float, step.statistics_), strict=False))
    return {}


def _unmappable(problems: Iterable[Problem], patients: set[str]) -> dict[str, set[str]]:
    """Cohort column -> scored patients whose value there could not be read (coding errors
    recorded by the cohort table)."""
    found: dict[str, set[str]] = {}
    for problem in problems:
        if problem.severity != "error" or problem.patient_id not in patients:
            continue
        if problem.step not in ("coding", "load", "validate"):
            continue
        match = _CODING_MESSAGE.match(problem.message)
        if match:
            found.setdefault(match["column"], set()).add(problem.patient_id)
    return found


def coverage_table(model, features: pd.DataFrame, problems: Iterable[Problem] = (),
                   cohort: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per input feature of ``model``: how the patients of ``features`` (the rows to be
    scored) cover it (columns :data:`COVERAGE_COLUMNS`; statuses in the module docstring).

    ``problems``: the cohort's recorded problems, to count values that could not be read;
    ``cohort``: the cohort table, to say when a value is there but has no code in the model
    (``indeterminate`` receptors are missing to a 0/1 feature).
    """
    given = (cohort.set_index(cohort["patient_id"].astype(str)).reindex(
        features.index.astype(str)) if cohort is not None else None)
    inputs = model_inputs(model)
    fill = _imputer_values(model)
    patients = set(map(str, features.index))
    bad = _unmappable(problems, patients)
    n = len(features)
    rows = []
    for feature, source in inputs.items():
        present = int(features[feature].notna().sum()) if feature in features.columns else 0
        missing = n - present
        unmappable = len(bad.get(source, ())) if feature.startswith(CLINICAL_PREFIX) else 0
        if present == 0:
            status = "absent"
        elif unmappable:
            status = "unmappable"
        elif missing:
            status = "partly missing"
        else:
            status = "present"
        value = fill.get(feature, np.nan)
        imputed = missing if np.isfinite(value) else 0
        if feature not in features.columns:
            note = f"no '{source}' value in the cohort"
        elif status == "absent":
            note = f"'{source}' is empty for every patient"
        elif unmappable:
            note = f"{unmappable} '{source}' values could not be read (see the problems)"
        elif missing and not np.isfinite(value):
            note = "missing values, and no imputer in the model: those patients fail"
        else:
            note = ""
        if missing and given is not None and source in given.columns and feature in features:
            uncoded = given[source].notna().to_numpy() & features[feature].isna().to_numpy()
            if uncoded.any():
                values = sorted(map(str, given.loc[uncoded, source].unique()))[:3]
                note = (f"{int(uncoded.sum())} patients have a '{source}' value the feature "
                        f"has no code for ({', '.join(values)}): missing to the model, "
                        + ("imputed" if np.isfinite(value) else "not imputed"))
        rows.append((feature, source, status, present, missing, unmappable, imputed, value,
                     note))
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


def _grouped(rows: pd.DataFrame) -> str:
    """``source (feature, ...)`` per source, image blocks counted rather than listed."""
    parts = []
    for source, group in rows.groupby("source", sort=False):
        names = group["feature"].tolist()
        listed = ", ".join(names[:3]) + (f", ... ({len(names)} features)" if len(names) > 3
                                         else "")
        parts.append(f"{source} ({listed})")
    return "; ".join(parts)


def coverage_lines(table: pd.DataFrame, n_patients: int) -> list[str]:
    """The coverage summary printed by ``workbench predict`` and ``validate``."""
    counts = table["status"].value_counts()
    head = (f"coverage of {len(table)} model input features over {n_patients} patients: "
            + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in
                        ("present", "partly missing", "unmappable", "absent")))
    lines = [head]
    partly = table[table["status"] == "partly missing"]
    if not partly.empty:
        most = partly.sort_values("n_missing", ascending=False).iloc[0]
        lines.append(f"  imputed: {_grouped(partly)}; up to {int(most['n_missing'])} of "
                     f"{n_patients} patients get the training value")
    for status in ("unmappable", "absent"):
        part = table[table["status"] == status]
        if not part.empty:
            lines.append(f"  {status}: {_grouped(part)}")
    return lines


def check_coverage(table: pd.DataFrame, *, allow_missing: bool = False,
                   cohort: str = "the cohort") -> None:
    """Refuse absent or unmappable features (see the module docstring).

    Raises
    ------
    CoverageError
        Naming every such feature and its cohort column, unless ``allow_missing``.
    """
    bad = table[table["status"].isin(["absent", "unmappable"])]
    if bad.empty or allow_missing:
        return
    parts = []
    for status in ("absent", "unmappable"):
        part = bad[bad["status"] == status]
        if not part.empty:
            parts.append(f"{status}: {_grouped(part)}")
    raise CoverageError(
        f"{cohort} does not provide what the model needs — " + "; ".join(parts)
        + ". Add or fix those columns (a value mapping: cohort.coding in a config), or pass "
        "--allow-missing to impute them with the training values (the coverage table says "
        "how many patients that touches)", step="predict")
