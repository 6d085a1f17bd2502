"""Learning curve: honest repeated-CV AUC of each strategy x feature set against cohort size.

For each size ``n`` the honest protocol runs the config's non-study strategies on their
feature sets (:func:`~workbench.pipeline.settings.strategy_grid`), plus the study chain's
``lr`` on the ``clinical`` set as the clinical-only reference, with ``repeats`` repeats of
``protocol.cv_folds``-fold CV on the development split and one scored test split
(:func:`~workbench.models.protocols.run_protocol`, :func:`~workbench.evaluation.summary.evaluate`).
Where the cohort's truth is known (a synthetic cohort) each size also gets the oracle AUC
(the true probability) and the learnable bound (:mod:`workbench.evaluation.truth`) on the
same development patients, so the curves can be read against what the data allow.

Where the ``n`` patients come from:

* **subsample** (a real cohort, or any cohort given ``base_run``): nested, seeded, stratified
  subsamples of a finished run's modelling inputs (:func:`stratified_subsample`); a size
  above the cohort is refused before any work.
* **synthetic** (``cohort.format: synthetic`` without ``base_run``): the first ``n``
  patients of the generator (patient ``i`` depends only on the seed and ``i``), generated
  once for the largest size (into ``<cohort path>_n<N>`` beside the config's cohort when
  ``N`` exceeds its ``n``), run through QC, preprocessing and the feature stages into
  ``<out>/n<n>/`` with the shared content-addressed caches, so a patient already extracted
  is never recomputed.

Outputs under ``out``: ``learning_curve.csv`` (:data:`LEARNING_CURVE_COLUMNS`),
``learning_curve.html`` (standalone, offline) and per size ``sizes/n<n>.csv`` with its cache
key ``sizes/n<n>.key.json`` (:mod:`workbench.pipeline.cache`: the size's features, clinical
matrix, labels and truth, the modelling settings, ``n``, ``repeats`` and the code), so a
rerun, or a rerun with another size added, refits nothing it has already fitted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.cohort.synthetic import patient_id
from workbench.cohort.table import CohortTable
from workbench.config import RunConfig
from workbench.errors import ConfigError, WorkbenchError
from workbench.evaluation.summary import evaluate
from workbench.evaluation.truth import learnable_bound, oracle_auc
from workbench.files import atomic_write_text
from workbench.hashing import remembered_digests
from workbench.models.feature_sets import FEATURE_SETS, available_blocks
from workbench.models.protocols import run_protocol
from workbench.models.tuned import sets_using
from workbench.pipeline import cache
from workbench.pipeline.diagnostics import CLINICAL_COLUMNS, LAW_DRIVERS, TRUTH_FILE, law_drivers
from workbench.pipeline.models import label_tuned_blocks, load_modelling_inputs
from workbench.pipeline.run import DIGESTS_FILE
from workbench.pipeline.settings import (
    classifiers_for,
    default_cache,
    default_run_dir,
    modelling_settings,
    protocol_settings,
    selector_factory,
    strategy_factory,
    strategy_grid,
    synthetic_cohort_dir,
)
from workbench.pipeline.stages import cohort_stage, feature_stages, preprocess_stage, qc_stage
from workbench.plots.learning_curve import learning_curve_plot
from workbench.report.page import Page
from workbench.rundir import RunDir
from workbench.selection import check_patterns

log = logging.getLogger(__name__)

__all__ = ["LEARNING_CURVE_COLUMNS", "check_sizes", "default_out", "learning_curve",
           "learning_curve_lines", "size_table", "stage_inputs", "stratified_subsample",
           "write_learning_curve_html"]

#: Columns of ``learning_curve.csv``, one row per (n, kind, feature set, classifier).
LEARNING_CURVE_COLUMNS = ("n", "kind", "feature_set", "strategy", "classifier", "auc_cv_mean",
                          "auc_cv_sd", "auc_cv_min", "auc_cv_max", "auc_test", "auc_test_lo",
                          "auc_test_hi", "repeats", "seconds", "n_used", "n_pos", "detail")
#: The clinical-only reference: the study chain's classifier on the clinical feature set.
REFERENCE = ("clinical", "lr")
#: Bootstrap draws of the threshold metrics :func:`evaluate` computes beside the AUC (the
#: AUC's CI is DeLong's; nothing here reads the threshold metrics).
N_BOOT = 200
#: Code whose change invalidates the per-size results.
CODE = (*cache.MODEL_CODE, "pipeline/learning_curve")


def default_out(cfg: RunConfig) -> Path:
    """``data/runs/<name>-learning-curve``, beside the config's run directory."""
    run = default_run_dir(cfg)
    return run.with_name(f"{run.name}-learning-curve")


# --------------------------------------------------------------------------- sizes
def stratified_subsample(y: pd.Series, n: int, seed: int) -> list[str]:
    """``n`` patient ids of ``y`` keeping its pCR rate, nested across sizes.

    Each class is shuffled once (``numpy.random.default_rng(seed)``, ids sorted first), and
    a size takes the first ``round(n * rate)`` positives and the first negatives of those
    orders: a smaller subsample is always inside a larger one, so the curve follows one
    growing cohort rather than unrelated draws.
    """
    y = pd.Series(y).astype(int)
    y.index = y.index.astype(str)
    rng = np.random.default_rng(seed)
    pos = rng.permutation(np.sort(y.index[y == 1].to_numpy()))
    neg = rng.permutation(np.sort(y.index[y == 0].to_numpy()))
    k = _positives(n, len(pos), len(neg))
    return [str(i) for i in (*pos[:k], *neg[:n - k])]


def _positives(n: int, n_pos: int, n_neg: int) -> int:
    """pCR patients in a stratified subsample of ``n`` (round half up, within the classes)."""
    k = math.floor(n * n_pos / (n_pos + n_neg) + 0.5)
    return min(max(k, n - n_neg, 0), n_pos)


def check_sizes(sizes: Sequence[int], cv_folds: int) -> list[int]:
    """The sizes, ascending, after the checks that need no data.

    Raises
    ------
    ConfigError
        No size, a size that is not a whole number >= 1, a size given twice, or one below
        ``4 * cv_folds`` (2 x cv_folds patients of each class at the very least).
    """
    sizes = list(sizes)
    if not sizes:
        raise ConfigError("--sizes: give at least one cohort size", step="learning curve")
    bad = [s for s in sizes if isinstance(s, bool) or not isinstance(s, int | np.integer)
           or s < 1]
    if bad:
        raise ConfigError(f"--sizes must be whole numbers >= 1; got {bad}",
                          step="learning curve")
    twice = sorted({int(s) for s in sizes if sizes.count(s) > 1})
    if twice:
        raise ConfigError(f"--sizes lists {twice} more than once; each size once",
                          step="learning curve")
    small = [int(s) for s in sizes if s < 4 * cv_folds]
    if small:
        raise ConfigError(f"sizes {small} are too small for protocol.cv_folds = {cv_folds}: "
                          f"every class needs 2 x cv_folds = {2 * cv_folds} patients, so a "
                          f"size needs at least {4 * cv_folds}", step="learning curve")
    return sorted(int(s) for s in sizes)


def _refuse_tuned(cfg: RunConfig, tuned: Sequence[str], where: str) -> None:
    """Deep blocks fine-tuned on pCR labels cannot enter a learning curve: the patients
    that evaluate a size's models shaped the features."""
    used = sets_using(tuned, strategy_grid(cfg)[1])
    if used:
        raise ConfigError(f"feature sets {used} use deep features fine-tuned on pCR labels "
                          f"({', '.join(tuned)}; {where}): the CV and test patients of a "
                          "size shaped them, so no honest curve exists; leave these sets out "
                          "of strategies.feature_sets or use frozen weights",
                          step="learning curve")


def _check_counts(n: int, n_pos: int, n_neg: int, cv_folds: int, where: str) -> None:
    if min(n_pos, n_neg) < 2 * cv_folds:
        raise ConfigError(f"size {n} {where} has {n_pos} pCR and {n_neg} non-pCR patients: "
                          f"each class needs 2 x protocol.cv_folds = {2 * cv_folds} (the "
                          f"{cv_folds}-fold CV runs on the 70 % development split); choose a "
                          "larger size", step="learning curve")


# --------------------------------------------------------------------------- inputs per size
@dataclasses.dataclass
class SizeInputs:
    """The modelling inputs of one size, and the truth of its patients when known."""

    features: pd.DataFrame
    clinical: pd.DataFrame
    y: pd.Series
    truth: pd.DataFrame | None = None  # one row per patient of y, law drivers added
    weights_label: str | None = None  # the deep features' weights label, when any


def _weights_label(run: RunDir) -> str | None:
    info = run.read("deep_weights") if run.exists("deep_weights") else None
    return info.get("label") if isinstance(info, dict) else None


def _truth_of(path: Path, y: pd.Series) -> pd.DataFrame | None:
    """The truth rows of ``y``'s patients (law drivers added), or None (logged) when the
    file is missing, lacks a column the law needs, or disagrees with the labels."""
    if not path.is_file():
        return None
    try:
        truth = law_drivers(pd.read_csv(path))
    except WorkbenchError as exc:
        log.warning("learning curve: no oracle or bound lines: %s", exc)
        return None
    truth["patient_id"] = truth["patient_id"].astype(str)
    truth = truth.drop_duplicates("patient_id").set_index("patient_id")
    missing = y.index.difference(truth.index)
    if len(missing) or (truth.loc[y.index, "pcr"].astype(int) != y.astype(int)).any():
        log.warning("learning curve: %s does not describe these patients (%d missing, or "
                    "other labels): no oracle or bound lines", path, len(missing))
        return None
    return truth.loc[y.index].reset_index()


class _Subsample:
    """Sizes drawn from a finished run's modelling inputs (:func:`stratified_subsample`)."""

    def __init__(self, cfg: RunConfig, sizes: list[int], run_dir: Path) -> None:
        run = RunDir(run_dir)
        if not run.feature_families() or not run.exists("cohort"):
            raise ConfigError(f"{run.root} holds no feature tables and cohort table to "
                              "subsample: run `workbench run --config ...` first, or pass "
                              "--run with a finished run directory", step="learning curve",
                              path=run.root)
        self.features, self.clinical, y = load_modelling_inputs(run)
        _refuse_tuned(cfg, label_tuned_blocks(cfg, run, self.features), f"run {run.root}")
        self.y = y.astype(int)
        self.seed = cfg.seed
        n_pos, n_all = int(self.y.sum()), len(self.y)
        above = [n for n in sizes if n > n_all]
        if above:
            raise ConfigError(f"sizes {above} exceed the cohort: {run.root} has {n_all} "
                              f"labelled patients with features; a subsample can hold at most "
                              f"{n_all}", step="learning curve", path=run.root)
        for n in sizes:
            k = _positives(n, n_pos, n_all - n_pos)
            _check_counts(n, k, n - k, cfg.protocol.cv_folds, f"(subsample of {run.root})")
        truth_path = (run.path("truth") if run.exists("truth") else
                      synthetic_cohort_dir(cfg) / TRUTH_FILE
                      if cfg.cohort.format == "synthetic" else None)
        self.truth = None if truth_path is None else _truth_of(truth_path, self.y)
        self.weights_label = _weights_label(run)
        log.info("learning curve: stratified subsamples of %d patients (%d pCR) of %s",
                 n_all, n_pos, run.root)

    def session(self):
        return contextlib.nullcontext()

    def inputs(self, n: int) -> SizeInputs:
        ids = stratified_subsample(self.y, n, self.seed)
        truth = (None if self.truth is None
                 else self.truth.set_index("patient_id").loc[ids].reset_index())
        return SizeInputs(self.features.loc[ids], self.clinical.loc[ids], self.y.loc[ids],
                          truth, self.weights_label)


def _with_synthetic(cfg: RunConfig, folder: Path, n: int) -> RunConfig:
    """``cfg`` whose synthetic cohort has ``n`` patients in ``folder``."""
    cohort = cfg.cohort.model_copy(update={
        "path": str(folder), "synthetic": cfg.cohort.synthetic.model_copy(update={"n": n})})
    return cfg.model_copy(update={"cohort": cohort})


def _known_labels(folder: Path, seed: int) -> pd.Series | None:
    """Labels of an already generated synthetic cohort with ``seed`` (truth.csv), if any."""
    summary, truth = folder / "synth_summary.json", folder / TRUTH_FILE
    try:
        if json.loads(summary.read_text()).get("seed") != seed:
            return None
        table = pd.read_csv(truth, usecols=["patient_id", "pcr"])
    except (OSError, ValueError):
        return None
    return table.set_index(table["patient_id"].astype(str))["pcr"].astype(int)


class _Synthetic:
    """The first ``n`` patients of the generator, through QC, preprocessing and features."""

    def __init__(self, cfg: RunConfig, sizes: list[int], out: Path, cache_dir: Path,
                 jobs: int, progress: bool) -> None:
        self.cfg, self.out, self.cache, self.jobs, self.progress = (cfg, out, cache_dir,
                                                                    jobs, progress)
        _refuse_tuned(cfg, cfg.deep.networks if cfg.deep.fine_tune else (),
                      "deep.fine_tune of the config")
        base, top = synthetic_cohort_dir(cfg), max(sizes)
        self.source_cfg = (cfg if top <= cfg.cohort.synthetic.n else
                           _with_synthetic(cfg, base.with_name(f"{base.name}_n{top}"), top))
        self.folder = synthetic_cohort_dir(self.source_cfg)
        self._cohort: CohortTable | None = None
        seed = cfg.cohort.synthetic.seed
        known = [lab for lab in (_known_labels(self.folder, seed), _known_labels(base, seed))
                 if lab is not None]
        for n in sizes:  # patient i is the same in every cohort of this seed
            ids = [patient_id(i) for i in range(n)]
            labels = next((lab.loc[ids] for lab in known if set(ids) <= set(lab.index)), None)
            if labels is not None:
                _check_counts(n, int(labels.sum()), int(n - labels.sum()),
                              cfg.protocol.cv_folds, "(synthetic, seed "
                              f"{seed})")

    def session(self):
        # images are hashed by QC, preprocessing and features: unchanged files only once
        return remembered_digests(self.cache / DIGESTS_FILE)

    def inputs(self, n: int) -> SizeInputs:
        if self._cohort is None:  # generated (once, for the largest size) when missing
            self._cohort = cohort_stage(self.source_cfg, jobs=self.jobs,
                                         progress=self.progress)
        ids = {patient_id(i) for i in range(n)}
        full = self._cohort
        cohort = dataclasses.replace(
            full, df=full.df[full.df["patient_id"].astype(str).isin(ids)].reset_index(drop=True),
            problems=[p for p in full.problems if p.patient_id is None or p.patient_id in ids])
        run = RunDir(self.out / f"n{n}")
        run.root.mkdir(parents=True, exist_ok=True)
        features, clinical, y = stage_inputs(self.cfg, cohort, run, self.cache, jobs=self.jobs,
                                             progress=self.progress)
        if len(y) < n:
            log.warning("learning curve: size %d: %d patients excluded upstream (see %s); "
                        "modelling %d", n, n - len(y), run.path("problems"), len(y))
        return SizeInputs(features, clinical, y.astype(int),
                          _truth_of(self.folder / TRUTH_FILE, y.astype(int)),
                          _weights_label(run))


def stage_inputs(cfg: RunConfig, cohort: CohortTable, run: RunDir, cache_dir: Path, *,
                 jobs: int, progress: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """QC, preprocessing and the feature stages of ``cohort`` into ``run`` (content-addressed
    caches under ``cache_dir``); the modelling inputs ``(features, clinical, y)``."""
    qc_stage(cohort, run, jobs=jobs, progress=progress, max_voxels=cfg.limits.max_voxels,
             store=cache_dir / "qc")
    pre = preprocess_stage(cohort, cfg, cache_dir / "preprocessed", jobs=jobs,
                           progress=progress)
    cohort.add_problems(pre.problems)
    run.write("preprocessed", pre.table)
    labels = pd.Series(cohort.df["pcr"].to_numpy(), index=cohort.df["patient_id"])
    feats = feature_stages(pre.table, cfg, cache_dir, run, jobs=jobs, labels=labels,
                           progress=progress, cohort=cohort)
    for name, res in feats.items():
        cohort.add_problems(res.problems(name))
    cohort.save(run.path("cohort").parent)
    return load_modelling_inputs(run, cohort.df)


# --------------------------------------------------------------------------- one size
def _pick(metrics: pd.DataFrame, metric: str, split: str) -> pd.Series | None:
    rows = metrics[(metrics["metric"] == metric) & (metrics["split"] == split)]
    return None if rows.empty else rows.iloc[0]


def _model_values(metrics: pd.DataFrame, preds: pd.DataFrame, fs: str, clf: str) -> dict:
    """The AUC columns of one model: repeated-CV mean, SD, range; test AUC with its CI."""
    m = metrics[(metrics["feature_set"] == fs) & (metrics["classifier"] == clf)]
    rep, sd = _pick(m, "auc_repeated", "cv"), _pick(m, "auc_repeated_sd", "cv")
    cv, test = _pick(m, "auc", "cv"), _pick(m, "auc", "test")
    out: dict = {}
    if rep is not None:
        out.update(auc_cv_mean=rep["value"], auc_cv_min=rep["lo"], auc_cv_max=rep["hi"],
                   auc_cv_sd=np.nan if sd is None else sd["value"])
    elif cv is not None:  # one repeat: no spread to report
        out.update(auc_cv_mean=cv["value"], auc_cv_min=cv["value"], auc_cv_max=cv["value"])
    if test is not None:
        out.update(auc_test=test["value"], auc_test_lo=test.get("lo", np.nan),
                   auc_test_hi=test.get("hi", np.nan))
    part = preds[(preds["feature_set"] == fs) & (preds["classifier"] == clf)
                 & (preds["split"] == "cv")]
    out["repeats"] = int(part["repeat"].nunique())
    return out


def _skip_reason(skipped: list[dict], features: pd.DataFrame, fs: str, clf: str) -> str:
    """Why (feature set, classifier) has no prediction: its recorded skip, or its blocks."""
    missing = sorted(set(FEATURE_SETS[fs].blocks) - set(available_blocks(features.columns)))
    if missing:
        return f"skipped: needs feature blocks {missing}, absent from the inputs"
    for d in skipped:
        if d.get("feature_set") == fs and d.get("classifier") in (clf, None):
            return f"skipped: {d.get('reason', 'no reason recorded')}"
    return "skipped: no prediction (see the log)"


def _truth_rows(truth: pd.DataFrame, split: pd.Series, *, folds: int, repeats: int,
                seed: int) -> list[dict]:
    """Oracle and learnable-bound rows on the size's development patients (the oracle also
    on its test patients), skipped with a warning when the truth cannot support them."""
    t = truth.set_index("patient_id")
    dev = t.loc[split.index[split == "train"]].reset_index()
    test = t.loc[split.index[split == "test"]].reset_index()
    rows = []
    start = time.perf_counter()
    try:
        o_dev, o_test = oracle_auc(dev), oracle_auc(test)
        rows.append({"kind": "oracle", "feature_set": "truth", "strategy": "oracle",
                     "classifier": "true probability", "auc_cv_mean": o_dev["auc"],
                     "auc_test": o_test["auc"], "auc_test_lo": o_test["lo"],
                     "auc_test_hi": o_test["hi"], "seconds": time.perf_counter() - start,
                     "detail": f"AUC of the true P(pCR) on the {len(dev)} development "
                               f"patients; test: the {len(test)} test patients (DeLong CI)"})
    except WorkbenchError as exc:
        log.warning("learning curve: no oracle at n=%d: %s", len(truth), exc)
    start = time.perf_counter()
    n_pos = int(dev["pcr"].sum())
    k = min(folds, n_pos, len(dev) - n_pos)
    try:
        bound = learnable_bound(dev, list(LAW_DRIVERS), CLINICAL_COLUMNS, folds=k,
                                repeats=repeats, seed=seed)
    except WorkbenchError as exc:
        log.warning("learning curve: no learnable bound at n=%d: %s", len(truth), exc)
        return rows
    aucs = np.asarray(bound["aucs"], dtype=float)
    rows.append({"kind": "learnable_bound", "feature_set": "truth",
                 "strategy": "learnable_bound", "classifier": "lr (true latents + subtype)",
                 "auc_cv_mean": bound["auc"],
                 "auc_cv_sd": bound["sd"] if repeats > 1 else np.nan,
                 "auc_cv_min": aucs.min(), "auc_cv_max": aucs.max(), "repeats": repeats,
                 "seconds": time.perf_counter() - start,
                 "detail": f"logistic regression on the generator's true latents + "
                           f"{', '.join(CLINICAL_COLUMNS)}, {k}-fold CV x {repeats} repeats "
                           f"on the {len(dev)} development patients"})
    return rows


def size_table(cfg: RunConfig, n: int, inputs: SizeInputs, *, repeats: int, jobs: int,
               progress: bool = False) -> pd.DataFrame:
    """The learning-curve rows of one size (:data:`LEARNING_CURVE_COLUMNS`): the honest
    protocol on ``inputs`` (strategies + the clinical reference), then the truth rows."""
    start = time.perf_counter()
    strategies, sets = strategy_grid(cfg)
    settings = protocol_settings(cfg, jobs=jobs, repeats=repeats)
    result = run_protocol("honest", inputs.features, inputs.clinical, inputs.y,
                          feature_sets=[REFERENCE[0]], classifiers=[REFERENCE[1]],
                          selector=selector_factory(cfg), make_clf=classifiers_for(cfg),
                          settings=settings, progress=progress, strategies=strategies,
                          strategy_sets=sets, make_strategy=strategy_factory(cfg))
    preds = result.predictions
    metrics = evaluate(preds, threshold_rule=cfg.protocol.threshold,
                       fixed_threshold=cfg.protocol.fixed_threshold, n_boot=N_BOOT,
                       seed=cfg.seed)
    seconds = time.perf_counter() - start
    n_dev, n_test = int((result.split == "train").sum()), int((result.split == "test").sum())
    rows = []
    for kind, fs, clf in [("clinical_reference", *REFERENCE),
                          *[("model", fs, s) for fs in sets for s in strategies]]:
        row = {"kind": kind, "feature_set": fs, "strategy": "study" if kind != "model"
               else clf, "classifier": clf, "seconds": seconds,
               **_model_values(metrics, preds, fs, clf)}
        row["detail"] = (f"honest: {settings.cv_folds}-fold CV x {row['repeats']} repeats on "
                         f"{n_dev} development patients; test split of {n_test}"
                         if np.isfinite(row.get("auc_cv_mean", np.nan))
                         else _skip_reason(result.skipped, inputs.features, fs, clf))
        rows.append(row)
    if inputs.truth is not None:
        rows += _truth_rows(inputs.truth, result.split, folds=settings.cv_folds,
                            repeats=repeats, seed=cfg.seed)
    table = pd.DataFrame(rows)
    table["n"], table["n_used"], table["n_pos"] = n, len(inputs.y), int(inputs.y.sum())
    return table.reindex(columns=list(LEARNING_CURVE_COLUMNS))


def _size_result(cfg: RunConfig, n: int, inputs: SizeInputs, *, out: Path, repeats: int,
                 jobs: int, progress: bool) -> tuple[pd.DataFrame, bool]:
    """One size's rows, reused from ``out/sizes/n<n>.csv`` when its key still matches."""
    folder = out / "sizes"
    table_file, key_file = folder / f"n{n}.csv", folder / f"n{n}.key.json"
    frames = [inputs.features, inputs.clinical, inputs.y]
    frames += [] if inputs.truth is None else [inputs.truth]
    key = cache.stage_key(frames, {**modelling_settings(cfg), "learning_curve": {
        "n": n, "repeats": repeats, "reference": list(REFERENCE), "n_boot": N_BOOT}}, CODE)
    record = cache.is_current(key_file, key, [table_file])
    if record is not None:
        log.info("learning curve: n=%d: inputs, settings and code unchanged; reusing %s "
                 "(fitted in %.0f s)", n, table_file, float(record.get("seconds", 0.0)))
        return pd.read_csv(table_file), True
    folder.mkdir(parents=True, exist_ok=True)
    cache.invalidate(key_file)
    start = time.perf_counter()
    table = size_table(cfg, n, inputs, repeats=repeats, jobs=jobs, progress=progress)
    atomic_write_text(table_file, table.to_csv(index=False))
    cache.mark_done(key_file, key, n=n, seconds=round(time.perf_counter() - start, 1))
    return table, False


# --------------------------------------------------------------------------- the curve
def learning_curve(cfg: RunConfig, sizes: Sequence[int], *, out: str | Path,
                   repeats: int | None = None, jobs: int | None = None, progress: bool = True,
                   cache_dir: str | Path | None = None,
                   base_run: str | Path | None = None) -> pd.DataFrame:
    """Honest repeated-CV AUC per strategy x feature set against cohort size (module doc).

    Parameters
    ----------
    cfg
        The run config: its strategies and their feature sets, protocol, seed and cohort.
    sizes
        Cohort sizes ``n`` (distinct, each at least ``4 * protocol.cv_folds``).
    out
        Output folder: ``learning_curve.csv``, ``learning_curve.html``, ``sizes/`` and, for
        a synthetic cohort, the per-size run directories ``n<n>/``.
    repeats
        CV repeats per size (default ``strategies.repeats``).
    jobs
        Parallel workers (default ``cfg.jobs``).
    progress
        A tqdm bar over the sizes (``learning curve``), the stage and modelling bars below.
    cache_dir
        Content-addressed caches of the synthetic path (default ``data/interim``).
    base_run
        A finished run directory to subsample (default for a real cohort: the config's run
        directory ``data/runs/<name>``); given with a synthetic config, its features are
        subsampled instead of generating and extracting.

    Returns
    -------
    pandas.DataFrame
        The table of :data:`LEARNING_CURVE_COLUMNS`; ``attrs``: ``csv``, ``html``,
        ``cached_sizes`` (sizes reused from an earlier call), ``seconds``.

    Raises
    ------
    ConfigError
        Before any modelling: bad sizes or repeats, no non-study strategy in the config, a
        size above a real cohort (or the base run), a size with fewer than 2 x cv_folds
        patients of a class, ``out`` an existing file.
    """
    start = time.perf_counter()
    repeats = cfg.strategies.repeats if repeats is None else repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1:
        raise ConfigError(f"--repeats must be a whole number >= 1; got {repeats!r}",
                          step="learning curve")
    strategies, sets = strategy_grid(cfg)
    if not strategies:
        raise ConfigError(f"strategies.names of {cfg.source or 'the config'} lists no "
                          f"strategy beside the study chain ({list(cfg.strategies.names)}): "
                          "add cluster, stability, elasticnet or prespecified (and "
                          "strategies.feature_sets) to draw imaging curves",
                          step="learning curve", path=cfg.source)
    sizes = check_sizes(sizes, cfg.protocol.cv_folds)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file, not a folder",
                          step="learning curve")
    jobs = jobs or cfg.jobs
    if base_run is not None or cfg.cohort.format != "synthetic":
        source: _Subsample | _Synthetic = _Subsample(
            cfg, sizes, Path(base_run) if base_run is not None else default_run_dir(cfg))
    else:
        source = _Synthetic(cfg, sizes, out, Path(cache_dir) if cache_dir else default_cache(),
                            jobs, progress)
    out.mkdir(parents=True, exist_ok=True)
    tables, cached, label = [], [], None
    with source.session(), tqdm(total=len(sizes), desc="learning curve", unit="size",
                                disable=not progress) as bar:
        for n in sizes:
            bar.set_postfix(n=n)
            inputs = source.inputs(n)
            n_pos = int(inputs.y.sum())
            _check_counts(n, n_pos, len(inputs.y) - n_pos, cfg.protocol.cv_folds,
                          "(its modelling inputs)")
            if "prespecified" in strategies:  # a typo must not become an empty model
                check_patterns(cfg.strategies.prespecified, inputs.features.columns)
            table, reused = _size_result(cfg, n, inputs, out=out, repeats=repeats, jobs=jobs,
                                         progress=progress)
            tables.append(table.reindex(columns=list(LEARNING_CURVE_COLUMNS)))
            cached += [n] if reused else []
            label = label or inputs.weights_label
            bar.update()
    table = pd.concat(tables, ignore_index=True)
    csv = atomic_write_text(out / "learning_curve.csv", table.to_csv(index=False))
    html = write_learning_curve_html(table, out / "learning_curve.html",
                                     title=f"Learning curve — {cfg.name}", weights_label=label)
    table.attrs.update(csv=str(csv), html=str(html), cached_sizes=cached,
                       seconds=time.perf_counter() - start)
    for line in learning_curve_lines(table):
        log.info(line)
    return table


# --------------------------------------------------------------------------- outputs
def _mean_sd(row: pd.Series) -> str:
    mean, sd = row.get("auc_cv_mean", np.nan), row.get("auc_cv_sd", np.nan)
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.3f}" + (f" ± {sd:.3f}" if np.isfinite(sd) else "")


def _from(flags: dict[int, bool]) -> int | None:
    """The smallest size from which every larger size tried is flagged, or None."""
    first = None
    for n in sorted(flags, reverse=True):
        if not flags[n]:
            break
        first = n
    return first


def learning_curve_lines(table: pd.DataFrame) -> list[str]:
    """Summary lines: per size the clinical reference, the best imaging model, the oracle
    and the bound (repeated-CV AUC); then from which size on imaging beats clinical alone
    (its mean, and every repeat above the reference's best repeat)."""
    lines, above, clear = [], {}, {}
    for n, part in table.groupby("n", sort=True):
        first = {kind: rows for kind, rows in part.groupby("kind", sort=False)}
        clin = first.get("clinical_reference")
        clin = None if clin is None or clin.empty else clin.iloc[0]
        models = first.get("model", part.iloc[0:0])
        models = models[np.isfinite(models["auc_cv_mean"].astype(float))]
        text = [f"n={n} ({part['n_pos'].iloc[0]} pCR): clinical reference "
                f"{'-' if clin is None else _mean_sd(clin)}"]
        if len(models):
            best = models.loc[models["auc_cv_mean"].astype(float).idxmax()]
            text.append(f"best imaging {best['feature_set']}/{best['classifier']} "
                        f"{_mean_sd(best)} (repeats {best['auc_cv_min']:.3f}-"
                        f"{best['auc_cv_max']:.3f})")
            if clin is not None and np.isfinite(clin["auc_cv_mean"]):
                above[n] = bool(best["auc_cv_mean"] > clin["auc_cv_mean"])
                clear[n] = bool(best["auc_cv_min"] > clin["auc_cv_max"])
        for kind, name in (("oracle", "oracle"), ("learnable_bound", "learnable bound")):
            if kind in first:
                text.append(f"{name} {_mean_sd(first[kind].iloc[0])}")
        lines.append("; ".join(text))
    if not above:
        return lines
    start, sure = _from(above), _from(clear)
    if start is not None:
        lines.append(f"imaging beats the clinical reference (repeated-CV AUC) from n={start} "
                     "on; with every repeat above the reference's best: "
                     + (f"from n={sure} on" if sure is not None
                        else "not at the largest size tried"))
    elif any(above.values()):
        lines.append(f"imaging beats the clinical reference (repeated-CV AUC) at n="
                     f"{[n for n, a in above.items() if a]}, but not at the largest size "
                     f"tried (n={max(above)})")
    else:
        lines.append("imaging does not beat the clinical reference (repeated-CV AUC) at any "
                     "size tried")
    return lines


def write_learning_curve_html(table: pd.DataFrame, path: Path, *, title: str,
                              weights_label: str | None = None) -> Path:
    """A standalone page (Bokeh inline, works offline): the CV and test figures, the
    summary lines and the table."""
    page = Page(weights_label)
    page.heading(title, level=1)
    page.para("Honest protocol only. Each line is a strategy on a feature set; the clinical "
              "reference is the study chain's logistic regression on the clinical columns. "
              "Oracle and learnable bound (synthetic cohorts) are computed on the same "
              "development patients.")
    for line in learning_curve_lines(table):
        page.para(line)

    def figures() -> None:
        page.figure(learning_curve_plot(table, split="cv", weights_label=weights_label),
                    caption="Repeated-CV AUC on the development split: mean over repeats, "
                            "bars from the lowest to the highest repeat.")
        page.figure(learning_curve_plot(table, split="test", weights_label=weights_label),
                    caption="The single 30 % test split: AUC with DeLong 95% CI (noisy at "
                            "small n).")

    page.section("Figures", figures)
    page.section("Table", lambda: page.table(table))
    return atomic_write_text(path, page.render(title))
