"""``run_manifest.json``: what a run directory holds, with its provenance (written last)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from workbench.cohort.table import CohortTable
from workbench.config import RunConfig
from workbench.provenance import cohort_inputs, write_manifest
from workbench.rundir import FEATURE_FAMILIES, RunDir

__all__ = ["manifest_stage", "parquet_shape", "stable_manifest"]

#: Top-level manifest entries about the run that wrote it, not about what the run holds. The
#: git state is one: results are reused across commits whenever the code that computes them
#: is unchanged (every cache key hashes that code), so it names the run, not the results.
RUN_ONLY = ("created_utc", "command", "git", "stages_seconds")
#: Per-family feature facts and model facts about how the run went (timings, cache hits).
RUN_ONLY_FEATURES = ("computed", "cached", "seconds")
RUN_ONLY_MODELS = ("seconds", "cached")


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
    if cohort.source and Path(cohort.source).is_file():  # the table itself (a clinical run's
        inputs["cohort_source"] = cohort.source          # only input), hashed with the rest
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
        rows, columns = parquet_shape(run.path(family))
        errors = run.read(f"{family}_errors") if run.exists(f"{family}_errors") else None
        failed = (errors["patient_id"].nunique() if errors is not None
                  and "patient_id" in errors else 0)
        features[family] = {"patients": rows, "columns": columns, "failed": int(failed)}
    facts["features"] = features
    facts["deep_weights"] = run.read("deep_weights") if run.exists("deep_weights") else None
    facts["models"] = ({"protocols": sorted(run.read("metrics")["protocol"].astype(str)
                                            .unique())} if run.exists("metrics") else None)
    facts["audit"] = (run.read("audit_summary").to_dict(orient="records")
                      if run.exists("audit_summary") else None)
    facts["ibsi"] = ibsi
    return write_manifest(run.root, config=cfg, inputs=inputs,
                          extra={**facts, **(extra or {})})


def parquet_shape(path: Path) -> tuple[int, int]:
    """Rows and columns of a parquet table written by pandas, the index not counted, from
    the file's footer (a deep feature table has 8,576 columns: reading it takes seconds)."""
    meta = pq.read_metadata(path)
    index = (meta.schema.to_arrow_schema().pandas_metadata or {}).get("index_columns", [])
    return int(meta.num_rows), int(meta.num_columns) - sum(isinstance(c, str) for c in index)


def stable_manifest(manifest: dict) -> dict:
    """``manifest`` without what changes from run to run when no result does.

    Left out: when the run was made, by which command line and at which git commit (and
    whether the checkout was dirty) (:data:`RUN_ONLY`), its stage timings, and per feature
    family and for the models how long they took and whether they came from a cache.
    Everything else -- config, seed, versions, platform, input hashes and every fact about
    the results -- stays. The report's cache key
    (:func:`~workbench.pipeline.stages.report_key`) uses this.
    """
    out = {k: v for k, v in manifest.items() if k not in RUN_ONLY}
    if isinstance(out.get("features"), dict):
        out["features"] = {name: ({k: v for k, v in facts.items()
                                   if k not in RUN_ONLY_FEATURES}
                                  if isinstance(facts, dict) else facts)
                           for name, facts in out["features"].items()}
    if isinstance(out.get("models"), dict):
        out["models"] = {k: v for k, v in out["models"].items() if k not in RUN_ONLY_MODELS}
    return out
