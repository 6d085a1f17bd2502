"""Apply a saved model to a new cohort, with the model's own extraction settings."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from workbench.cohort.table import CohortTable
from workbench.config import parse_config
from workbench.models.feature_sets import clinical_matrix
from workbench.models.fusion import load_model
from workbench.pipeline.settings import default_cache
from workbench.pipeline.stages import feature_stages, preprocess_stage

__all__ = ["predict_stage"]


def predict_stage(model_path: Path, cohort: CohortTable, out: Path, *,
                  cache_dir: Path | None = None, jobs: int = 1,
                  progress: bool = True) -> pd.DataFrame:
    """Probabilities of ``cohort`` under the saved model, written to the CSV ``out``.

    Preprocessing and feature extraction use the config stored in the model, so the features
    are computed exactly as for its training patients. ``result.attrs["problems"]`` lists the
    patients that could not be scored and why.
    """
    model = load_model(model_path)
    cfg = parse_config(model.metadata.get("config") or {}, source=str(model_path))
    cache = Path(cache_dir) if cache_dir else default_cache()
    pre = preprocess_stage(cohort, cfg, cache / "preprocessed", jobs=jobs, progress=progress)
    wanted = tuple(b if b in ("radiomics", "kinetic") else "deep" for b in model.blocks)
    with tempfile.TemporaryDirectory() as tmp:
        feats = feature_stages(pre.table, cfg, cache, Path(tmp), jobs=jobs, progress=progress,
                               stages=tuple(dict.fromkeys(wanted)))
    tables = [r.features for r in feats.values()]
    features = tables[0].join(tables[1:], how="inner") if len(tables) > 1 else (
        tables[0] if tables else pd.DataFrame(index=pre.table["patient_id"].astype(str)))
    clin = clinical_matrix(cohort.df)
    features = features.join(clin, how="left") if not features.empty else clin
    proba = model.predict_proba(features)[:, 1]
    result = pd.DataFrame({"patient_id": features.index, "probability": proba,
                           "feature_set": model.feature_set,
                           "classifier": model.classifier_name, "protocol": model.protocol})
    if model.metadata.get("warning"):
        result["warning"] = model.metadata["warning"]
    truth = cohort.df.set_index("patient_id")["pcr"]
    result["label"] = result["patient_id"].map(truth)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    problems = list(pre.problems) + [f"{r['patient_id']}: {r['message']}" for res in
                                     feats.values() for _, r in res.errors.iterrows()]
    result.attrs["problems"] = problems
    return result
