"""Apply a saved model to a new cohort, strictly: its inputs are checked before it predicts.

Image features are extracted with the config stored in the model (so they are computed exactly
as for its training patients), and only when the model needs them: a clinical model reads the
cohort's clinical table alone. Before predicting, every model input's coverage is tabulated
(:func:`~workbench.external.coverage.coverage_table`, written beside the output as
``<out>.coverage.csv``); an absent feature or an unreadable value stops the prediction unless
``allow_missing`` (see :func:`~workbench.pipeline.external.score_cohort`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.cohort.table import CohortTable
from workbench.external import CoverageError, coverage_lines
from workbench.models.fusion import load_model
from workbench.pipeline.external import refuse_install_tree, score_cohort

__all__ = ["coverage_path", "predict_stage"]


def coverage_path(out: Path) -> Path:
    """``<out without .csv>.coverage.csv``: the coverage table of a prediction."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".csv") + ".coverage.csv")


def predict_stage(model_path: Path, cohort: CohortTable, out: Path, *,
                  cache_dir: Path | None = None, jobs: int = 1, progress: bool = True,
                  allow_missing: bool = False) -> pd.DataFrame:
    """Probabilities of ``cohort`` under the saved model, written to the CSV ``out``.

    ``result.attrs``: ``problems`` (patients that could not be scored and why), ``coverage``
    (the coverage table) and ``coverage_lines`` (its summary).

    Raises
    ------
    CoverageError
        When an input feature is absent or has unreadable values and not ``allow_missing``;
        the coverage table is written first, and the error carries its summary.
    """
    out = refuse_install_tree(Path(out), "--out")
    model = load_model(model_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        scored = score_cohort(model, cohort, cache_dir=cache_dir, jobs=jobs, progress=progress,
                              allow_missing=allow_missing, source=str(model_path))
    except CoverageError as exc:
        table = exc.coverage if hasattr(exc, "coverage") else None
        if table is not None:
            table.to_csv(coverage_path(out), index=False)
        raise
    scored.coverage.to_csv(coverage_path(out), index=False)
    result = pd.DataFrame({"patient_id": scored.probability.index,
                           "probability": scored.probability.to_numpy(),
                           "feature_set": model.feature_set,
                           "classifier": model.classifier_name, "protocol": model.protocol})
    meta = model.metadata or {}
    if meta.get("fitted_on"):
        result["fitted_on"] = meta["fitted_on"]
    if meta.get("warning"):
        result["warning"] = meta["warning"]
    result["imputed"] = scored.imputed.reindex(result["patient_id"]).fillna("").to_numpy()
    truth = cohort.df.set_index(cohort.df["patient_id"].astype(str))["pcr"]
    result["label"] = result["patient_id"].map(truth)
    result.to_csv(out, index=False)
    result.attrs["problems"] = scored.problems
    result.attrs["coverage"] = scored.coverage
    result.attrs["coverage_lines"] = coverage_lines(scored.coverage, len(result))
    return result
