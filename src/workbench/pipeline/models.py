"""The modelling and null-audit stages: protocols x feature sets x classifiers -> run tables.

Inputs are the feature tables of a run directory, the cohort table (labels and clinical
columns) and the run config. Outputs, all under ``<run>/models/`` (see :mod:`workbench.rundir`
for the full contract): ``predictions`` (patient_id, protocol, feature_set, classifier, split
cv | test, repeat, fold, probability, label), ``metrics`` (AUC with DeLong CI; accuracy,
sensitivity, specificity, precision, NPV, F1 with bootstrap CIs; Brier, calibration intercept
and slope), ``selection``, ``signatures``, ``lasso_cv``, ``shap`` (final models on the test
patients), ``skipped``, ``excluded`` (every patient of the cohort left out of modelling, and
why), ``split`` and the final models ``<protocol>/<feature_set>__<classifier>
.skops``. Every table carries its ``protocol``; rows from ``paper`` also carry the leakage
warning.

Both stages are skipped when their inputs, settings and code are unchanged
(:mod:`workbench.pipeline.cache`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.cohort.table import CohortTable
from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.evaluation.curves import model_curves
from workbench.evaluation.explain import explain
from workbench.evaluation.summary import evaluate
from workbench.external.deploy import model_metadata
from workbench.models.audit import null_audit, summarise
from workbench.models.feature_sets import FEATURE_SETS, available_blocks, clinical_matrix
from workbench.models.fusion import save_model
from workbench.models.protocols import ProtocolResult, run_protocol
from workbench.models.tuned import refuse_tuned_audit, sets_using, tuned_blocks, withhold_tuned_cv
from workbench.names import LEAKAGE_WARNING
from workbench.pipeline import cache
from workbench.pipeline.settings import (
    classifiers_for,
    harmonisation_inputs,
    modelling_settings,
    needs_images,
    protocol_settings,
    selector_factory,
    strategy_factory,
    strategy_grid,
)
from workbench.rundir import AUDIT_OUTPUTS, FEATURE_FAMILIES, MODEL_OUTPUTS, RunDir
from workbench.selection import check_patterns

log = logging.getLogger(__name__)

def load_features(run_dir: Path | RunDir, names=FEATURE_FAMILIES) -> pd.DataFrame:
    """Join the run's feature tables on patient_id (inner join: every block for everyone)."""
    run = RunDir(run_dir)
    frames = []
    for name in names:
        if run.exists(name):
            frame = run.read(name)
            frame.index = frame.index.astype(str)
            frames.append(frame)
    if not frames:
        raise WorkbenchError(f"no feature table under {run.root / 'features'}; run the "
                             "feature stages first", step="model")
    out = frames[0]
    for frame in frames[1:]:
        out = out.join(frame, how="inner")
    return out


def load_modelling_inputs(run_dir: Path | RunDir, cohort: pd.DataFrame | None = None, *,
                          image_free: bool = False
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Features, clinical design matrix and labels of the labelled patients of a run.

    ``cohort`` defaults to the run's ``cohort/cohort.parquet``; only patients with a pCR label
    and a feature row are kept, in the feature table's order. ``image_free`` (a run whose
    feature sets need no image features): every labelled patient without a recorded error
    (e.g. a clinical value that could not be read), with an empty feature table.
    """
    run = RunDir(run_dir)
    if cohort is None:
        cohort = run.read("cohort")
    if image_free:
        saved = CohortTable.load(run.path("cohort").parent) if run.exists("cohort") else None
        bad = saved.patients_with_errors() if saved is not None else set()
        ids = cohort["patient_id"].astype(str)
        ids = ids[cohort["pcr"].notna().to_numpy() & ~ids.isin(bad).to_numpy()]
        features = pd.DataFrame(index=pd.Index(ids.tolist(), name="patient_id"))
    else:
        features = load_features(run_dir)
    labelled = cohort[cohort["pcr"].notna()
                      & cohort["patient_id"].astype(str).isin(features.index)]
    y = pd.Series(labelled["pcr"].astype(int).to_numpy(),
                  index=labelled["patient_id"].astype(str))
    return features.loc[y.index], clinical_matrix(labelled), y


#: Columns of ``models/excluded.csv``.
EXCLUDED_COLUMNS = ["patient_id", "reason", "message"]


def modelling_exclusions(run_dir: Path | RunDir, cohort: pd.DataFrame | None,
                         features: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """Every patient the cohort names that is not among the modelling inputs ``y``, and why.

    ``reason`` is ``unlabelled`` (no pCR label: prediction only) or ``excluded upstream``
    (excluded at the cohort table, or no row in some feature table of the run: the message
    names the table and the first recorded reason).
    """
    run = RunDir(run_dir)
    saved = (CohortTable.load(run.path("cohort").parent) if run.exists("cohort") else None)
    if cohort is None:
        cohort = saved.df if saved is not None else run.read("cohort")
    first = {}
    for problem in (saved.problems if saved is not None else []):
        if problem.severity == "error" and problem.patient_id not in first:
            first[problem.patient_id] = f"{problem.step}: {problem.message}"
    used = set(y.index)
    tables = {name: set(pd.read_parquet(run.path(name), columns=[]).index.astype(str))
              for name in run.feature_families()}  # the patient index only, not 8,576 columns
    rows = []
    for pid, label in zip(cohort["patient_id"].astype(str), cohort["pcr"], strict=True):
        if pid in used:
            continue
        if pd.isna(label):
            rows.append((pid, "unlabelled", "no pCR label: prediction only"))
            continue
        if not tables:  # a clinical-only run: only a recorded error excludes a patient
            rows.append((pid, "excluded upstream", first.get(pid, "no feature table")))
            continue
        missing = [name for name, ids in tables.items() if pid not in ids]
        where = ", ".join(f"features/{name}.parquet" for name in missing) or "the feature tables"
        why = first.get(pid, f"see features/{missing[0]}.errors.csv" if missing else "")
        rows.append((pid, "excluded upstream", f"no row in {where}" + (f" ({why})" if why
                                                                        else "")))
    kept = set(cohort["patient_id"].astype(str))
    for problem in (saved.excluded_at_table() if saved is not None else []):
        if problem.patient_id not in kept and problem.step == "validate":
            rows.append((problem.patient_id, "excluded upstream",
                         f"excluded at the cohort table: {problem.message}"))
    frame = pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)
    return frame.drop_duplicates(subset=["patient_id", "reason"], ignore_index=True)


def exclusion_line(excluded: pd.DataFrame, n_used: int) -> str:
    """``"model inputs: 12 patients: 10 used, 2 excluded (1 without a pCR label, 1 excluded
    upstream)"``."""
    unlabelled = int((excluded["reason"] == "unlabelled").sum())
    upstream = len(excluded) - unlabelled
    return (f"model inputs: {n_used + len(excluded)} patients: {n_used} used, {len(excluded)} "
            f"excluded ({unlabelled} without a pCR label, {upstream} excluded upstream)")


@dataclass
class ModelStageResult:
    """What :func:`run_models` wrote, plus the in-memory protocol results."""

    out_dir: Path
    results: dict[str, ProtocolResult]
    metrics: pd.DataFrame
    seconds: float
    skipped: list[dict] = field(default_factory=list)
    cached: bool = False  # outputs reused from an identical earlier run (model_stage)
    #: Patients of the cohort left out of modelling (``models/excluded.csv``).
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=EXCLUDED_COLUMNS))
    n_used: int = 0

    @property
    def exclusion_line(self) -> str:
        return exclusion_line(self.excluded, self.n_used)


def explain_final(result: ProtocolResult, feature_sets, *, seed: int = 0) -> pd.DataFrame:
    """SHAP values of the final models of ``feature_sets`` on the test patients (long)."""
    frames = []
    for (fs, clf_name), model in result.final_models.items():
        if fs not in feature_sets:
            continue
        X_train, X_test = result.final_designs[fs]
        try:
            exp = explain(model.classifier, X_test, X_train, background_size=50, seed=seed)
        except Exception as exc:  # an explainer failure must not lose the run
            log.warning("SHAP skipped for %s/%s: %s", fs, clf_name, exc)
            continue
        long = exp.long()
        long.insert(0, "classifier", clf_name)
        long.insert(0, "feature_set", fs)
        long.insert(0, "protocol", result.protocol)
        long["output_space"] = exp.output_space
        frames.append(long)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def label_tuned_blocks(cfg: RunConfig, run_dir: Path | RunDir,
                       features: pd.DataFrame) -> tuple[str, ...]:
    """Deep blocks of ``features`` fitted on pCR labels: fine-tuned according to the run's
    ``deep_weights.json``, or tuned by a config with ``deep.fine_tune``
    (see :mod:`workbench.models.tuned`)."""
    run = RunDir(run_dir)
    info = run.read("deep_weights") if run.exists("deep_weights") else None
    blocks = tuned_blocks(info, cfg.deep.networks if cfg.deep.fine_tune else ())
    present = set(available_blocks(features.columns))
    return tuple(b for b in blocks if b in present)


def _with_tuned(settings: dict, tuned: tuple[str, ...]) -> dict:
    """Stage-key settings plus the label-tuned blocks (absent when none: keys unchanged)."""
    return {**settings, "label_tuned_blocks": list(tuned)} if tuned else settings


@dataclass
class LabelFreeSteps:
    """The steps put before every strategy's selection that use no label (see
    :func:`~workbench.pipeline.settings.selector_factory`): the ICC of each radiomics feature
    for ``selection.robust_icc`` and ComBat's ``(batch, covariates)``."""

    robust: pd.Series | None = None
    harmonise: tuple[pd.Series, pd.DataFrame | None] | None = None

    def key_frames(self) -> list:
        """What the stage cache keys must hold besides the modelling inputs."""
        out = [] if self.robust is None else [self.robust]
        if self.harmonise is not None:
            out.append(self.harmonise[0])
            if self.harmonise[1] is not None:
                out.append(self.harmonise[1])
        return out

    def factories(self, cfg: RunConfig):
        """``(selector, strategy)`` factories with these steps."""
        return (selector_factory(cfg, robust=self.robust, harmonise=self.harmonise),
                strategy_factory(cfg, robust=self.robust, harmonise=self.harmonise))


def label_free_steps(cfg: RunConfig, run_dir: Path | RunDir, cohort: pd.DataFrame | None,
                     clinical: pd.DataFrame) -> LabelFreeSteps:
    """:class:`LabelFreeSteps` of the config, read from the run (``robustness/icc.csv``) and
    the cohort (the batch column).

    Raises
    ------
    WorkbenchError
        ``selection.robust_icc`` without the robustness stage's ICC table in the run.
    """
    run = RunDir(run_dir)
    robust = None
    if cfg.selection.robust_icc is not None:
        if not run.exists("icc"):
            raise WorkbenchError(f"selection.robust_icc needs {run.path('icc')} (the "
                                 "robustness stage: workbench robustness --run RUN, or "
                                 "robustness.enabled in the run config)", step="model")
        icc = run.read("icc")
        robust = pd.Series(icc["icc"].to_numpy(float), index=icc["feature"].astype(str),
                           name="icc")
    if cfg.harmonisation.method != "none" and cohort is None:
        cohort = run.read("cohort")
    harmonise = harmonisation_inputs(cfg, cohort, clinical) if cohort is not None else None
    return LabelFreeSteps(robust, harmonise)


def check_strategy_inputs(cfg: RunConfig, features: pd.DataFrame,
                          clinical: pd.DataFrame) -> None:
    """Refuse, before any fit, a ``strategies.prespecified`` or ``strategies.unpenalised``
    entry that names no column (the message lists the closest names): a typo must not
    become a silently empty model or a silently penalised covariate."""
    strategies, strategy_sets = strategy_grid(cfg)
    if "prespecified" in strategies:
        check_patterns(cfg.strategies.prespecified, features.columns,
                       what="strategies.prespecified")
    if strategies and any(FEATURE_SETS[fs].clinical for fs in strategy_sets):
        check_patterns(cfg.strategies.unpenalised, clinical.columns,
                       where="the clinical design matrix", what="strategies.unpenalised")


def run_models(cfg: RunConfig, features: pd.DataFrame, clinical: pd.DataFrame, y: pd.Series,
               run_dir: str | Path | RunDir, *, jobs: int | None = None, progress: bool = False,
               shap_sets: tuple[str, ...] | None = None, save_models: bool = True,
               n_boot: int = 1000, tuned: tuple[str, ...] | None = None,
               steps: LabelFreeSteps | None = None) -> ModelStageResult:
    """Run every configured protocol and write the ``models/`` tables of ``run_dir``.

    ``tuned``: blocks fitted on labels before modelling (default
    :func:`label_tuned_blocks`); the honest CV estimates of the feature sets using them are
    withheld, with the reason in the metrics, predictions and skipped tables
    (:func:`~workbench.models.tuned.withhold_tuned_cv`)."""
    start = time.perf_counter()
    run = RunDir(run_dir)
    tuned = label_tuned_blocks(cfg, run, features) if tuned is None else tuned
    settings = protocol_settings(cfg, jobs=jobs)
    strategies, strategy_sets = strategy_grid(cfg)
    check_strategy_inputs(cfg, features, clinical)
    classifiers = cfg.classifiers if "study" in cfg.strategies.names else ()
    selector, make_strategy = (steps or LabelFreeSteps()).factories(cfg)
    results: dict[str, ProtocolResult] = {}
    for protocol in cfg.protocol.kinds:
        log.info("protocol %s: %d feature sets x %d classifiers; strategies %s on %d sets",
                 protocol, len(cfg.feature_sets), len(classifiers), list(strategies),
                 len(strategy_sets))
        results[protocol] = run_protocol(
            protocol, features, clinical, y, feature_sets=cfg.feature_sets,
            classifiers=classifiers, selector=selector,
            make_clf=classifiers_for(cfg), settings=settings, progress=progress,
            strategies=strategies, strategy_sets=strategy_sets,
            make_strategy=make_strategy)

    preds = pd.concat([r.predictions for r in results.values()], ignore_index=True)
    metrics = evaluate(preds, threshold_rule=cfg.protocol.threshold,
                       fixed_threshold=cfg.protocol.fixed_threshold, n_boot=n_boot,
                       seed=cfg.seed)
    preds["warning"] = np.where(preds["protocol"] == "paper", LEAKAGE_WARNING, None)
    tuned_sets = sets_using(tuned, cfg.feature_sets)
    metrics, preds, withheld = withhold_tuned_cv(metrics, preds, tuned_sets)
    if withheld:
        log.warning("honest CV estimates of %s not reported: fine-tuned deep features (%s)",
                    ", ".join(sorted({w["feature_set"] for w in withheld})), ", ".join(tuned))
    run.write("predictions", preds)
    run.write("metrics", metrics)
    run.write("curves", model_curves(preds))
    for name in ("selection", "signatures", "lasso_cv"):
        frames = [getattr(r, name) for r in results.values() if not getattr(r, name).empty]
        run.write(name, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
    skipped = [{"protocol": p, **d} for p, r in results.items() for d in r.skipped] + withheld
    run.write("skipped", pd.DataFrame(skipped))
    first = next(iter(results.values()))
    run.write("split", first.split.rename_axis("patient_id").reset_index())

    if shap_sets is None:  # the richest feature set that ran
        ran = [fs for fs in cfg.feature_sets if fs in set(preds["feature_set"])]
        shap_sets = tuple(ran[-1:])
    shap_frames = [explain_final(r, shap_sets, seed=cfg.seed) for r in results.values()]
    shap_frames = [f for f in shap_frames if not f.empty]
    run.write("shap", pd.concat(shap_frames, ignore_index=True) if shap_frames
              else pd.DataFrame())

    if save_models:
        for protocol, r in results.items():
            for (fs, clf_name), model in {**r.final_models, **r.strategy_models}.items():
                train = r.split.index[r.split == "train"].tolist()
                model.metadata = {"config": cfg.model_dump(mode="json"), "seed": cfg.seed,
                                  "train_patients": train,
                                  "fitted_on": f"training split of the development run "
                                               f"({len(train)} patients)",
                                  "warning": r.warning, **model_metadata()}
                save_model(model, run.path("model", protocol=protocol, feature_set=fs,
                                           classifier=clf_name))
    return ModelStageResult(out_dir=run.path("metrics").parent, results=results,
                            metrics=metrics, seconds=time.perf_counter() - start,
                            skipped=skipped)


def model_stage(cfg: RunConfig, run_dir: Path | RunDir, cohort: pd.DataFrame | None = None, *,
                jobs: int = 1, progress: bool = True, force: bool = False) -> ModelStageResult:
    """Selection + classifiers under every configured protocol -> ``<run>/models/``.

    Skipped (outputs kept, ``result.cached`` True) when the modelling inputs, the config
    sections that shape them and the modelling code are unchanged since the last complete
    run into this folder (:mod:`workbench.pipeline.cache`); ``force`` reruns anyway.
    ``cohort`` defaults to the run's saved cohort table.
    """
    run = RunDir(run_dir)
    features, clinical, y = load_modelling_inputs(run, cohort, image_free=not needs_images(cfg))
    excluded = modelling_exclusions(run, cohort, features, y)
    run.write("model_excluded", excluded)
    tuned = label_tuned_blocks(cfg, run, features)
    steps = label_free_steps(cfg, run, cohort, clinical)
    key = cache.stage_key([features, clinical, y, *steps.key_frames()],
                          _with_tuned(modelling_settings(cfg), tuned))
    key_file = run.path("models_key")
    outputs = [run.path(name) for name in MODEL_OUTPUTS]
    record = None if force else cache.is_current(key_file, key, outputs)
    if record is not None:
        log.info("models: inputs, settings and code unchanged; reusing %s", key_file.parent)
        skipped = run.read("skipped").to_dict("records") if run.exists("skipped") else []
        return ModelStageResult(out_dir=key_file.parent, results={},
                                metrics=run.read("metrics"),
                                seconds=float(record.get("seconds", 0.0)), skipped=skipped,
                                cached=True, excluded=excluded, n_used=len(y))
    run.folder("models_key")
    cache.invalidate(key_file)
    result = run_models(cfg, features, clinical, y, run, jobs=jobs, progress=progress,
                        tuned=tuned, steps=steps)
    cache.mark_done(key_file, key, seconds=round(result.seconds, 1))
    result.excluded, result.n_used = excluded, len(y)
    return result


def audit_stage(cfg: RunConfig, run_dir: Path | RunDir, *, permutations: int | None = None,
                feature_set: str | None = None, classifier: str | None = None, jobs: int = 1,
                progress: bool = True, force: bool = False) -> pd.DataFrame:
    """Null audit (permuted labels) for honest and paper -> ``<run>/audit/``.

    Defaults come from the config's ``audit`` section (radiomics signature + LR: one block,
    so 20 permutations of both protocols stay affordable). Cached like :func:`model_stage`.
    A feature set with fine-tuned deep features is refused (logged, and the error names the
    reason; :func:`~workbench.models.tuned.refuse_tuned_audit`)."""
    run = RunDir(run_dir)
    features, clinical, y = load_modelling_inputs(run, image_free=not needs_images(cfg))
    feature_set = feature_set or cfg.audit.feature_set
    classifier = classifier or cfg.audit.classifier
    permutations = cfg.audit.permutations if permutations is None else permutations
    tuned = label_tuned_blocks(cfg, run, features)
    try:
        refuse_tuned_audit(feature_set, tuned)
    except WorkbenchError as exc:
        log.warning("%s", exc.message)
        raise
    steps = label_free_steps(cfg, run, None, clinical)
    key = cache.stage_key([features, clinical, y, *steps.key_frames()], _with_tuned({
        **modelling_settings(cfg), "permutations": permutations,
        "feature_set": feature_set, "classifier": classifier,
        "strategies": list(cfg.audit.strategies)}, tuned))
    key_file = run.path("audit_key")
    if not force and cache.is_current(key_file, key, [run.path(n) for n in AUDIT_OUTPUTS]):
        log.info("audit: inputs, settings and code unchanged; reusing %s", key_file.parent)
        audit = run.read("audit")
        audit.attrs["summary"] = run.read("audit_summary")
        audit.attrs["cached"] = True
        return audit
    missing = set(FEATURE_SETS[feature_set].blocks) - set(available_blocks(features.columns))
    if missing:
        raise WorkbenchError(f"null audit on '{feature_set}' needs feature blocks "
                             f"{sorted(missing)} that this run did not extract", step="audit")
    run.folder("audit_key")
    cache.invalidate(key_file)
    strategies = tuple(n for n in cfg.audit.strategies if n != "study")
    selector, make_strategy = steps.factories(cfg)
    audit = null_audit(features, clinical, y,
                       selector=selector, make_clf=classifiers_for(cfg),
                       permutations=permutations, feature_set=feature_set,
                       classifier=classifier if "study" in cfg.audit.strategies else None,
                       protocols=("honest", "paper"),
                       settings=protocol_settings(cfg, jobs=jobs, repeats=1), seed=cfg.seed,
                       progress=progress, tuned_blocks=tuned, strategies=strategies,
                       make_strategy=make_strategy)
    run.write("audit", audit)
    summary = summarise(audit)
    run.write("audit_summary", summary)
    audit.attrs["summary"] = summary
    cache.mark_done(key_file, key, seconds=round(audit.attrs.get("seconds", 0.0), 1))
    return audit
