"""Harmonisation comparison: the audit feature set without ComBat, with ComBat in every fold,
and with ComBat fitted on the whole cohort (the leak), plus a null audit of each.

A multi-site run (``harmonisation.method: combat``) fits ComBat (:class:`~workbench.selection.
ComBat`) inside every fold of every protocol: site and protected clinical covariates are
label-free and known for every patient, but the location/scale estimates must come from the
fitting patients only, as any other fitted step. This stage shows what that buys and what the
shortcut costs, on ``audit.feature_set`` with the study chain and ``audit.classifier`` under
the honest protocol:

``none``
    no harmonisation;
``combat_in_fold``
    ComBat as the first step of the selection pipeline, refitted in every fold;
``combat_whole_cohort``
    the features harmonised once on every patient (test patients included) before the split,
    as multi-site studies often do: the test patients' features shaped the estimates;
``combat_whole_cohort_pcr``
    the same with pCR among the protected covariates ("to preserve the biological signal"),
    which puts the test patients' labels into their own features.

The null audit reruns each variant on ``audit.permutations`` label permutations (with the
permuted label protected in the last variant): an honest variant must centre on 0.5.
Writes ``harmonisation/harmonisation_auc.csv``, ``null_audit.csv`` and ``site_features.parquet``
(per-site values of the features most affected by site, before and after ComBat on the whole
cohort: a picture, not an estimate).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.evaluation.delong import delong_auc_ci, delong_test
from workbench.models.feature_sets import FEATURE_SETS, block_columns
from workbench.models.protocols import ModellingError, run_protocol
from workbench.pipeline import cache
from workbench.pipeline.models import load_modelling_inputs
from workbench.pipeline.settings import (
    classifiers_for,
    harmonisation_inputs,
    protocol_settings,
    selector_factory,
)
from workbench.rundir import RunDir
from workbench.selection import ComBat

log = logging.getLogger(__name__)

__all__ = ["VARIANTS", "harmonisation_lines", "harmonisation_stage"]

VARIANTS = ("none", "combat_in_fold", "combat_whole_cohort", "combat_whole_cohort_pcr")
HARMONISATION_CODE = ("models", "selection", "evaluation", "pipeline/harmonisation")
#: Features per block shown in ``site_features.parquet``.
SHOWN_FEATURES = 6


def _image_columns(features: pd.DataFrame, feature_set: str) -> list[str]:
    return [c for b in FEATURE_SETS[feature_set].blocks
            for c in block_columns(features.columns, b)]


def _whole_cohort(features: pd.DataFrame, cols: list[str], batch: pd.Series,
                  covariates: pd.DataFrame | None, y: pd.Series | None) -> pd.DataFrame:
    """The image columns harmonised on every patient at once (``y``: pCR protected too)."""
    cov = covariates
    if y is not None:
        extra = pd.DataFrame({"pcr": y.astype(float)}, index=y.index)
        cov = extra if cov is None else cov.join(extra)
    out = features.copy()
    out[cols] = ComBat(batch=batch, covariates=cov).fit(features[cols]).transform(
        features[cols])
    return out


def _protocol_rows(cfg: RunConfig, features, clinical, y, *, selector, feature_set, jobs
                   ) -> tuple[pd.DataFrame, str]:
    """Honest predictions of one variant, and why there are none (``""`` when there are)."""
    try:
        res = run_protocol("honest", features, clinical, y, feature_sets=[feature_set],
                           classifiers=[cfg.audit.classifier], selector=selector,
                           make_clf=classifiers_for(cfg),
                           settings=protocol_settings(cfg, jobs=jobs, repeats=1))
    except ModellingError as exc:
        return pd.DataFrame(columns=["patient_id", "split", "repeat", "label",
                                     "probability"]), str(exc)
    pred = res.predictions[res.predictions["repeat"] <= 0]
    if pred.empty:
        skipped = "; ".join(str(d.get("reason", d)) for d in res.skipped)
        return pred, f"no prediction for {feature_set}/{cfg.audit.classifier}" + (
            f" ({skipped})" if skipped else "")
    return pred, ""


def _auc(pred: pd.DataFrame, split: str) -> tuple[float, float, float, int]:
    part = pred[pred["split"] == split]
    if part.empty or part["label"].nunique() < 2:
        return np.nan, np.nan, np.nan, len(part)
    ci = delong_auc_ci(part["label"].to_numpy(), part["probability"].to_numpy())
    return ci.auc, ci.lo, ci.hi, len(part)


def _paired(base: pd.DataFrame, other: pd.DataFrame, split: str) -> tuple[float, float]:
    """AUC difference ``other - base`` on the patients both scored in ``split``, and the paired
    DeLong test's two-sided p-value (NaN when either has no prediction or a class is missing).
    """
    a = base[base["split"] == split].set_index("patient_id")
    b = other[other["split"] == split].set_index("patient_id")
    common = a.index.intersection(b.index)
    if len(common) == 0 or a.loc[common, "label"].nunique() < 2:
        return np.nan, np.nan
    t = delong_test(a.loc[common, "label"].to_numpy(), b.loc[common, "probability"].to_numpy(),
                    a.loc[common, "probability"].to_numpy())
    return float(t.auc1 - t.auc2), float(t.p_value)


def _variant_inputs(variant: str, cfg, features, y, cols, batch, covariates):
    """``(features, selector)`` of one variant for labels ``y``."""
    if variant == "none":
        return features, selector_factory(cfg)
    if variant == "combat_in_fold":
        return features, selector_factory(cfg, harmonise=(batch, covariates))
    pcr = y if variant == "combat_whole_cohort_pcr" else None
    return _whole_cohort(features, cols, batch, covariates, pcr), selector_factory(cfg)


def _one_permutation(k, y_perm, cfg, features, clinical, cols, batch, covariates,
                     feature_set) -> list[dict]:
    rows = []
    for variant in VARIANTS:
        X, selector = _variant_inputs(variant, cfg, features, y_perm, cols, batch, covariates)
        pred, note = _protocol_rows(cfg, X, clinical, y_perm, selector=selector,
                                    feature_set=feature_set, jobs=1)
        for split in ("cv", "test"):
            auc, _, _, n = _auc(pred, split)
            rows.append({"permutation": k, "variant": variant, "split": split, "auc": auc,
                         "n": n, "note": note})
    return rows


def _site_features(features: pd.DataFrame, cols: list[str], batch: pd.Series,
                   covariates: pd.DataFrame | None) -> pd.DataFrame:
    """Long table of the most site-affected features before and after whole-cohort ComBat."""
    X = features[cols]
    sites = batch.loc[X.index]
    groups = [X[sites == s] for s in sorted(sites.unique())]
    pooled = X.std(ddof=1).replace(0, np.nan)
    smd = (groups[0].mean() - groups[1].mean()).abs() / pooled if len(groups) > 1 else pooled
    shown = smd.dropna().sort_values(ascending=False).index[:SHOWN_FEATURES].tolist()
    after = _whole_cohort(features, cols, batch, covariates, None)
    frames = []
    for stage, frame in (("before", features), ("after", after)):
        long = frame[shown].rename_axis("patient_id").reset_index().melt(
            id_vars="patient_id", var_name="feature", value_name="value")
        long["stage"] = stage
        long["site"] = long["patient_id"].map(batch)
        long["smd_before"] = long["feature"].map(smd)
        frames.append(long)
    return pd.concat(frames, ignore_index=True)


def harmonisation_stage(cfg: RunConfig, run_dir: Path | RunDir, *, jobs: int = 1,
                        progress: bool = True, force: bool = False,
                        permutations: int | None = None) -> pd.DataFrame:
    """Run the four variants (real labels) and their null audit -> ``<run>/harmonisation/``.

    Returns the AUC table (``variant, split, auc, auc_low, auc_high, n, delta_vs_none,
    p_vs_none, note, null_mean, null_sd, null_runs``; ``delta_vs_none`` and ``p_vs_none``: the
    AUC difference from no harmonisation on the same patients and its paired DeLong p-value);
    ``.attrs['cached']`` when reused.
    """
    start = time.perf_counter()
    run = RunDir(run_dir)
    if cfg.harmonisation.method == "none":
        raise WorkbenchError("the harmonisation comparison needs harmonisation.method: combat "
                             "(and a cohort with a site column)", step="harmonisation",
                             path=cfg.source)
    features, clinical, y = load_modelling_inputs(run)
    cohort = run.read("cohort")
    batch, covariates = harmonisation_inputs(cfg, cohort, clinical)
    feature_set = cfg.audit.feature_set
    cols = _image_columns(features, feature_set)
    if not cols:
        raise WorkbenchError(f"audit.feature_set {feature_set!r} has no image feature in this "
                             "run: nothing to harmonise", step="harmonisation")
    permutations = cfg.audit.permutations if permutations is None else permutations
    settings = {**cfg.model_dump(mode="json", include={"seed", "selection", "protocol",
                                                       "harmonisation", "audit"}),
                "permutations": permutations}
    frames = [features[cols], clinical, y, batch] + ([] if covariates is None
                                                      else [covariates])
    key = cache.stage_key(frames, settings, HARMONISATION_CODE)
    key_file = run.path("harmonisation_key")
    outputs = [run.path(n) for n in ("harmonisation_auc", "harmonisation_audit",
                                     "site_features")]
    if not force and cache.is_current(key_file, key, outputs):
        log.info("harmonisation: inputs, settings and code unchanged; reusing %s",
                 key_file.parent)
        table = run.read("harmonisation_auc")
        table.attrs["cached"] = True
        return table
    run.folder("harmonisation_key")
    cache.invalidate(key_file)
    rows, preds = [], {}
    for variant in tqdm(VARIANTS, desc="harmonisation", unit="variant", disable=not progress):
        X, selector = _variant_inputs(variant, cfg, features, y, cols, batch, covariates)
        pred, note = _protocol_rows(cfg, X, clinical, y, selector=selector,
                                    feature_set=feature_set, jobs=jobs)
        preds[variant] = pred
        if note:
            log.warning("harmonisation variant %s: no AUC: %s", variant, note)
        for split in ("cv", "test"):
            auc, lo, hi, n = _auc(pred, split)
            delta, p = _paired(preds["none"], pred, split) if variant != "none" else (
                np.nan, np.nan)
            rows.append({"variant": variant, "feature_set": feature_set,
                         "classifier": cfg.audit.classifier, "protocol": "honest",
                         "split": split, "auc": auc, "auc_low": lo, "auc_high": hi, "n": n,
                         "delta_vs_none": delta, "p_vs_none": p, "note": note})
    rng = np.random.default_rng(cfg.seed)
    perms = [pd.Series(rng.permutation(y.to_numpy()), index=y.index)
             for _ in range(permutations)]
    audit_rows = []
    runs = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(_one_permutation)(k, yp, cfg, features, clinical, cols, batch, covariates,
                                  feature_set) for k, yp in enumerate(perms))
    for part in tqdm(runs, total=permutations, desc="harmonisation null audit",
                     unit="permutation", disable=not progress):
        audit_rows += part
    audit = pd.DataFrame(audit_rows, columns=["permutation", "variant", "split", "auc", "n",
                                              "note"])
    failed = audit[audit["auc"].isna()]
    if len(failed):
        log.warning("harmonisation null audit: %d of %d permutation runs gave no AUC (first: "
                    "%s); see %s", len(failed), len(audit),
                    next((n for n in failed["note"] if n), "one class in the split"),
                    run.path("harmonisation_audit"))
    table = pd.DataFrame(rows)
    null = audit.groupby(["variant", "split"])["auc"].agg(null_mean="mean", null_sd="std",
                                                          null_runs="count").reset_index()
    table = table.merge(null, on=["variant", "split"], how="left")
    run.write("harmonisation_auc", table)
    run.write("harmonisation_audit", audit)
    run.write("site_features", _site_features(features, cols, batch, covariates))
    cache.mark_done(key_file, key, seconds=round(time.perf_counter() - start, 1))
    table.attrs["seconds"] = time.perf_counter() - start
    return table


def harmonisation_lines(table: pd.DataFrame) -> list[str]:
    """Summary lines: each variant's honest CV and test AUC and its null-audit mean."""
    lines = ["harmonisation (honest protocol; null audit = permuted labels):"]
    for variant in dict.fromkeys(table["variant"]):
        part = table[table["variant"] == variant].set_index("split")
        cells = []
        for split in ("cv", "test"):
            if split in part.index:
                r = part.loc[split]
                paired = (f", {r['delta_vs_none']:+.3f} vs none, paired DeLong p "
                          f"{r['p_vs_none']:.2f}" if pd.notna(r.get("p_vs_none")) else "")
                cells.append(f"{split} AUC {r['auc']:.3f}{paired} (null {r['null_mean']:.3f} "
                             f"± {r['null_sd']:.3f})")
        lines.append(f"  {variant}: " + "; ".join(cells))
    return lines

