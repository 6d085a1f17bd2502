"""``run_pipeline``: every stage of a run, in order, into one run directory.

cohort -> image QC -> preprocessing -> features (radiomics | kinetic | deep) -> models (honest
and paper protocols) -> null audit -> IBSI conformance -> Table 1 -> run manifest -> HTML
report. Images and features are cached by content, QC results, the models, the audit and the
report by their inputs, settings and code, and file digests by each file's identity and time
stamps (:class:`~workbench.hashing.DigestCache`), so a warm rerun only re-reads and re-checks.
The layout of the run directory is :mod:`workbench.rundir`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workbench.cohort.table import CohortTable, Problem, problems_frame
from workbench.config import RunConfig
from workbench.errors import ConfigError, WorkbenchError
from workbench.evaluation.summary import calibration_warnings, headline
from workbench.features.extract import FeatureResult
from workbench.hashing import remembered_digests
from workbench.names import MODEL_STRATEGIES
from workbench.pipeline.controls import control_lines, controls_stage
from workbench.pipeline.diagnostics import known_truth_lines, known_truth_stage
from workbench.pipeline.harmonisation import harmonisation_lines, harmonisation_stage
from workbench.pipeline.manifest import manifest_stage
from workbench.pipeline.models import ModelStageResult, audit_stage, model_stage
from workbench.pipeline.preprocess import PreprocessResult
from workbench.pipeline.robustness import robustness_lines, robustness_stage
from workbench.pipeline.settings import (
    default_cache,
    default_run_dir,
    modelled_sets,
    needs_images,
)
from workbench.pipeline.stages import (
    cohort_line,
    cohort_stage,
    count_line,
    feature_stages,
    ibsi_stage,
    preprocess_stage,
    qc_stage,
    report_stage,
    table1_or_problem,
)
from workbench.pipeline.validate import require_run_inputs
from workbench.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["RunResult", "run_pipeline"]

#: Feature sets tried, richest first, for the headline lines of a run.
HEADLINE_SETS = ("fusion_clinical_kinetic", "fusion_clinical", "fusion", "radiomics",
                 "clinical")


@dataclass
class RunResult:
    """What :func:`run_pipeline` made."""

    run_dir: Path
    summary: list[str]
    report: Path | None = None  # the standalone HTML report, when the models ran
    timings: dict[str, float] = field(default_factory=dict)
    models: ModelStageResult | None = None
    audit: pd.DataFrame | None = None
    features: dict[str, FeatureResult] = field(default_factory=dict)
    #: Patients of the source excluded at some stage (table, QC, preprocessing, features).
    n_excluded: int = 0

    @property
    def run(self) -> RunDir:
        return RunDir(self.run_dir)


@contextmanager
def _timed(seconds: dict[str, float], name: str):
    """Record the wall time of the ``with`` block in ``seconds[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = time.perf_counter() - start


def run_pipeline(cfg: RunConfig, *, out: Path | None = None, cache_dir: Path | None = None,
                 jobs: int | None = None, scheduler=None, progress: bool = True) -> RunResult:
    """Run every stage for ``cfg``; the run directory holds every output.

    Parameters
    ----------
    cfg
        The validated run config.
    out
        Run directory (default ``data/runs/<cfg.name>``).
    cache_dir
        Caches (default ``data/interim``): preprocessed images and features by content, QC
        results by their inputs' contents and code, and the file digests of
        :class:`~workbench.hashing.DigestCache` (``file_digests.json``); safe to share
        between runs.
    jobs
        Parallel workers (default ``cfg.jobs``).
    scheduler
        Dask scheduler address or client for feature extraction (default: local joblib).
    progress
        Show progress bars.

    Raises
    ------
    ConfigError
        Before any work, when something the run will read is missing or invalid
        (:func:`~workbench.pipeline.validate.require_run_inputs`).
    """
    require_run_inputs(cfg)
    jobs = jobs or cfg.jobs
    run = RunDir(Path(out) if out else default_run_dir(cfg))
    run.root.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else default_cache()
    # Images are hashed by several stages and the manifest; unchanged files only once ever.
    with remembered_digests(cache / DIGESTS_FILE):
        return _run_stages(cfg, run, cache, jobs=jobs, scheduler=scheduler, progress=progress)


#: The file digest cache of a run (:class:`~workbench.hashing.DigestCache`) in the cache folder.
DIGESTS_FILE = "file_digests.json"


def _run_stages(cfg: RunConfig, run: RunDir, cache: Path, *, jobs: int, scheduler,
                progress: bool) -> RunResult:
    timings: dict[str, float] = {}
    with _timed(timings, "cohort"):
        cohort = cohort_stage(cfg, jobs=jobs, progress=progress)
    pre, feats = None, {}
    if needs_images(cfg):
        if not cohort.phases:
            raise ConfigError(f"cohort {cohort.name} ({cohort.source}) has no image columns, "
                              f"but the feature sets {list(modelled_sets(cfg))} need image "
                              "features; use feature_sets: [clinical] (and audit.feature_set: "
                              "clinical) for a clinical-only run", step="config",
                              path=cfg.source)
        with _timed(timings, "qc"):
            qc_stage(cohort, run, jobs=jobs, progress=progress,
                     max_voxels=cfg.limits.max_voxels, store=cache / "qc")
        with _timed(timings, "preprocess"):
            pre = preprocess_stage(cohort, cfg, cache / "preprocessed", jobs=jobs,
                                   progress=progress)
            cohort.add_problems(pre.problems)
            run.write("preprocessed", pre.table)
        with _timed(timings, "features"):
            labels = pd.Series(cohort.df["pcr"].to_numpy(), index=cohort.df["patient_id"])
            feats = feature_stages(pre.table, cfg, cache, run, jobs=jobs, scheduler=scheduler,
                                   labels=labels, progress=progress, cohort=cohort)
            for name, res in feats.items():
                cohort.add_problems(res.problems(name))
    else:  # said once, in the problems table and the summary
        cohort.add_problems([Problem(None, "images", "image QC, preprocessing and feature "
                                     f"extraction skipped: the feature sets "
                                     f"{list(modelled_sets(cfg))} need no image features",
                                     None, "warning")])

    models = audit = truth = None
    rigour: dict[str, object] = {}
    cohort.save(run.path("cohort").parent)  # the modelling and audit stages read it
    if pre is not None and cfg.robustness.enabled and "radiomics" in feats:
        with _timed(timings, "robustness"):  # before the models: selection.robust_icc
            rigour["robustness"] = _optional_stage(
                cohort, "robustness", lambda: robustness_stage(
                    cfg, run, cache, jobs=jobs, progress=progress))
    if len(cohort.labelled()) and (cfg.classifiers or len(cfg.strategies.names) > 1):
        with _timed(timings, "models"):
            try:
                models = model_stage(cfg, run, cohort.df, jobs=jobs, progress=progress)
            except WorkbenchError as exc:  # e.g. too few patients of a class: recorded
                cohort.add_problems([Problem(None, "model", f"modelling skipped: "
                                             f"{exc.message}", None, "warning")])
        if models is not None and cfg.audit.permutations:
            with _timed(timings, "audit"):
                try:
                    audit = audit_stage(cfg, run, jobs=jobs, progress=progress)
                except WorkbenchError as exc:
                    cohort.add_problems([Problem(None, "audit", f"null audit skipped: "
                                                 f"{exc.message}", None, "warning")])
    if models is not None and cfg.harmonisation.method != "none" and cfg.harmonisation.compare:
        with _timed(timings, "harmonisation"):
            rigour["harmonisation"] = _optional_stage(
                cohort, "harmonisation", lambda: harmonisation_stage(
                    cfg, run, jobs=jobs, progress=progress))
    if models is not None and pre is not None and cfg.controls.enabled and "radiomics" in feats:
        with _timed(timings, "controls"):
            rigour["controls"] = _optional_stage(
                cohort, "controls", lambda: controls_stage(
                    cfg, run, cache, jobs=jobs, progress=progress))
    if models is not None:  # synthetic cohorts: how close the models come to the truth
        with _timed(timings, "known_truth"):
            try:
                truth = known_truth_stage(cfg, run)
            except WorkbenchError as exc:
                cohort.add_problems([Problem(None, "known_truth", "known-truth diagnostics "
                                             f"skipped: {exc.message}", None, "warning")])
    with _timed(timings, "ibsi"):
        ibsi = ibsi_stage(run)
    with _timed(timings, "table1"):
        table1_or_problem(cohort, run, cfg)

    cohort.save(run.path("cohort").parent)
    manifest_stage(cfg, run, ibsi=ibsi, extra=_runtime_facts(timings, feats, models))
    report = None
    if models is not None:  # the report needs the modelling tables
        with _timed(timings, "report"):
            report = report_stage(run)
    summary = _summary(cohort, pre, feats, models, audit, ibsi, timings, run)
    summary[-2:-2] = _rigour_lines(rigour)
    if truth is not None:  # after the headline AUCs, before the problems line
        summary[-2:-2] = known_truth_lines(truth)
        for line in known_truth_lines(truth):
            log.info(line)
    return RunResult(run.root, summary, report, timings, models, audit, feats,
                     n_excluded=_n_excluded(pre, feats, cohort))


def _optional_stage(cohort: CohortTable, name: str, stage):
    """Run a stage whose failure must not lose the run: a WorkbenchError is recorded as a
    warning problem naming the stage, and None returned."""
    try:
        result = stage()
    except WorkbenchError as exc:
        cohort.add_problems([Problem(None, name, f"{name} stage skipped: {exc.message}", None,
                                     "warning")])
        return None
    problems = getattr(result, "problems", None) or []
    cohort.add_problems([dataclasses.replace(p, severity="warning") for p in problems])
    return result


def _rigour_lines(rigour: dict) -> list[str]:
    """Summary lines of the robustness, harmonisation and controls stages that ran."""
    lines = []
    if rigour.get("robustness") is not None:
        lines += robustness_lines(rigour["robustness"])
    if rigour.get("harmonisation") is not None:
        lines += harmonisation_lines(rigour["harmonisation"])
    if rigour.get("controls") is not None:
        lines += control_lines(rigour["controls"])
    for line in lines:
        log.info(line)
    return lines


def _n_excluded(pre: PreprocessResult | None, feats: dict[str, FeatureResult],
                cohort: CohortTable) -> int:
    """Patients of the source without features of every extracted family (or, with no
    feature stage, not preprocessed)."""
    if pre is None:  # a clinical-only run: excluded at the table, or with an error recorded
        kept = set(cohort.patient_ids) - cohort.patients_with_errors()
        return len(cohort.known_patients()) - len(kept)
    if not feats:
        return pre.n_failed + pre.n_upstream
    complete = set.intersection(*(set(res.features.index) for res in feats.values()))
    return pre.n_patients - len(complete)


def _runtime_facts(timings: dict[str, float], feats: dict[str, FeatureResult],
                   models: ModelStageResult | None) -> dict:
    """What only the running pipeline knows: timings, cache counts, modelling seconds."""
    return {"stages_seconds": {k: round(v, 2) for k, v in timings.items()},
            "features": {name: {"patients": int(len(res.features)),
                                "columns": int(res.features.shape[1]),
                                "failed": int(res.n_failed), "computed": int(res.n_computed),
                                "cached": int(res.n_cached),
                                "seconds": round(float(res.seconds), 2)}
                         for name, res in feats.items()},
            "models": (None if models is None else
                       {"seconds": round(models.seconds, 1), "cached": models.cached,
                        "protocols": sorted(models.metrics["protocol"].unique()),
                        "skipped": len(models.skipped)})}


def _summary(cohort: CohortTable, pre: PreprocessResult | None, feats: dict[str, FeatureResult],
             models: ModelStageResult | None, audit: pd.DataFrame | None, ibsi: dict,
             timings: dict[str, float], run: RunDir) -> list[str]:
    """The lines printed at the end of a run (every AUC next to its protocol)."""
    probs = problems_frame(cohort.problems)
    n_err = int((probs["severity"] == "error").sum()) if not probs.empty else 0
    lines = [cohort_line(cohort)]
    if pre is None:
        lines.append("images: QC, preprocessing and features skipped (the feature sets need "
                     "no image features)")
    else:
        lines.append(f"preprocessed {len(pre.table)} ({pre.n_computed} computed, "
                     f"{pre.n_cached} cached); " + count_line(pre.n_patients, len(pre.table),
                                                               pre.n_failed, pre.n_upstream))
    for name, res in feats.items():
        lines.append(f"{name}: {res.features.shape[1]} features x {len(res.features)} "
                     f"patients ({res.n_computed} computed, {res.n_cached} cached); "
                     + count_line(res.n_patients, len(res.features), res.n_failed,
                                  res.n_upstream))
    if "deep" in feats:
        lines.append(f"deep weights: {feats['deep'].label}")
    if models is not None:
        lines.append(models.exclusion_line)
        metrics = models.metrics
        best = [fs for fs in HEADLINE_SETS if fs in set(metrics["feature_set"])]
        if best:
            ran = set(metrics.loc[metrics["feature_set"] == best[0], "classifier"])
            heads = [(best[0], c) for c in ("lr", *MODEL_STRATEGIES) if c in ran]
            for fs, clf in heads:
                lines += headline(metrics, fs, clf)
            lines += calibration_warnings(metrics, heads)
    if audit is not None:
        for _, r in audit.attrs["summary"].iterrows():
            if r["split"] == "test":
                none = int(r.get("no_model", 0) or 0)
                start = (f"null audit ({audit['feature_set'].iloc[0]}, "
                         f"{int(r['runs']) + none} permutations) {r['protocol']}"
                         f"/{r.get('classifier', '')}: ")
                lines.append(start + (f"test AUC {r['mean']:.3f} ± {r['sd']:.3f}"
                                      if int(r["runs"]) else "no AUC")
                             + (f" (kept no feature in {none} permutations: nothing "
                                "stable in noise)" if none else ""))
    if ibsi.get("line"):
        lines.append(ibsi["line"])
    if models is not None and models.cached:
        lines.append("models: inputs, settings and code unchanged; outputs reused")
    if audit is not None and audit.attrs.get("cached"):
        lines.append("null audit: inputs, settings and code unchanged; outputs reused")
    lines += [f"problems: {n_err} errors, {len(probs) - n_err} warnings "
              f"(see {run.path('problems')})",
              "stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    for line in lines:
        log.info(line)
    return lines
