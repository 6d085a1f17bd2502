"""The image and feature stages of a run, and the small ones around them.

cohort (generate the synthetic cohort if needed, load, validate) -> image QC -> preprocessing
(N4 -> 1 mm -> z-score, content-addressed cache) -> features (radiomics, kinetics, deep;
content-addressed store) ; IBSI conformance ; Table 1 ; HTML report. Each takes the run config
(unpacked by :mod:`workbench.pipeline.settings`) and writes its files through
:class:`~workbench.rundir.RunDir`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd

from workbench.cohort import load_cohort
from workbench.cohort.check import QCReport, check_cohort
from workbench.cohort.synthetic import generate_cohort, generate_multisite_cohort
from workbench.cohort.table import CohortTable, Problem
from workbench.config import RunConfig
from workbench.errors import CohortError, WorkbenchError
from workbench.evaluation.table1 import table1, write_table1
from workbench.features.deep import extract_deep
from workbench.features.extract import FeatureResult
from workbench.features.ibsi import format_report, run_ibsi
from workbench.features.kinetic import extract_kinetic
from workbench.features.radiomics import extract_radiomics
from workbench.hashing import canonical_json, code_digest, sha256_file
from workbench.models.split import stratified_split
from workbench.names import CLINICAL_ONLY_FORMATS
from workbench.pipeline import cache
from workbench.pipeline.manifest import stable_manifest
from workbench.pipeline.preprocess import PreprocessResult, preprocess_cohort
from workbench.pipeline.settings import (
    cohort_path,
    deep_options,
    default_cache,
    kinetic_options,
    preprocess_settings,
    radiomics_params_path,
    synthetic_cohort_dir,
)
from workbench.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["cohort_line", "cohort_stage", "count_line", "feature_stages", "ibsi_stage",
           "preprocess_stage", "qc_stage", "report_key", "report_stage", "table1_stage"]

FEATURE_STAGES = ("radiomics", "kinetic", "deep")


def count_line(total: int, done: int, failed: int, upstream: int) -> str:
    """How a stage's patients went: ``"163 patients: 160 done, 3 excluded (2 failed here, 1
    excluded upstream)"``; every stage's summary line says it, so nobody vanishes unseen."""
    return (f"{total} patients: {done} done, {failed + upstream} excluded ({failed} failed "
            f"here, {upstream} excluded upstream)")


def cohort_line(cohort: CohortTable) -> str:
    """The cohort table's summary line: patients named by the source, kept, excluded."""
    known = cohort.known_patients()
    kept = len(cohort.df)
    return (f"cohort {cohort.name}: {len(known)} patients in the source: {kept} kept "
            f"({int(cohort.df['pcr'].notna().sum())} labelled), {len(known) - kept} excluded "
            "at the cohort table")


def cohort_stage(cfg: RunConfig, *, jobs: int = 1, progress: bool = True) -> CohortTable:
    """Load (and for ``synthetic``, first generate) the configured cohort."""
    fmt = cfg.cohort.format
    if fmt == "synthetic":
        path = synthetic_cohort_dir(cfg)
        syn = cfg.cohort.synthetic
        if syn.sites:
            if not _multisite_matches(path, dict(syn.sites), syn.seed):
                log.info("generating the multi-site synthetic cohort (%s, seed=%d) in %s",
                         dict(syn.sites), syn.seed, path)
                generate_multisite_cohort(path, dict(syn.sites), seed=syn.seed, jobs=jobs,
                                          progress=progress)
        elif not _synthetic_matches(path, syn.n, syn.seed):
            log.info("generating the synthetic cohort (n=%d, seed=%d) in %s", syn.n, syn.seed,
                     path)
            generate_cohort(path, n=syn.n, seed=syn.seed, jobs=jobs, progress=progress)
        return load_cohort(path / "manifest.csv", fmt="manifest", phases=cfg.cohort.phases,
                           coding=dict(cfg.cohort.coding))
    if fmt in CLINICAL_ONLY_FORMATS:  # no images: no phases either
        return load_cohort(cohort_path(cfg), fmt=fmt, coding=dict(cfg.cohort.coding))
    return load_cohort(cohort_path(cfg), fmt=fmt, phases=cfg.cohort.phases,
                       coding=dict(cfg.cohort.coding))


def _multisite_matches(path: Path, sites: dict[str, int], seed: int) -> bool:
    summary = path / "synth_summary.json"
    if not (path / "manifest.csv").is_file() or not summary.is_file():
        return False
    info = json.loads(summary.read_text())
    return info.get("sites") == sites and info.get("seed") == seed


def _synthetic_matches(path: Path, n: int, seed: int) -> bool:
    summary = path / "synth_summary.json"
    if not (path / "manifest.csv").is_file() or not summary.is_file():
        return False
    info = json.loads(summary.read_text())
    # a run's cohort is the development site with images (an external, multi-site or
    # image-less cohort written into the same folder must not pass for it; older summaries
    # lack these keys)
    return (info.get("n") == n and info.get("seed") == seed and not info.get("sites")
            and info.get("site", "development") == "development" and info.get("images", True))


def qc_stage(cohort: CohortTable, run: RunDir | None = None, *, jobs: int = 1,
             progress: bool = True, max_voxels: int | None = None,
             store: Path | None = None) -> QCReport:
    """Image QC of every patient; problems recorded on the cohort, images table in the run.
    ``max_voxels``: the run config's ``limits.max_voxels`` (``None``: the default cap).
    ``store``: QC results keyed by their inputs' contents and the QC code (see
    :func:`~workbench.cohort.check.check_cohort`; ``None``: every patient is read)."""
    qc = check_cohort(cohort, jobs=jobs, progress=progress, max_voxels=max_voxels,
                      store=store)
    if run is not None:
        run.write("qc_images", qc.images)
    cohort.add_problems(qc.problems)
    return qc


def preprocess_stage(cohort: CohortTable, cfg: RunConfig, out: Path | None = None, *,
                     jobs: int = 1, progress: bool = True) -> PreprocessResult:
    """Preprocess every imaging-ready patient into the content-addressed cache
    (``out``, default ``data/interim/preprocessed``)."""
    out = out or default_cache() / "preprocessed"
    return preprocess_cohort(cohort, out, settings=preprocess_settings(cfg), jobs=jobs,
                             progress=progress, max_voxels=cfg.limits.max_voxels)


def feature_stages(pre_table: pd.DataFrame, cfg: RunConfig, cache: Path, run: RunDir | Path,
                   *, jobs: int = 1, scheduler=None, progress: bool = True,
                   stages: tuple[str, ...] = FEATURE_STAGES,
                   labels: pd.Series | None = None,
                   cohort: CohortTable | None = None) -> dict[str, FeatureResult]:
    """Extract every configured feature family into the store and the run directory.

    Writes ``features/<family>.parquet`` and ``features/<family>.errors.csv`` per family (and
    the deep crops and weights provenance) into ``run`` and returns ``{family:
    FeatureResult}``. With ``cohort`` (its problems including preprocessing's), every patient
    it names that is not in ``pre_table`` is listed in each family's errors table as
    excluded upstream, with the first recorded reason (see
    :meth:`~workbench.features.extract.FeatureResult.add_upstream`).
    """
    run = RunDir(run)
    results: dict[str, FeatureResult] = {}
    store = Path(cache) / "features"
    if "radiomics" in stages:
        results["radiomics"] = extract_radiomics(
            pre_table, store, params_path=radiomics_params_path(cfg),
            phases=cfg.radiomics.phases, jobs=jobs, scheduler=scheduler, progress=progress,
            itk_threads=cfg.itk_threads)
    if "kinetic" in stages and cfg.kinetic.enabled:
        results["kinetic"] = extract_kinetic(pre_table, store, **kinetic_options(cfg),
                                             jobs=jobs, scheduler=scheduler, progress=progress,
                                             itk_threads=cfg.itk_threads)
    if "deep" in stages and cfg.deep.networks:
        results["deep"] = extract_deep(pre_table, store, **deep_options(cfg, labels),
                                       progress=progress,
                                       crops_dir=run.folder("crop"))
    ids = [str(pid) for pid in pre_table["patient_id"]] if len(pre_table) else []
    for name, res in results.items():
        res.add_upstream([] if cohort is None else cohort.exclusions(ids, name), ids)
        res.save(run.path(name))
    return results


def ibsi_stage(run: RunDir | Path) -> dict:
    """IBSI-1 digital-phantom conformance (the phantom and reference values shipped with the
    package), recorded with the run."""
    run = RunDir(run)
    report = run_ibsi()
    run.folder("ibsi_rows")
    report.to_csv(run.path("ibsi_rows"))
    text = format_report(report)
    run.write("ibsi_report", text + "\n")
    return {"status": "done", "matched": int(report.matched), "matched_raw":
            int(report.matched_raw), "total": int(report.total),
            "line": text.strip().splitlines()[-1]}


def table1_stage(cohort: CohortTable, out: Path | RunDir, *, seed: int = 42,
                 test_size: float = 0.3):
    """Table 1 on the labelled patients, split as every protocol splits them; written into
    ``out`` (a run directory's ``table1/``, or any folder)."""
    folder = RunDir(out).folder("table1") if isinstance(out, RunDir) else Path(out)
    labelled = cohort.labelled().sort_values("patient_id").reset_index(drop=True)
    split = stratified_split(labelled["patient_id"], labelled["pcr"], test_size=test_size,
                             seed=seed)  # the same split as every protocol (sorted ids)
    table = table1(labelled, split)
    notes = [f"Cohort '{cohort.name}': {len(labelled)} patients with known pCR of "
             f"{len(cohort.df)}; stratified {1 - test_size:.0%}/{test_size:.0%} split, "
             f"seed {seed}.",
             "Continuous: mean ± SD, Wilcoxon rank-sum. Categorical: n (% of known), "
             "Fisher's exact (2×2) or χ². 'missing' rows are not in percentages or tests."]
    paths = write_table1(table, folder, title=f"Table 1 — {cohort.name}", notes=notes)
    split.rename_axis("patient_id").reset_index().to_csv(folder / "split.csv", index=False)
    return table, paths


def table1_or_problem(cohort: CohortTable, run: RunDir, cfg: RunConfig) -> None:
    """:func:`table1_stage` into the run; a cohort too small to split is recorded, not fatal."""
    try:
        table1_stage(cohort, run, seed=cfg.seed, test_size=cfg.protocol.test_size)
    except CohortError as exc:
        cohort.add_problems([Problem(None, "table1", f"Table 1 skipped: {exc.message}", None,
                                     "warning")])


#: Every run file the report reads besides ``run_manifest.json`` (names of
#: :data:`workbench.rundir.RUN_FILES`; a test checks that the report reads no other).
REPORT_INPUTS = ("cohort", "problems", "table1", "selection", "metrics", "predictions",
                 "signatures", "lasso_cv", "shap", "audit", "audit_summary", "ibsi_report",
                 "skipped", "deep_weights", "known_truth",
                 "control_auc", "controls_summary", "icc", "robust_counts", "robust_selected",
                 "robustness_summary", "harmonisation_auc", "harmonisation_audit",
                 "site_features")
#: The packages and modules whose code builds the report.
REPORT_CODE = ("report", "plots", "evaluation", "rundata", "rundir", "names")


def report_key(run: RunDir | Path) -> str:
    """The report's cache key: the bytes of every run file it reads (:data:`REPORT_INPUTS`;
    an absent one counts as absent), the manifest without its run-to-run entries
    (:func:`~workbench.pipeline.manifest.stable_manifest`: creation time, command line, git
    state, timings, cache counts) and the report's code (:data:`REPORT_CODE`). Package
    versions and the config are in the manifest, so they are in the key."""
    run = RunDir(run)
    h = hashlib.sha256()
    for name in REPORT_INPUTS:
        path = run.path(name)
        h.update(f"{name}={sha256_file(path) if path.is_file() else 'absent'};".encode())
    h.update(canonical_json(stable_manifest(run.read("manifest"))).encode())
    h.update(code_digest(REPORT_CODE).encode())
    return h.hexdigest()


def report_stage(run: RunDir | Path, *, force: bool = False) -> Path | None:
    """The standalone HTML report of the run (``report.html``); None if it failed.

    Skipped, the report kept, when :func:`report_key` matches the key stored with it
    (``report.key.json``, written after the report): nothing it shows has changed. Its
    provenance section then shows the creation time, command line, git commit, timings and
    cache counts of the run that built it, which are left out of the key on purpose: they
    describe a run, not its results (a warm rerun, or one after a commit that changed no
    code computing anything shown, would otherwise spend minutes rebuilding an identical
    report only to update them; a code change that matters changes the results' keys, hence
    the report's inputs, or :data:`REPORT_CODE`). ``force`` rebuilds anyway.

    A report failure never loses the run: it is logged with its reason, and
    ``workbench report RUN`` can rebuild it.
    """
    run = RunDir(run)
    out, key_file = run.path("report"), run.path("report_key")
    try:
        key = report_key(run)
    except (OSError, ValueError, WorkbenchError) as exc:  # build_report names what lacks
        log.debug("no report key for %s: %s", run.root, exc)
        key = None
    if key is not None and not force and cache.is_current(key_file, key, [out]):
        log.info("report: its inputs and code are unchanged; keeping %s", out)
        return out
    # Imported here: HoloViews, Bokeh and Panel take seconds to import, and a run whose
    # report is current does not need them.
    from workbench.report import build_report

    cache.invalidate(key_file)
    try:
        built = build_report(run.root, out)
    except Exception as exc:  # the run's tables are written; say why the report is not
        log.error("report of %s failed: %s (rebuild with `workbench report %s`)", run.root,
                  exc, run.root)
        return None
    if key is not None:
        cache.mark_done(key_file, key)
    return built
