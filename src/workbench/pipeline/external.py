"""Carry a saved model to another cohort: strict prediction, external validation, refit.

:func:`score_cohort` is what ``workbench predict`` and ``workbench validate`` share: it builds
the model's inputs for a cohort (image features with the model's own extraction settings, only
when the model needs them; the clinical design matrix), checks their **coverage** (refusing
absent or unreadable features unless ``allow_missing``; :mod:`workbench.external.coverage`)
and predicts. :func:`validate_stage` then writes a validation folder (the files of
:data:`workbench.rundir.VALIDATION_FILES`; inside a run ``validation/<name>/``) and its HTML
report. :func:`refit_stage` refits a run's model on the whole development cohort.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import workbench
from workbench.cohort.table import CohortTable
from workbench.config import RunConfig, parse_config
from workbench.errors import ConfigError, WorkbenchError
from workbench.external import (
    CoverageError,
    case_mix,
    check_coverage,
    coverage_table,
    membership_model,
    model_inputs,
    truth_calibration,
    validation_tables,
)
from workbench.external.deploy import (
    MODEL_FORMAT,
    check_model_file,
    model_metadata,
    needs_image_features,
    refit_on_development,
)
from workbench.files import atomic_write_text
from workbench.models.feature_sets import clinical_matrix
from workbench.models.fusion import FusionModel, load_model, save_model
from workbench.pipeline.models import label_free_steps, load_modelling_inputs
from workbench.pipeline.settings import (
    classifiers_for,
)
from workbench.pipeline.stages import feature_stages, preprocess_stage
from workbench.rundir import VALIDATION_FILES, RunDir, check_component

log = logging.getLogger(__name__)

__all__ = ["FITTED_ON_SPLIT", "MODEL_FORMAT", "ScoredCohort", "check_model_file",
           "model_metadata", "default_user_cache", "model_run",
           "refit_stage", "refuse_install_tree", "score_cohort", "validate_stage",
           "validation_lines"]

#: ``metadata["fitted_on"]`` of a model file saved by a run (older files lack the key).
FITTED_ON_SPLIT = "training split of the development run"


def default_user_cache() -> Path:
    """Where ``predict`` / ``validate`` cache preprocessed images and features by default:
    ``$XDG_CACHE_HOME/pcr-workbench`` (``~/.cache/pcr-workbench``), never the install tree or
    whatever folder the command happens to run in."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pcr-workbench"


def refuse_install_tree(path: Path, flag: str) -> Path:
    """``path``, unless it lies inside the installed ``workbench`` package."""
    package = Path(workbench.__file__).resolve().parent
    resolved = Path(path).expanduser().resolve()
    if resolved == package or package in resolved.parents:
        raise ConfigError(f"{flag} {path} lies inside the installed package ({package}); "
                          "give a folder of your own", step="output")
    return Path(path)


def model_config(model: FusionModel, source: str) -> RunConfig:
    """The run config stored in a model file (its extraction and modelling settings)."""
    return parse_config((model.metadata or {}).get("config") or {}, source=source)


def model_run(model_path: Path) -> RunDir | None:
    """The run a model file belongs to (``<run>/models/<protocol>/<file>.skops``), if any."""
    parents = Path(model_path).resolve().parents
    if len(parents) > 2 and (parents[2] / "cohort" / "cohort.parquet").is_file():
        return RunDir(parents[2])
    return None


@dataclass
class ScoredCohort:
    """A cohort scored by a model: inputs, their coverage, probabilities and problems."""

    features: pd.DataFrame
    coverage: pd.DataFrame
    probability: pd.Series
    problems: list[str] = field(default_factory=list)
    #: per patient: the model inputs imputed for it (``;``-separated), for the output table
    imputed: pd.Series | None = None


def score_cohort(model: FusionModel, cohort: CohortTable, *, cache_dir: Path | None = None,
                 jobs: int = 1, progress: bool = True, allow_missing: bool = False,
                 source: str = "model") -> ScoredCohort:
    """The model's inputs for ``cohort``, checked (see the module docstring), and its
    probabilities.

    Raises
    ------
    WorkbenchError
        When the model needs image features and the cohort has no images.
    CoverageError
        When a feature is absent or has unreadable values and not ``allow_missing``.
    """
    problems: list[str] = check_model_file(model, source)
    if needs_image_features(model):
        if not cohort.phases:
            raise WorkbenchError(f"cohort {cohort.name} has no images, but the model "
                                 f"({model.feature_set}/{model.classifier_name}) needs image "
                                 "features; give a cohort with image and mask columns, or "
                                 "use a clinical model", step="predict")
        cfg = model_config(model, source)
        cache = refuse_install_tree(Path(cache_dir) if cache_dir else default_user_cache(),
                                    "--cache")
        pre = preprocess_stage(cohort, cfg, cache / "preprocessed", jobs=jobs,
                               progress=progress)
        wanted = tuple(dict.fromkeys(b if b in ("radiomics", "kinetic") else "deep"
                                     for b in (model.block_inputs or {}) or _raw_blocks(model)))
        with tempfile.TemporaryDirectory() as tmp:
            feats = feature_stages(pre.table, cfg, cache, Path(tmp), jobs=jobs,
                                   progress=progress, stages=wanted)
        tables = [r.features for r in feats.values()]
        features = tables[0]
        for table in tables[1:]:
            features = features.join(table, how="inner")
        problems += list(pre.problems) + [f"{r['patient_id']}: {r['message']}"
                                          for res in feats.values()
                                          for _, r in res.errors.iterrows()]
        if features.empty:
            first = f"; first: {problems[0]}" if problems else ""
            raise WorkbenchError(f"no patient of cohort {cohort.name} has usable images "
                                 f"({len(cohort.df)} patients, {len(problems)} problems"
                                 f"{first}); the model needs image features", step="predict")
        features = features.join(clinical_matrix(cohort.df), how="left")
    else:
        features = clinical_matrix(cohort.df)
    coverage = coverage_table(model, features, cohort.problems, cohort.df)
    try:
        check_coverage(coverage, allow_missing=allow_missing, cohort=f"cohort {cohort.name}")
    except CoverageError as exc:
        exc.coverage = coverage  # the caller writes and prints it before failing
        raise
    ids = features.index.astype(str)
    needed = [c for c in model.design_columns if c.startswith("clin__")]
    missing = features.reindex(columns=needed).isna().to_numpy(dtype=bool)
    imputed = pd.Series([";".join(np.asarray(needed, dtype=object)[row]) for row in missing],
                        index=ids, dtype=object)
    proba = model.predict_proba(features)[:, 1]
    return ScoredCohort(features, coverage, pd.Series(proba, index=ids), problems, imputed)


def _raw_blocks(model: FusionModel) -> list[str]:
    return [s for s in dict.fromkeys(model_inputs(model)) if s in
            ("radiomics", "kinetic") or s in (model_config(model, "model").deep.networks)]


# --------------------------------------------------------------------------- validation
def _development(run: RunDir | None, model: FusionModel) -> tuple[pd.DataFrame | None,
                                                                   pd.DataFrame | None, str]:
    """(development cohort rows the model was fitted on, their model inputs, why not)."""
    if run is None:
        return None, None, ("development cohort unknown: the model file is not inside a run "
                            "directory (give --run)")
    cohort = run.read("cohort")
    cohort["patient_id"] = cohort["patient_id"].astype(str)
    fitted = [str(p) for p in (model.metadata or {}).get("train_patients") or []]
    if fitted:
        cohort = cohort[cohort["patient_id"].isin(set(fitted))]
    if needs_image_features(model):
        features, clinical, _ = load_modelling_inputs(run, cohort)
        inputs = features.join(clinical, how="left")
    else:
        inputs = clinical_matrix(cohort)
    return cohort, inputs, ""


def _development_facts(run: RunDir | None, model: FusionModel) -> dict:
    """Honest test AUC and threshold of the model in its run (None when unknown)."""
    facts = {"development_auc": None, "threshold": None}
    if run is None or not run.exists("metrics"):
        return facts
    m = run.read("metrics")
    rows = m[(m["protocol"] == model.protocol) & (m["feature_set"] == model.feature_set)
             & (m["classifier"] == model.classifier_name) & (m["split"] == "test")]
    auc = rows.loc[rows["metric"] == "auc", "value"]
    if len(auc):
        facts["development_auc"] = float(auc.iloc[0])
    if len(rows) and "threshold" in rows:
        facts["threshold"] = float(rows["threshold"].iloc[0])
    return facts


def _truth(cohort: CohortTable) -> pd.Series | None:
    """True P(pCR) per patient of a synthetic cohort (``truth.csv`` beside its manifest)."""
    if not cohort.source:
        return None
    path = Path(cohort.source).parent / "truth.csv"
    if not path.is_file():
        return None
    truth = pd.read_csv(path, usecols=["patient_id", "true_probability"], dtype={
        "patient_id": str})
    return truth.set_index("patient_id")["true_probability"]


def _ci(text: str, lo: float, hi: float) -> str:
    return f"{text} (95 % CI {lo:.2f} to {hi:.2f})"


def _warnings(headline: dict | None, membership: dict, coverage: pd.DataFrame,
              model: FusionModel, cfg: RunConfig) -> list[str]:
    out = []
    if (model.metadata or {}).get("warning"):
        out.append(str(model.metadata["warning"]))
    if cfg.protocol.class_balance == "balanced":
        out.append("the model was fitted with balanced class weights (the study's setting): "
                   "its probabilities are pulled towards 0.5, so expect them too high for a "
                   "cohort with few pCR; read the calibration below, or refit with "
                   "protocol.class_balance: none")
    if headline:
        if not headline["citl_low"] <= 0 <= headline["citl_high"]:
            how = "over" if headline["citl"] < 0 else "under"
            out.append(_ci(f"calibration-in-the-large {headline['citl']:+.2f}",
                           headline["citl_low"], headline["citl_high"])
                       + f": the model {how}-predicts pCR here (mean predicted "
                         f"{headline['mean_predicted']:.2f}, observed "
                         f"{headline['observed_rate']:.2f}); update the intercept before use")
        if not headline["slope_low"] <= 1 <= headline["slope_high"]:
            how = "too extreme" if headline["slope"] < 1 else "too moderate"
            out.append(_ci(f"calibration slope {headline['slope']:.2f}",
                           headline["slope_low"], headline["slope_high"])
                       + f": predictions are {how} for this cohort")
    auc = membership.get("auc")
    if auc is not None and np.isfinite(auc) and membership.get("auc_low", 0) > 0.7:
        out.append(_ci(f"the cohorts are easy to tell apart (membership AUC {auc:.2f}",
                       membership["auc_low"], membership["auc_high"])
                   + "): the model is applied outside its development case mix; see the "
                     "case-mix table")
    imputed = coverage[coverage["status"] != "present"]
    if not imputed.empty:
        names = ", ".join(imputed["feature"].head(5)) + (" ..." if len(imputed) > 5 else "")
        out.append(f"{len(imputed)} model inputs were imputed for some or all patients "
                   f"({names}); see the coverage table")
    return out


def validate_stage(model_path: Path, cohort: CohortTable, out: Path | None = None, *,
                   run: Path | None = None, name: str | None = None,
                   cache_dir: Path | None = None, jobs: int = 1, progress: bool = True,
                   allow_missing: bool = False, n_boot: int = 2000, seed: int = 0,
                   report: bool = True) -> dict:
    """External validation of a saved model on ``cohort``; returns the summary (also written
    as ``summary.json`` with every table of :data:`~workbench.rundir.VALIDATION_FILES`).

    ``out`` defaults to ``<run>/validation/<name>`` (``name``: the cohort's name) when the
    model lies in a run directory. An unlabelled cohort gives a predict-only validation
    (predictions, coverage and transportability; no performance).
    """
    start = time.perf_counter()
    model = load_model(model_path)
    cfg = model_config(model, str(model_path))
    dev_run = RunDir(run) if run else model_run(model_path)
    name = check_component(name or cohort.name or "external", what="validation name")
    if out is None:
        if dev_run is None:
            raise ConfigError("--out is needed: the model file is not inside a run directory",
                              step="validate")
        out = dev_run.root / "validation" / name
    out = refuse_install_tree(Path(out), "--out")
    out.mkdir(parents=True, exist_ok=True)
    scored = score_cohort(model, cohort, cache_dir=cache_dir, jobs=jobs, progress=progress,
                          allow_missing=allow_missing, source=str(model_path))
    files = {key: out / file for key, (file, _) in VALIDATION_FILES.items()}
    labels = cohort.df.set_index(cohort.df["patient_id"].astype(str))["pcr"]
    p = scored.probability
    y = labels.reindex(p.index)
    labelled = y.notna()
    facts = _development_facts(dev_run, model)
    threshold = facts["threshold"]
    rule = cfg.protocol.threshold
    if threshold is None:
        threshold = cfg.protocol.fixed_threshold
        rule = f"{rule} (the run's test threshold was not found; config fixed_threshold)"
    preds = pd.DataFrame({"patient_id": p.index, "label": y.to_numpy(),
                          "probability": p.to_numpy()})
    skipped: list[str] = []
    headline = recal = truth = None
    both = labelled.sum() and y[labelled].nunique() == 2
    if both:
        yl, pl = y[labelled].astype(int).to_numpy(), p[labelled].to_numpy()
        tables = validation_tables(yl, pl, threshold=threshold, n_boot=n_boot, seed=seed)
        for variant, probs in tables["probabilities"].items():
            if variant != "original":
                col = pd.Series(np.nan, index=p.index)
                col[labelled] = probs
                preds[f"probability_{variant}"] = col.to_numpy()
        for key in ("metrics", "thresholds", "reliability", "decision_curve"):
            tables[key].to_csv(files[key], index=False)
        m = tables["metrics"]
        orig = m[m["variant"] == "original"].set_index("metric")
        headline = {"auc": orig.at["auc", "estimate"], "auc_low": orig.at["auc", "ci_low"],
                    "auc_high": orig.at["auc", "ci_high"]}
        for metric in ("citl", "slope"):
            headline.update({metric: orig.at[metric, "estimate"],
                             f"{metric}_low": orig.at[metric, "ci_low"],
                             f"{metric}_high": orig.at[metric, "ci_high"]})
        headline.update({"brier": orig.at["brier", "estimate"],
                         "observed_rate": orig.at["observed_rate", "estimate"],
                         "mean_predicted": orig.at["mean_predicted", "estimate"]})
        headline = {k: float(v) for k, v in headline.items()}
        r = tables["recalibration"]
        recal = {"intercept": {"a": r.a_intercept},
                 "logistic": {"a": r.a_logistic, "b": r.b_logistic},
                 "note": "fitted on the external cohort itself: its in-sample calibration is "
                         "perfect by construction; citl_cv / slope_cv are the cross-fitted "
                         "values a new patient of this cohort would see"}
        true_p = _truth(cohort)
        if true_p is not None and true_p.reindex(p[labelled].index).notna().all():
            truth = truth_calibration(pl, true_p.reindex(p[labelled].index).to_numpy())
    else:
        skipped.append("performance: the cohort has no labels (or one class only): "
                       "predict-only validation")
        for key in ("metrics", "thresholds", "reliability", "decision_curve"):
            files[key].unlink(missing_ok=True)
    preds.to_csv(files["predictions"], index=False)
    scored.coverage.to_csv(files["coverage"], index=False)

    dev_cohort, dev_inputs, why = _development(dev_run, model)
    membership: dict = {"skipped": why} if why else {}
    if dev_cohort is not None:
        mix = case_mix(dev_cohort, cohort.df)
        mix.to_csv(files["case_mix"], index=False)
        design_dev = model.design(dev_inputs)
        design_ext = model.design(scored.features)
        membership, coefs = membership_model(design_dev, design_ext, seed=seed)
        coefs.to_csv(files["membership"], index=False)
    else:
        skipped.append(f"transportability: {why}")
        for key in ("case_mix", "membership"):
            files[key].unlink(missing_ok=True)

    meta = model.metadata or {}
    fitted = meta.get("train_patients") or []
    summary = {
        "name": name, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "labelled": bool(both),
        "model": {"path": str(model_path), "feature_set": model.feature_set,
                  "classifier": model.classifier_name, "protocol": model.protocol,
                  "fitted_on": meta.get("fitted_on") or f"{FITTED_ON_SPLIT} ({len(fitted)} "
                                                        "patients)",
                  "estimates_from": meta.get("estimates_from") or (
                      f"this model's {model.protocol} protocol in its run: CV on the training "
                      "split and the held-out test split"),
                  "threshold": float(threshold), "threshold_rule": rule,
                  "development_auc": facts["development_auc"], "warning": meta.get("warning")},
        "cohort": {"name": cohort.name, "source": cohort.source, "n": int(len(cohort.df)),
                   "n_scored": int(len(p)), "n_labelled": int(labelled.sum()),
                   "n_pos": int(y[labelled].sum()) if labelled.any() else 0,
                   "observed_rate": float(y[labelled].mean()) if labelled.any() else None,
                   "mean_predicted": float(p.mean())},
        "development": (None if dev_cohort is None else {
            "run": str(dev_run.root), "n": int(len(dev_cohort)),
            "observed_rate": float(pd.to_numeric(dev_cohort["pcr"]).mean())}),
        "headline": headline, "recalibration": recal, "membership": membership,
        "truth": truth, "warnings": _warnings(headline, membership, scored.coverage, model, cfg),
        "skipped": skipped, "problems": scored.problems[:200],
    }
    summary["seconds"] = round(time.perf_counter() - start, 2)
    atomic_write_text(files["summary"], json.dumps(summary, indent=1, default=_plain) + "\n")
    if report:
        from workbench.report.validation import build_validation_report

        build_validation_report(out)
        summary["seconds"] = round(time.perf_counter() - start, 2)
        atomic_write_text(files["summary"], json.dumps(summary, indent=1, default=_plain)
                          + "\n")
    summary["folder"] = str(out)
    return summary


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def validation_lines(summary: dict) -> list[str]:
    """The lines ``workbench validate`` prints (every number next to what produced it)."""
    m, c = summary["model"], summary["cohort"]
    lines = [f"external validation '{summary['name']}': model {m['feature_set']}/"
             f"{m['classifier']} ({m['protocol']} protocol; fitted on the {m['fitted_on']}) "
             f"on cohort {c['name']}: {c['n_scored']} patients scored, {c['n_labelled']} "
             f"labelled ({c['n_pos']} pCR)"]
    h = summary.get("headline")
    if h:
        lines.append(f"  external AUC {h['auc']:.3f} (DeLong 95 % CI {h['auc_low']:.3f}-"
                     f"{h['auc_high']:.3f})"
                     + (f"; development test AUC {m['development_auc']:.3f}"
                        if m.get("development_auc") is not None else ""))
        lines.append(f"  calibration-in-the-large {h['citl']:+.3f} ({h['citl_low']:+.3f} to "
                     f"{h['citl_high']:+.3f}), slope {h['slope']:.3f} ({h['slope_low']:.3f} to "
                     f"{h['slope_high']:.3f}), Brier {h['brier']:.3f}; mean predicted "
                     f"{h['mean_predicted']:.3f} vs observed {h['observed_rate']:.3f}")
    t = summary.get("truth")
    if t:
        lines.append(f"  generator truth: CITL {t['citl']:+.3f}, slope {t['slope']:.3f}")
    mem = summary.get("membership") or {}
    if mem.get("auc") is not None and np.isfinite(mem.get("auc", np.nan)):
        lines.append(f"  membership AUC {mem['auc']:.3f} ({mem['auc_low']:.3f}-"
                     f"{mem['auc_high']:.3f}): 0.5 = the cohorts look alike to the model")
    lines += [f"  WARNING {w}" for w in summary.get("warnings", [])]
    lines += [f"  skipped {s}" for s in summary.get("skipped", [])]
    return lines


# --------------------------------------------------------------------------- refit
def refit_stage(model_path: Path, *, run: Path | None = None, out: Path | None = None) -> Path:
    """Refit a run's model on every labelled development patient of the run (the factories
    of the config stored in the model file); written beside the original as
    ``deploy/<protocol>/<feature_set>__<classifier>.skops`` of the run unless ``out`` is
    given.

    The new file's metadata says what it was fitted on and where its honest estimates come
    from (the original's protocol in the run)."""
    model = load_model(model_path)
    cfg = model_config(model, str(model_path))
    dev_run = RunDir(run) if run else model_run(model_path)
    if dev_run is None:
        raise ConfigError(f"{model_path} is not inside a run directory: give --run",
                          step="refit")
    features, clinical, y = load_modelling_inputs(
        dev_run, image_free=not needs_image_features(model))
    # the same label-free steps as the run (robustness filter, ComBat on the run's sites)
    selector, make_strategy = label_free_steps(cfg, dev_run, None, clinical).factories(cfg)
    refit = refit_on_development(model, features, clinical, y, selector=selector,
                                 make_clf=classifiers_for(cfg), make_strategy=make_strategy,
                                 seed=cfg.seed)
    meta = dict(model.metadata or {})
    meta.update({
        "train_patients": list(map(str, y.index)),
        "fitted_on": f"whole development cohort ({len(y)} patients, {int(y.sum())} pCR) of "
                     f"run {dev_run.root.name}",
        "estimates_from": f"the {model.protocol} protocol of run {dev_run.root.name} (CV on "
                          "its training split and its held-out test split): they estimate "
                          "the procedure that built this model; this fit itself has no "
                          "held-out patients",
        "refit_of": str(model_path), **model_metadata()})
    refit.metadata = meta
    target = Path(out) if out else dev_run.path("deployed_model", protocol=model.protocol,
                                                  feature_set=model.feature_set,
                                                  classifier=model.classifier_name)
    return save_model(refit, refuse_install_tree(target, "--out"))

