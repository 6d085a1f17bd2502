"""``run_manifest.json``: what a run directory holds, with its provenance (written last)."""

from __future__ import annotations

from pathlib import Path

from workbench.cohort.table import CohortTable
from workbench.config import RunConfig
from workbench.provenance import cohort_inputs, write_manifest
from workbench.rundir import FEATURE_FAMILIES, RunDir

__all__ = ["manifest_stage"]


def manifest_stage(cfg: RunConfig, run: RunDir | Path, *, ibsi: dict | None = None,
                   extra: dict | None = None) -> Path:
    """Write ``run_manifest.json`` from what the run directory holds now.

    The config, input hashes of the saved cohort's images, and per-stage facts read back from
    the run's files (cohort size and problems, feature table shapes, deep weights provenance,
    protocols modelled, null-audit summary). ``ibsi`` is
    :func:`~workbench.pipeline.stages.ibsi_stage`'s result; ``extra`` adds or overrides
    entries (:func:`~workbench.pipeline.run.run_pipeline` adds timings and cache counts).
    """
    run = RunDir(run)
    cohort = CohortTable.load(run.path("cohort").parent)
    inputs = cohort_inputs(cohort.df, cohort.image_columns + ["mask"])
    if cfg.source:  # absolute: a notebook loads its config relative to notebooks/
        cfg = cfg.model_copy(update={"source": str(Path(cfg.source).resolve())})
        inputs["config"] = cfg.source
    facts: dict = {"cohort": {"name": cohort.name, "source": cohort.source,
                              "patients": len(cohort.df),
                              "preprocessed": (len(run.read("preprocessed"))
                                               if run.exists("preprocessed") else None),
                              "problems": len(cohort.problems)}}
    features = {}
    for family in FEATURE_FAMILIES:
        if not run.exists(family):
            continue
        table = run.read(family)
        errors = run.read(f"{family}_errors") if run.exists(f"{family}_errors") else None
        failed = (errors["patient_id"].nunique() if errors is not None
                  and "patient_id" in errors else 0)
        features[family] = {"patients": len(table), "columns": int(table.shape[1]),
                            "failed": int(failed)}
    facts["features"] = features
    facts["deep_weights"] = run.read("deep_weights") if run.exists("deep_weights") else None
    facts["models"] = ({"protocols": sorted(run.read("metrics")["protocol"].astype(str)
                                            .unique())} if run.exists("metrics") else None)
    facts["audit"] = (run.read("audit_summary").to_dict(orient="records")
                      if run.exists("audit_summary") else None)
    facts["ibsi"] = ibsi
    return write_manifest(run.root, config=cfg, inputs=inputs,
                          extra={**facts, **(extra or {})})
