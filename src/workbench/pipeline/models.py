"""The modelling stage: protocols × feature sets × classifiers → tidy run-directory tables.

Inputs are the feature tables of a run directory (``features/*.parquet``), the cohort table
(labels and clinical columns) and the run config. Outputs, all under ``<run>/models/``:

``predictions.parquet``
    patient_id, protocol, feature_set, classifier, split (cv | test), repeat, fold,
    probability, label.
``metrics.parquet``
    protocol, feature_set, classifier, split, metric, value, lo, hi, method, threshold, n,
    n_pos, warning — AUC with DeLong CI; accuracy, sensitivity, specificity, precision, NPV,
    F1 with bootstrap CIs; Brier, calibration intercept and slope.
``selection.parquet``, ``signatures.parquet``, ``lasso_cv.parquet``
    the selection trace of every (protocol, block, fold), the signature values and the
    LASSO cross-validation curves (alpha, mean/std/sem score, n_nonzero, chosen).
``shap.parquet``
    SHAP values of the final models on the test patients (see :func:`explain_final`).
``skipped.csv``, ``split.csv``
    recorded, explained skips; the train/test assignment.
``<protocol>/<feature_set>__<classifier>.skops``
    final models (:class:`~workbench.models.fusion.FusionModel`), skops format.

Every table carries its ``protocol``; rows from ``paper`` also carry the leakage warning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.models.protocols import (
    LEAKAGE_WARNING,
    ProtocolResult,
    ProtocolSettings,
    run_protocol,
)

log = logging.getLogger(__name__)

FEATURE_FILES = ("radiomics", "kinetic", "deep")


def selector_factory(cfg: RunConfig):
    """``factory(block, seed)`` building the configured selection pipeline for a block."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from workbench.selection import selection_pipeline

    lasso = cfg.selection.lasso
    kwargs = {"model": lasso.model, "alphas": lasso.n_alphas, "alpha_min": lasso.alpha_min,
              "alpha_max": lasso.alpha_max, "cv": lasso.cv_folds, "max_iter": lasso.max_iter,
              "tol": lasso.tol}

    def make(block: str, seed: int):
        pipe = selection_pipeline(block, variance_threshold=cfg.selection.variance_threshold,
                                  alpha=cfg.selection.alpha,
                                  lasso_kwargs={**kwargs, "random_state": seed})
        # The filters handle missing values per feature; the LASSO and the signature do not.
        # Without medians (learnt on the fitting patients only) one NaN in a kept feature
        # loses the whole block, or stops the run when the NaN is in an evaluation patient.
        impute = SimpleImputer(strategy="median", keep_empty_features=True)
        return Pipeline([*pipe.steps[:2], ("impute", impute), *pipe.steps[2:]]).set_output(
            transform="pandas")

    return make


def classifier_factory(name: str, seed: int):
    from workbench.models.classifiers import make_pipeline

    return make_pipeline(name, seed=seed)


def load_features(run_dir: Path, names=FEATURE_FILES) -> pd.DataFrame:
    """Join the run's feature tables on patient_id (inner join: every block for everyone)."""
    frames = []
    for name in names:
        path = Path(run_dir) / "features" / f"{name}.parquet"
        if path.is_file():
            frame = pd.read_parquet(path)
            frame.index = frame.index.astype(str)
            frames.append(frame)
    if not frames:
        raise WorkbenchError(f"no feature table under {Path(run_dir) / 'features'}; run the "
                             "feature stages first", step="model")
    out = frames[0]
    for frame in frames[1:]:
        out = out.join(frame, how="inner")
    return out


def load_modelling_inputs(run_dir: Path, cohort: pd.DataFrame | None = None
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Features, clinical design matrix and labels of the labelled patients of a run.

    ``cohort`` defaults to the run's ``cohort/cohort.parquet``; only patients with a pCR label
    and a feature row are kept, in the feature table's order.
    """
    from workbench.models.feature_sets import clinical_matrix

    features = load_features(run_dir)
    if cohort is None:
        cohort = pd.read_parquet(Path(run_dir) / "cohort" / "cohort.parquet")
    labelled = cohort[cohort["pcr"].notna()
                      & cohort["patient_id"].astype(str).isin(features.index)]
    y = pd.Series(labelled["pcr"].astype(int).to_numpy(),
                  index=labelled["patient_id"].astype(str))
    return features.loc[y.index], clinical_matrix(labelled), y


@dataclass
class ModelStageResult:
    """What :func:`run_models` wrote, plus the in-memory protocol results."""

    out_dir: Path
    results: dict[str, ProtocolResult]
    metrics: pd.DataFrame
    seconds: float
    skipped: list[dict] = field(default_factory=list)
    cached: bool = False  # outputs reused from an identical earlier run (runner.model_stage)


def evaluate(predictions: pd.DataFrame, *, threshold_rule: str = "fixed",
             fixed_threshold: float = 0.5, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Metrics with CIs per (protocol, feature_set, classifier, split).

    With ``threshold_rule="youden"`` the threshold of each model is chosen on its training
    out-of-fold (``cv``) predictions and applied unchanged to the test patients.
    """
    from workbench.evaluation.calibration import calibration_table
    from workbench.evaluation.metrics import metrics_table, youden_threshold

    rows = []
    keys = ["protocol", "feature_set", "classifier"]
    for key, group in predictions.groupby(keys, sort=False):
        cv = group[(group["split"] == "cv") & (group["repeat"] == 0)]
        thr = fixed_threshold
        if threshold_rule == "youden" and cv["label"].nunique() == 2:
            thr = float(youden_threshold(cv["label"].to_numpy(), cv["probability"].to_numpy()))
        for split in ("cv", "test"):
            part = group[group["split"] == split]
            if split == "cv":
                part = part[part["repeat"] == 0]
            y, p = part["label"].to_numpy(), part["probability"].to_numpy()
            base = dict(zip(keys, key, strict=True), split=split, threshold=thr, n=len(y),
                        n_pos=int(y.sum()))
            if len(np.unique(y)) < 2:
                rows.append({**base, "metric": "auc", "value": np.nan,
                             "warning": "one class only: metrics undefined"})
                continue
            table = pd.concat([metrics_table(y, p, thr, n_boot, seed),
                               calibration_table(y, p)], ignore_index=True)
            for _, r in table.iterrows():
                rows.append({**base, **r.to_dict()})
    out = pd.DataFrame(rows)
    out["warning"] = out.get("warning", pd.Series(index=out.index, dtype=object))
    out.loc[out["protocol"] == "paper", "warning"] = LEAKAGE_WARNING
    return out


def explain_final(result: ProtocolResult, feature_sets, *, seed: int = 0) -> pd.DataFrame:
    """SHAP values of the final models of ``feature_sets`` on the test patients (long)."""
    from workbench.evaluation.explain import explain

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


def run_models(cfg: RunConfig, features: pd.DataFrame, clinical: pd.DataFrame, y: pd.Series,
               out_dir: str | Path, *, jobs: int | None = None, progress: bool = False,
               shap_sets: tuple[str, ...] | None = None, save_models: bool = True,
               n_boot: int = 1000) -> ModelStageResult:
    """Run every configured protocol and write the tables listed in the module docstring."""
    from workbench.models.fusion import save_model

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = ProtocolSettings(test_size=cfg.protocol.test_size, cv_folds=cfg.protocol.cv_folds,
                                repeats=cfg.protocol.repeats, seed=cfg.seed,
                                jobs=jobs or cfg.jobs)
    results: dict[str, ProtocolResult] = {}
    for protocol in cfg.protocol.kinds:
        log.info("protocol %s: %d feature sets x %d classifiers", protocol,
                 len(cfg.feature_sets), len(cfg.classifiers))
        results[protocol] = run_protocol(
            protocol, features, clinical, y, feature_sets=cfg.feature_sets,
            classifiers=cfg.classifiers, selector=selector_factory(cfg),
            make_clf=classifier_factory, settings=settings, progress=progress)

    preds = pd.concat([r.predictions for r in results.values()], ignore_index=True)
    metrics = evaluate(preds, threshold_rule=cfg.protocol.threshold,
                       fixed_threshold=cfg.protocol.fixed_threshold, n_boot=n_boot,
                       seed=cfg.seed)
    preds["warning"] = np.where(preds["protocol"] == "paper", LEAKAGE_WARNING, None)
    preds.to_parquet(out / "predictions.parquet", index=False)
    metrics.to_parquet(out / "metrics.parquet", index=False)
    for name, attr in (("selection", "selection"), ("signatures", "signatures"),
                       ("lasso_cv", "lasso_cv")):
        frames = [getattr(r, attr) for r in results.values() if not getattr(r, attr).empty]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        table.to_parquet(out / f"{name}.parquet", index=False)
    skipped = [{"protocol": p, **d} for p, r in results.items() for d in r.skipped]
    pd.DataFrame(skipped).to_csv(out / "skipped.csv", index=False)
    first = next(iter(results.values()))
    first.split.rename_axis("patient_id").reset_index().to_csv(out / "split.csv", index=False)

    if shap_sets is None:  # the richest feature set that ran
        ran = [fs for fs in cfg.feature_sets if fs in set(preds["feature_set"])]
        shap_sets = tuple(ran[-1:])
    shap_frames = [explain_final(r, shap_sets, seed=cfg.seed) for r in results.values()]
    shap_frames = [f for f in shap_frames if not f.empty]
    (pd.concat(shap_frames, ignore_index=True) if shap_frames else pd.DataFrame()).to_parquet(
        out / "shap.parquet", index=False)

    if save_models:
        for protocol, r in results.items():
            for (fs, clf_name), model in r.final_models.items():
                model.metadata = {"config": cfg.model_dump(mode="json"), "seed": cfg.seed,
                                  "train_patients": r.split.index[r.split == "train"].tolist(),
                                  "warning": r.warning}
                save_model(model, out / protocol / f"{fs}__{clf_name}.skops")
    return ModelStageResult(out_dir=out, results=results, metrics=metrics,
                            seconds=time.perf_counter() - start, skipped=skipped)


def headline(metrics: pd.DataFrame, feature_set: str, classifier: str = "lr") -> list[str]:
    """One line per protocol: test AUC with its DeLong CI, protocol stated beside it."""
    lines = []
    sel = metrics[(metrics["feature_set"] == feature_set) & (metrics["classifier"] == classifier)
                  & (metrics["metric"] == "auc")]
    for _, r in sel.iterrows():
        tag = " [LEAKS: selection saw the test patients]" if r["protocol"] == "paper" else ""
        lines.append(f"{r['protocol']:6s} {feature_set}/{classifier} {r['split']:4s} AUC "
                     f"{r['value']:.3f} (95% CI {r['lo']:.3f}-{r['hi']:.3f}, n={r['n']}){tag}")
    return lines
