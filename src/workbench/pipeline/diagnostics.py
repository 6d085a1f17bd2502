"""Known-truth diagnostics stage: for a synthetic cohort, how the run's models compare with
what the generator's law allows (:mod:`workbench.evaluation.truth`).

The embedded synthetic cohort writes ``truth.csv`` beside its manifest: each patient's true
P(pCR) and latent variables. The law (:mod:`workbench.cohort.synth_latent`) is

    logit P(pCR) = intercept[subtype] + sum_j coef_j * standardised(term_j)

over the terms of :data:`~workbench.cohort.synth_latent.LOGIT_TERMS`: log Ktrans,
heterogeneity, necrotic fraction, log longest diameter and irregularity.
:data:`LAW_DRIVERS` says which truth column each term comes from and whether the law takes
its log; :func:`law_drivers` adds them to the truth table, so the learnable bound is fitted
on exactly the law's inputs (a well-specified logistic model).

:func:`known_truth_stage` copies ``truth.csv`` into the run (``truth``) and writes
``known_truth`` (:func:`~workbench.evaluation.truth.known_truth_table`) from the run's
features and model metrics. A real cohort has no truth: the stage says so and returns
``None``. It is cached by its inputs' bytes, settings and code, like the models.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.cohort.synth_latent import LOGIT_TERMS
from workbench.config import RunConfig
from workbench.evaluation.truth import TruthError, known_truth_table
from workbench.hashing import code_digest, sha256_file
from workbench.pipeline import cache
from workbench.pipeline.models import load_features
from workbench.pipeline.settings import synthetic_cohort_dir
from workbench.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["CLINICAL_COLUMNS", "KNOWN_TRUTH_CODE", "LAW_DRIVERS", "TRUTH_FILE",
           "known_truth_lines", "known_truth_stage", "law_drivers"]

#: The truth table beside a synthetic cohort's manifest.
TRUTH_FILE = "truth.csv"
_SOURCES: dict[str, tuple[str, bool]] = {
    "log_ktrans": ("ktrans_mean", True),
    "heterogeneity": ("heterogeneity", False),
    "necrosis_fraction": ("necrosis_fraction", False),
    "log_ld": ("longest_diameter_mm", True),
    "irregularity": ("irregularity", False),
}
#: Each term of the generator's pCR law (``LOGIT_TERMS``, in its order; a term added there
#: without a source here fails at import): the truth column it comes from and whether the
#: law takes its log. A test checks that they reproduce the law's logit exactly.
LAW_DRIVERS: dict[str, tuple[str, bool]] = {term: _SOURCES[term] for term in LOGIT_TERMS}
#: Clinical covariates of the law (the per-subtype intercept): the clinical reference.
CLINICAL_COLUMNS: tuple[str, ...] = ("subtype",)
#: Bound cross-validation: stratified folds x repeats.
FOLDS, REPEATS = 5, 10
#: Code whose change invalidates the stage's cached output.
KNOWN_TRUTH_CODE = ("evaluation/truth", "evaluation/delong", "pipeline/diagnostics")


def law_drivers(truth: pd.DataFrame) -> pd.DataFrame:
    """``truth`` with one column per term of the pCR law (:data:`LAW_DRIVERS`) added.

    Raises
    ------
    TruthError
        A column the law needs (or ``pcr``, ``subtype``) is missing: a truth table written
        by another version of the generator.
    """
    needed = [col for col, _ in LAW_DRIVERS.values()] + ["pcr", *CLINICAL_COLUMNS]
    missing = [col for col in needed if col not in truth.columns]
    if missing:
        raise TruthError(f"the truth table lacks {missing}; regenerate the synthetic cohort "
                         "(`workbench synth`) with this version", step="known truth")
    return truth.assign(**{term: np.log(truth[col].astype(float)) if log_it else
                           truth[col].astype(float)
                           for term, (col, log_it) in LAW_DRIVERS.items()})


def _key(cfg: RunConfig, run: RunDir, truth_path: Path) -> str:
    h = hashlib.sha256()
    inputs = {"truth": truth_path, **{name: run.path(name) for name in
                                      (*run.feature_families(), "metrics")}}
    for name, path in inputs.items():
        h.update(f"{name}={sha256_file(path) if path.is_file() else 'absent'};".encode())
    settings = {"latents": list(LAW_DRIVERS.values()), "clinical": CLINICAL_COLUMNS,
                "folds": FOLDS, "repeats": REPEATS, "seed": cfg.seed}
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(code_digest(KNOWN_TRUTH_CODE).encode())
    return h.hexdigest()


def _cleared(run: RunDir) -> None:
    """Remove known-truth outputs an earlier run left in this folder (they would describe
    another cohort); returns ``None``."""
    for name in ("known_truth_key", "known_truth", "truth"):
        run.path(name).unlink(missing_ok=True)


def known_truth_stage(cfg: RunConfig, run: RunDir | Path, *, force: bool = False
                      ) -> pd.DataFrame | None:
    """Known-truth diagnostics of a synthetic-cohort run -> ``diagnostics/known_truth.csv``.

    For ``cohort.format == "synthetic"`` with ``truth.csv`` in the cohort folder: copy it
    into the run (``cohort/truth.csv``), then write the table of
    :func:`~workbench.evaluation.truth.known_truth_table` — oracle AUC, learnable bound and
    clinical reference (bound CV seeded with ``cfg.seed``), the features closest to each
    latent driver (when the run has features), and every honest model's AUC with its share
    of the learnable gap (when the run has ``models/metrics.parquet``: call it after the
    model stage). The bound's CV uses 5 folds, fewer when the smaller class has fewer
    patients; with under 2 patients of a class the stage is skipped (logged, ``None``).
    Reused when the truth, the feature and metrics files, the settings and the code are
    unchanged (``attrs["cached"]``); ``force`` recomputes.

    Returns
    -------
    pandas.DataFrame or None
        The table; ``None`` for a cohort that is not synthetic or has no ``truth.csv``
        (logged: the diagnostics do not apply, real cohorts have no truth).

    Raises
    ------
    workbench.evaluation.truth.TruthError
        The truth table lacks a column the law needs.
    """
    run = RunDir(run)
    if cfg.cohort.format != "synthetic":
        log.info("known truth: not applicable (cohort format %r: a real cohort has no true "
                 "P(pCR))", cfg.cohort.format)
        return _cleared(run)
    truth_path = synthetic_cohort_dir(cfg) / TRUTH_FILE
    if not truth_path.is_file():
        log.info("known truth: not applicable (no %s beside the synthetic cohort)", truth_path)
        return _cleared(run)
    key = _key(cfg, run, truth_path)
    key_file = run.path("known_truth_key")
    outputs = [run.path("known_truth"), run.path("truth")]
    if not force and cache.is_current(key_file, key, outputs) is not None:
        log.info("known truth: inputs, settings and code unchanged; reusing %s", outputs[0])
        table = run.read("known_truth")
        table.attrs["cached"] = True
        return table
    truth = law_drivers(pd.read_csv(truth_path))
    n_pos = int(truth["pcr"].sum())
    n_minority = min(n_pos, len(truth) - n_pos)
    if n_minority < 2:
        log.warning("known truth: skipped (%d pCR of %d patients in %s: the bound's "
                    "stratified CV needs 2 of each class)", n_pos, len(truth), truth_path)
        return _cleared(run)
    run.folder("known_truth_key")
    cache.invalidate(key_file)
    run.folder("truth")
    run.write("truth", truth_path.read_bytes())
    features = load_features(run) if run.feature_families() else None
    metrics = run.read("metrics") if run.exists("metrics") else None
    # a tiny cohort gets as many folds as its smaller class allows
    table = known_truth_table(truth, features, metrics, latents=list(LAW_DRIVERS),
                              clinical_columns=CLINICAL_COLUMNS,
                              folds=min(FOLDS, n_minority), repeats=REPEATS, seed=cfg.seed)
    run.write("known_truth", table)
    cache.mark_done(key_file, key)
    for line in known_truth_lines(table):
        log.info(line)
    table.attrs["cached"] = False
    return table


def _auc(row: pd.Series) -> str:
    if np.isfinite(row.get("lo", np.nan)) and np.isfinite(row.get("hi", np.nan)):
        return f"{row['auc']:.3f} ({row['lo']:.3f}-{row['hi']:.3f})"
    if np.isfinite(row.get("sd", np.nan)):
        return f"{row['auc']:.3f} ± {row['sd']:.3f}"
    return f"{row['auc']:.3f}"


def known_truth_lines(table: pd.DataFrame) -> list[str]:
    """Summary lines of a known-truth table (for the end-of-run summary): the three
    references and the honest model with the best cross-validated AUC."""
    first = {kind: rows.iloc[0] for kind, rows in table.groupby("kind", sort=False)}
    lines = []
    if {"oracle", "learnable_bound", "clinical_reference"} <= set(first):
        lines.append(f"known truth: oracle AUC {_auc(first['oracle'])}, learnable bound "
                     f"{_auc(first['learnable_bound'])}, clinical reference "
                     f"{_auc(first['clinical_reference'])}")
    models = table[(table["kind"] == "model") & (table["split"] == "cv")
                   & (table["metric"] == "auc") & (table["protocol"] == "honest")]
    if len(models) and models["auc"].notna().any():
        best = models.loc[models["auc"].idxmax()]
        lines.append(f"known truth: best honest CV model {best['name']} AUC "
                     f"{best['auc']:.3f} closes {best['gap_closed']:.0%} of the learnable gap")
    return lines
