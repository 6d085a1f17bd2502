"""The pipeline as a chain of cached stages writing one run directory.

Stages: cohort (generate the synthetic cohort if needed, load, validate) → image QC →
preprocessing (N4 → 1 mm → z-score, content-addressed cache under ``data/interim``) →
features (radiomics, kinetics, deep; content-addressed store) → models (honest and paper
protocols) → null audit → IBSI conformance → Table 1 → run manifest → HTML report. The
models and the audit are skipped when their inputs, settings and code are unchanged
(:mod:`workbench.stage_cache`), so a warm rerun only re-reads and re-checks.

Run directory layout::

    data/runs/<name>/
      run_manifest.json      config, seed, versions, git commit, input hashes, stage summary
      cohort/cohort.parquet  the validated cohort table
      cohort/problems.csv    everything found wrong (loading, QC, preprocessing, features)
      qc/qc_images.csv       per-patient grid and tumour volume
      preprocessed.parquet   per-patient paths to the preprocessed images + records
      features/<stage>.parquet, features/<stage>.errors.csv   radiomics, kinetic
      ibsi/ibsi_rows.csv, ibsi/ibsi_report.txt                IBSI-1 phantom conformance
      table1/table1.{csv,html}, table1/split.csv
      models/                predictions, metrics, selection, signatures, lasso_cv, shap,
                             final models (.skops); see workbench.models.stage
      audit/                 null_audit.parquet, null_audit_summary.csv
      report.html            standalone report (workbench.report)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.cohort.table import CohortTable, Problem, problems_frame
from workbench.config import RunConfig
from workbench.errors import CohortError, ConfigError, WorkbenchError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUNS = REPO_ROOT / "data" / "runs"
DEFAULT_INTERIM = REPO_ROOT / "data" / "interim"


def cohort_stage(cfg: RunConfig, *, jobs: int = 1, progress: bool = True) -> CohortTable:
    """Load (and for ``synthetic``, first generate) the configured cohort."""
    from workbench.cohort import load_cohort

    path = cfg.resolve_path(cfg.cohort.path)
    fmt = cfg.cohort.format
    if fmt == "synthetic":
        path = path or (REPO_ROOT / "data" / "raw" / "synthetic")
        syn = cfg.cohort.synthetic
        if not _synthetic_matches(path, syn.n, syn.seed):
            from workbench.cohort.synthetic import generate_cohort

            log.info("generating the synthetic cohort (n=%d, seed=%d) in %s", syn.n, syn.seed,
                     path)
            generate_cohort(path, n=syn.n, seed=syn.seed, jobs=jobs, progress=progress)
        return load_cohort(path / "manifest.csv", fmt="manifest", phases=cfg.cohort.phases)
    return load_cohort(path, fmt=fmt, phases=cfg.cohort.phases)


def _synthetic_matches(path: Path, n: int, seed: int) -> bool:
    import json

    summary = path / "synth_summary.json"
    if not (path / "manifest.csv").is_file() or not summary.is_file():
        return False
    info = json.loads(summary.read_text())
    return info.get("n") == n and info.get("seed") == seed


def preprocess_settings(cfg: RunConfig):
    """Map the config's ``preprocessing`` section onto :class:`PreprocessSettings`."""
    from workbench.imaging.preprocess import PreprocessSettings

    pp = cfg.preprocessing
    return PreprocessSettings(n4=pp.n4, n4_mode=pp.n4_mode, shrink_factor=pp.n4_shrink_factor,
                              target_spacing=pp.spacing_mm,
                              image_interpolator=pp.image_interpolator,
                              zscore_region=pp.zscore_region)


def preprocess_stage(cohort: CohortTable, cfg: RunConfig, out: Path | None = None, *,
                     jobs: int = 1, progress: bool = True):
    """Preprocess every imaging-ready patient into the content-addressed cache."""
    from workbench.imaging.pipeline import preprocess_cohort

    out = out or DEFAULT_INTERIM / "preprocessed"
    return preprocess_cohort(cohort, out, settings=preprocess_settings(cfg), jobs=jobs,
                             progress=progress)


def fine_tune_split(labels: pd.Series, cfg: RunConfig) -> dict:
    """Labels and train / test ids for fine-tuning: exactly the protocols' split."""
    from workbench.models.split import stratified_split

    y = labels.dropna().astype(int)
    y.index = y.index.astype(str)
    y = y.sort_index()
    split = stratified_split(pd.Series(y.index), y, test_size=cfg.protocol.test_size,
                             seed=cfg.seed)
    return {"labels": y.to_dict(), "train_ids": split.index[split == "train"].tolist(),
            "test_ids": split.index[split == "test"].tolist()}


def radiomics_params_path(cfg: RunConfig) -> Path:
    """The radiomics parameter file: relative to the config file, else to the shipped
    ``configs/`` folder (``radiomics/paper.yaml`` works from any config location)."""
    given = Path(cfg.radiomics.params)
    candidates = [cfg.resolve_path(cfg.radiomics.params)]
    if not given.is_absolute():
        candidates.append(REPO_ROOT / "configs" / given)
    for c in candidates:
        if c is not None and c.is_file():
            return c.resolve()
    raise ConfigError(f"radiomics.params {cfg.radiomics.params!r} not found; looked at "
                      f"{', '.join(str(c) for c in candidates)}", step="config",
                      path=cfg.source)


def feature_stages(pre_table: pd.DataFrame, cfg: RunConfig, cache: Path, out: Path, *,
                   jobs: int = 1, scheduler=None, progress: bool = True,
                   stages: tuple[str, ...] = ("radiomics", "kinetic", "deep"),
                   labels: pd.Series | None = None) -> dict:
    """Extract every configured feature family into the store and the run directory.

    Writes ``<out>/<stage>.parquet`` and ``<out>/<stage>.errors.csv`` per stage and returns
    ``{stage: FeatureResult}``.
    """
    results = {}
    store = cache / "features"
    if "radiomics" in stages:
        from workbench.features.radiomics import extract_radiomics

        params = radiomics_params_path(cfg)
        results["radiomics"] = extract_radiomics(
            pre_table, store, params_path=params, phases=cfg.radiomics.phases, jobs=jobs,
            scheduler=scheduler, progress=progress)
    if "kinetic" in stages and cfg.kinetic.enabled:
        from workbench.features.kinetic import extract_kinetic

        results["kinetic"] = extract_kinetic(
            pre_table, store, pe_threshold=cfg.kinetic.pe_threshold,
            ser_washout=cfg.kinetic.ser_washout, jobs=jobs, scheduler=scheduler,
            progress=progress)
    if "deep" in stages and cfg.deep.networks:
        from workbench.features.deep import extract_deep

        weights = cfg.deep.weights
        if weights not in ("imagenet", "random"):
            weights = str(cfg.resolve_path(weights))
        tune = {}
        if cfg.deep.fine_tune:
            tune = fine_tune_split(labels, cfg) if labels is not None else {}
            if not tune:
                raise ConfigError("deep.fine_tune needs pCR labels to fit on the training "
                                  "split", step="config", path=cfg.source)
        results["deep"] = extract_deep(
            pre_table, store, networks=cfg.deep.networks, weights=weights,
            fine_tune=bool(tune), **tune,
            require_pretrained=cfg.deep.require_pretrained, channels=cfg.deep.channels,
            margin=cfg.deep.margin, image_size=cfg.deep.image_size,
            batch_size=cfg.deep.batch_size, seed=cfg.seed, progress=progress,
            crops_dir=out / "crops")
    for name, res in results.items():
        res.save(out / f"{name}.parquet")
    return results


def ibsi_stage(run_dir: Path) -> dict:
    """IBSI-1 digital-phantom conformance, recorded with the run (skipped, with the reason,
    when the reference data in ``../shared`` is absent)."""
    ref = REPO_ROOT.parent / "shared" / "data" / "ibsi1"
    if not (ref / "reference_values.csv").is_file():
        return {"status": "skipped", "reason": f"IBSI reference data not found at {ref}"}
    from workbench.features.ibsi import format_report, run_ibsi

    report = run_ibsi(ref / "digital_phantom", ref / "reference_values.csv")
    (run_dir / "ibsi").mkdir(parents=True, exist_ok=True)
    report.to_csv(run_dir / "ibsi" / "ibsi_rows.csv")
    text = format_report(report)
    (run_dir / "ibsi" / "ibsi_report.txt").write_text(text + "\n")
    return {"status": "done", "matched": int(report.matched), "matched_raw":
            int(report.matched_raw), "total": int(report.total),
            "line": text.strip().splitlines()[-1]}


AUDIT_OUTPUTS = ("null_audit.parquet", "null_audit_summary.csv")
MODEL_OUTPUTS = ("predictions.parquet", "metrics.parquet", "selection.parquet",
                 "signatures.parquet", "split.csv")


def _modelling_settings(cfg: RunConfig) -> dict:
    return cfg.model_dump(mode="json", include={"seed", "selection", "feature_sets",
                                                "classifiers", "protocol"})


def model_stage(cfg: RunConfig, run_dir: Path, cohort: CohortTable | None = None, *,
                jobs: int = 1, progress: bool = True, force: bool = False):
    """Selection + classifiers under every configured protocol → ``<run>/models/``.

    Skipped (outputs kept, ``result.cached`` True) when the modelling inputs, the config
    sections that shape them and the modelling code are unchanged since the last complete
    run into this folder (:mod:`workbench.stage_cache`); ``force`` reruns anyway.
    """
    from workbench import stage_cache
    from workbench.models.stage import ModelStageResult, load_modelling_inputs, run_models

    features, clinical, y = load_modelling_inputs(run_dir, None if cohort is None
                                                  else cohort.df)
    out = run_dir / "models"
    key = stage_cache.stage_key([features, clinical, y], _modelling_settings(cfg))
    record = None if force else stage_cache.is_current(out, key, MODEL_OUTPUTS)
    if record is not None:
        log.info("models: inputs, settings and code unchanged; reusing %s", out)
        skipped = pd.read_csv(out / "skipped.csv").to_dict("records") if (
            out / "skipped.csv").stat().st_size > 1 else []
        return ModelStageResult(out_dir=out, results={},
                                metrics=pd.read_parquet(out / "metrics.parquet"),
                                seconds=float(record.get("seconds", 0.0)), skipped=skipped,
                                cached=True)
    out.mkdir(parents=True, exist_ok=True)
    stage_cache.invalidate(out)
    result = run_models(cfg, features, clinical, y, out, jobs=jobs, progress=progress)
    stage_cache.mark_done(out, key, seconds=round(result.seconds, 1))
    return result


def audit_stage(cfg: RunConfig, run_dir: Path, *, permutations: int | None = None,
                feature_set: str | None = None, classifier: str | None = None, jobs: int = 1,
                progress: bool = True, force: bool = False) -> pd.DataFrame:
    """Null audit (permuted labels) for honest and paper → ``<run>/audit/``.

    Defaults come from the config's ``audit`` section (radiomics signature + LR: one block,
    so 20 permutations of both protocols stay affordable). Cached like :func:`model_stage`."""
    from workbench import stage_cache
    from workbench.models.audit import null_audit, summarise
    from workbench.models.feature_sets import FEATURE_SETS
    from workbench.models.protocols import ProtocolSettings
    from workbench.models.stage import (
        classifier_factory,
        load_modelling_inputs,
        selector_factory,
    )

    features, clinical, y = load_modelling_inputs(run_dir)
    feature_set = feature_set or cfg.audit.feature_set
    classifier = classifier or cfg.audit.classifier
    permutations = cfg.audit.permutations if permutations is None else permutations
    out = run_dir / "audit"
    key = stage_cache.stage_key([features, clinical, y], {
        **_modelling_settings(cfg), "permutations": permutations,
        "feature_set": feature_set, "classifier": classifier})
    if not force and stage_cache.is_current(out, key, AUDIT_OUTPUTS) is not None:
        log.info("audit: inputs, settings and code unchanged; reusing %s", out)
        audit = pd.read_parquet(out / "null_audit.parquet")
        audit.attrs["summary"] = pd.read_csv(out / "null_audit_summary.csv")
        audit.attrs["cached"] = True
        return audit
    from workbench.models.feature_sets import available_blocks

    missing = set(FEATURE_SETS[feature_set].blocks) - set(available_blocks(features.columns))
    if missing:
        raise WorkbenchError(f"null audit on '{feature_set}' needs feature blocks "
                             f"{sorted(missing)} that this run did not extract", step="audit")
    settings = ProtocolSettings(test_size=cfg.protocol.test_size,
                                cv_folds=cfg.protocol.cv_folds, repeats=1, seed=cfg.seed,
                                jobs=jobs)
    out.mkdir(parents=True, exist_ok=True)
    stage_cache.invalidate(out)
    audit = null_audit(features, clinical, y,
                       selector=selector_factory(cfg), make_clf=classifier_factory,
                       permutations=permutations, feature_set=feature_set, classifier=classifier,
                       protocols=("honest", "paper"), settings=settings, seed=cfg.seed,
                       progress=progress)
    audit.to_parquet(out / "null_audit.parquet", index=False)
    summary = summarise(audit)
    summary.to_csv(out / "null_audit_summary.csv", index=False)
    audit.attrs["summary"] = summary
    stage_cache.mark_done(out, key, seconds=round(audit.attrs.get("seconds", 0.0), 1))
    return audit


def predict_stage(model_path: Path, cohort: CohortTable, out: Path, *,
                  cache_dir: Path | None = None, jobs: int = 1,
                  progress: bool = True) -> pd.DataFrame:
    """Apply a saved model to a new cohort with the model's own extraction settings."""
    import tempfile

    from workbench.config import parse_config
    from workbench.models.feature_sets import clinical_matrix
    from workbench.models.fusion import load_model

    model = load_model(model_path)
    cfg = parse_config(model.metadata.get("config") or {}, source=str(model_path))
    cache = Path(cache_dir) if cache_dir else DEFAULT_INTERIM
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


def report_stage(run_dir: Path) -> Path | None:
    """The standalone HTML report of the run (``<run>/report.html``); None if it failed.

    A report failure never loses the run: it is logged with its reason, and
    ``workbench report RUN`` can rebuild it.
    """
    from workbench.report import build_report

    try:
        return build_report(run_dir, run_dir / "report.html")
    except Exception as exc:  # the run's tables are written; say why the report is not
        log.error("report of %s failed: %s (rebuild with `workbench report %s`)", run_dir,
                  exc, run_dir)
        return None


def table1_stage(cohort: CohortTable, out: Path, *, seed: int = 42, test_size: float = 0.3):
    """Table 1 on the labelled patients, split as every protocol splits them."""
    from workbench.evaluation.table1 import table1, write_table1
    from workbench.models.split import stratified_split

    labelled = cohort.labelled().sort_values("patient_id").reset_index(drop=True)
    split = stratified_split(labelled["patient_id"], labelled["pcr"], test_size=test_size,
                             seed=seed)  # the same split as every protocol (sorted ids)
    table = table1(labelled, split)
    notes = [f"Cohort '{cohort.name}': {len(labelled)} patients with known pCR of "
             f"{len(cohort.df)}; stratified {1 - test_size:.0%}/{test_size:.0%} split, "
             f"seed {seed}.",
             "Continuous: mean ± SD, Wilcoxon rank-sum. Categorical: n (% of known), "
             "Fisher's exact (2×2) or χ². 'missing' rows are not in percentages or tests."]
    paths = write_table1(table, out, title=f"Table 1 — {cohort.name}", notes=notes)
    split.rename_axis("patient_id").reset_index().to_csv(Path(out) / "split.csv", index=False)
    return table, paths


def manifest_stage(cfg: RunConfig, run_dir: Path, *, ibsi: dict | None = None,
                   extra: dict | None = None) -> Path:
    """Write ``run_manifest.json`` from what a run directory holds now.

    For runs built stage by stage (the notebooks): the config, input hashes of the saved
    cohort's images, and per-stage facts read back from the run's files (cohort size and
    problems, feature table shapes, deep weights provenance, protocols modelled, null-audit
    summary). ``ibsi`` is :func:`ibsi_stage`'s result; ``extra`` adds or overrides entries.
    """
    import json

    from workbench.provenance import cohort_inputs, write_manifest

    run_dir = Path(run_dir)
    cohort = CohortTable.load(run_dir / "cohort")
    inputs = cohort_inputs(cohort.df, cohort.image_columns + ["mask"])
    if cfg.source:  # absolute: a notebook loads its config relative to notebooks/
        cfg = cfg.model_copy(update={"source": str(Path(cfg.source).resolve())})
        inputs["config"] = cfg.source
    pre = run_dir / "preprocessed.parquet"
    facts: dict = {"cohort": {"name": cohort.name, "source": cohort.source,
                              "patients": len(cohort.df),
                              "preprocessed": len(pd.read_parquet(pre)) if pre.is_file()
                              else None, "problems": len(cohort.problems)}}
    features = {}
    for path in sorted((run_dir / "features").glob("*.parquet")):
        table = pd.read_parquet(path)
        errors = path.with_name(f"{path.stem}.errors.csv")
        try:
            failed = pd.read_csv(errors)["patient_id"].nunique() if errors.is_file() else 0
        except (pd.errors.EmptyDataError, KeyError):  # no error rows written
            failed = 0
        features[path.stem] = {"patients": len(table), "columns": int(table.shape[1]),
                               "failed": int(failed)}
    facts["features"] = features
    weights = run_dir / "features" / "deep_weights.json"
    facts["deep_weights"] = json.loads(weights.read_text()) if weights.is_file() else None
    metrics = run_dir / "models" / "metrics.parquet"
    facts["models"] = ({"protocols": sorted(pd.read_parquet(metrics, columns=["protocol"])
                                            ["protocol"].astype(str).unique())}
                       if metrics.is_file() else None)
    audit = run_dir / "audit" / "null_audit_summary.csv"
    facts["audit"] = (pd.read_csv(audit).to_dict(orient="records") if audit.is_file()
                      else None)
    facts["ibsi"] = ibsi
    return write_manifest(run_dir, config=cfg, inputs=inputs, extra={**facts, **(extra or {})})


@dataclass
class RunResult:
    """What :func:`run_pipeline` made: the run directory and a short summary."""

    run_dir: Path
    summary: list[str]
    report: Path | None = None  # the standalone HTML report, when the models ran


def run_pipeline(cfg: RunConfig, *, out: Path | None = None, cache_dir: Path | None = None,
                 jobs: int | None = None, scheduler=None, progress: bool = True) -> RunResult:
    """Run every implemented stage for ``cfg``; the run directory holds every output.

    Parameters
    ----------
    cfg
        The validated run config.
    out
        Run directory (default ``data/runs/<cfg.name>``).
    cache_dir
        Content-addressed caches (default ``data/interim``); safe to share between runs.
    jobs
        Parallel workers (default ``cfg.jobs``).
    scheduler
        Dask scheduler address or client for feature extraction (default: local joblib).
    progress
        Show progress bars.
    """
    from workbench.cohort.check import check_cohort
    from workbench.provenance import cohort_inputs, write_manifest

    jobs = jobs or cfg.jobs
    run_dir = Path(out) if out else DEFAULT_RUNS / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    cohort = cohort_stage(cfg, jobs=jobs, progress=progress)
    timings["cohort"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    qc = check_cohort(cohort, jobs=jobs, progress=progress)
    (run_dir / "qc").mkdir(exist_ok=True)
    qc.images.to_csv(run_dir / "qc" / "qc_images.csv", index=False)
    cohort.add_problems(qc.problems)
    timings["qc"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cache = Path(cache_dir) if cache_dir else DEFAULT_INTERIM
    pre = preprocess_stage(cohort, cfg, cache / "preprocessed", jobs=jobs, progress=progress)
    cohort.add_problems(pre.problems)
    pre.table.to_parquet(run_dir / "preprocessed.parquet", index=False)
    timings["preprocess"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels = pd.Series(cohort.df["pcr"].to_numpy(), index=cohort.df["patient_id"])
    feats = feature_stages(pre.table, cfg, cache, run_dir / "features", jobs=jobs,
                           scheduler=scheduler, labels=labels,
                           progress=progress)
    for name, res in feats.items():
        cohort.add_problems(Problem(str(r["patient_id"]), f"{name}:{r['step']}", r["message"],
                                    r.get("file"), "error")
                            for _, r in res.errors.iterrows())
    timings["features"] = time.perf_counter() - t0

    models = audit = None
    cohort.save(run_dir / "cohort")  # the modelling and audit stages read it from the run
    if len(cohort.labelled()) and cfg.classifiers:
        t0 = time.perf_counter()
        try:
            models = model_stage(cfg, run_dir, cohort, jobs=jobs, progress=progress)
        except WorkbenchError as exc:  # e.g. too few patients of a class: recorded
            cohort.add_problems([Problem(None, "model", f"modelling skipped: {exc.message}",
                                         None, "warning")])
        timings["models"] = time.perf_counter() - t0
        if models is not None and cfg.audit.permutations:
            t0 = time.perf_counter()
            try:
                audit = audit_stage(cfg, run_dir, jobs=jobs, progress=progress)
            except WorkbenchError as exc:
                cohort.add_problems([Problem(None, "audit", f"null audit skipped: "
                                             f"{exc.message}", None, "warning")])
            timings["audit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ibsi = ibsi_stage(run_dir)
    timings["ibsi"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        table1_stage(cohort, run_dir / "table1", seed=cfg.seed,
                     test_size=cfg.protocol.test_size)
    except CohortError as exc:  # e.g. a class too small to split: recorded, not fatal
        cohort.add_problems([Problem(None, "table1", f"Table 1 skipped: {exc.message}",
                                     None, "warning")])
    timings["table1"] = time.perf_counter() - t0

    cohort.save(run_dir / "cohort")
    inputs = cohort_inputs(cohort.df, cohort.image_columns + ["mask"])
    if cfg.source:
        inputs["config"] = cfg.source
    write_manifest(run_dir, config=cfg, inputs=inputs,
                   extra={"stages_seconds": {k: round(v, 2) for k, v in timings.items()},
                          "cohort": {"name": cohort.name, "source": cohort.source,
                                     "patients": len(cohort.df),
                                     "preprocessed": len(pre.table),
                                     "problems": len(cohort.problems)},
                          "features": {name: {"patients": int(len(res.features)),
                                              "columns": int(res.features.shape[1]),
                                              "failed": int(res.n_failed),
                                              "computed": int(res.n_computed),
                                              "cached": int(res.n_cached),
                                              "seconds": round(float(res.seconds), 2)}
                                       for name, res in feats.items()},
                          "deep_weights": (feats["deep"].provenance if "deep" in feats
                                           else None),
                          "models": (None if models is None else
                                     {"seconds": round(models.seconds, 1),
                                      "cached": models.cached,
                                      "protocols": sorted(models.metrics["protocol"].unique()),
                                      "skipped": len(models.skipped)}),
                          "audit": (None if audit is None else
                                    audit.attrs["summary"].to_dict(orient="records")),
                          "ibsi": ibsi})
    report = None
    if models is not None:  # the report needs the modelling tables
        t0 = time.perf_counter()
        report = report_stage(run_dir)
        timings["report"] = time.perf_counter() - t0
    summary = _summary(cohort, pre, timings, run_dir)
    for name, res in feats.items():
        summary.insert(-2, f"{name}: {res.features.shape[1]} features x {len(res.features)} "
                           f"patients ({res.n_computed} computed, {res.n_cached} cached, "
                           f"{res.n_failed} failed)")
    if "deep" in feats:
        summary.insert(-2, f"deep weights: {feats['deep'].label}")
    if models is not None:
        from workbench.models.stage import headline

        best = [fs for fs in ("fusion_clinical_kinetic", "fusion_clinical", "fusion",
                              "radiomics", "clinical") if fs in set(models.metrics["feature_set"])]
        if best:
            summary[-2:-2] = headline(models.metrics, best[0])
    if audit is not None:
        for _, r in audit.attrs["summary"].iterrows():
            if r["split"] == "test":
                summary.insert(-2, f"null audit ({audit['feature_set'].iloc[0]}, "
                                   f"{int(r['runs'])} permutations) {r['protocol']}: test AUC "
                                   f"{r['mean']:.3f} ± {r['sd']:.3f}")
    if ibsi.get("line"):
        summary.insert(-2, ibsi["line"])
    if models is not None and models.cached:
        summary.insert(-2, "models: inputs, settings and code unchanged; outputs reused")
    if audit is not None and audit.attrs.get("cached"):
        summary.insert(-2, "null audit: inputs, settings and code unchanged; outputs reused")
    return RunResult(run_dir, summary, report)


def _summary(cohort: CohortTable, pre, timings: dict[str, float], run_dir: Path) -> list[str]:
    probs = problems_frame(cohort.problems)
    n_err = int((probs["severity"] == "error").sum()) if not probs.empty else 0
    lines = [f"cohort {cohort.name}: {len(cohort.df)} patients, "
             f"{int(cohort.df['pcr'].notna().sum())} labelled",
             f"preprocessed {len(pre.table)} ({pre.n_computed} computed, {pre.n_cached} cached)",
             f"problems: {n_err} errors, {len(probs) - n_err} warnings "
             f"(see {run_dir / 'cohort' / 'problems.csv'})",
             "stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    for line in lines:
        log.info(line)
    return lines

