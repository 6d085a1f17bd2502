"""The inputs of each learning-curve size: which ``n`` patients, and their modelling inputs.

:func:`size_source` picks where the ``n`` patients of a size come from:

* **subsample** (a real cohort, or any cohort given ``base_run``): nested, seeded, stratified
  subsamples of a finished run's modelling inputs (:func:`stratified_subsample`,
  :class:`SubsampleSizes`); a size above the cohort is refused before any work.
* **synthetic** (``cohort.format: synthetic`` without ``base_run``): the first ``n``
  patients of the generator (patient ``i`` depends only on the seed and ``i``), generated
  once for the largest size (into ``<cohort path>_n<N>`` beside the config's cohort when
  ``N`` exceeds its ``n``), run through QC, preprocessing and the feature stages into
  ``<out>/n<n>/`` with the shared content-addressed caches (:func:`stage_inputs`,
  :class:`SyntheticSizes`), so a patient already extracted is never recomputed.

Either way a size comes back as :class:`SizeInputs` (features, clinical matrix, labels, and
the truth of its patients when known), already checked: enough patients of each class for
the CV (:func:`check_counts`) and every ``strategies.prespecified`` /
``strategies.unpenalised`` entry naming a column
(:func:`~workbench.pipeline.models.check_strategy_inputs`). The checks that need no data are
:func:`check_sizes`. Modelling a size is :mod:`workbench.pipeline.learning_curve`'s job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.cohort.synthetic import patient_id
from workbench.cohort.table import CohortTable
from workbench.config import RunConfig
from workbench.errors import ConfigError, WorkbenchError
from workbench.hashing import remembered_digests
from workbench.models.tuned import sets_using
from workbench.pipeline.diagnostics import TRUTH_FILE, law_drivers
from workbench.pipeline.models import (
    check_strategy_inputs,
    label_tuned_blocks,
    load_modelling_inputs,
)
from workbench.pipeline.run import DIGESTS_FILE
from workbench.pipeline.settings import (
    default_cache,
    default_run_dir,
    strategy_grid,
    synthetic_cohort_dir,
)
from workbench.pipeline.stages import cohort_stage, feature_stages, preprocess_stage, qc_stage
from workbench.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["SizeInputs", "SubsampleSizes", "SyntheticSizes", "check_counts", "check_sizes",
           "size_source", "stage_inputs", "stratified_subsample"]


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


def check_counts(n: int, n_pos: int, n_neg: int, cv_folds: int, where: str) -> None:
    """Refuse size ``n`` (described by ``where``) unless each class has 2 x ``cv_folds``
    patients: the CV runs on the 70 % development split.

    Raises
    ------
    ConfigError
        With the class counts and the minimum.
    """
    if min(n_pos, n_neg) < 2 * cv_folds:
        raise ConfigError(f"size {n} {where} has {n_pos} pCR and {n_neg} non-pCR patients: "
                          f"each class needs 2 x protocol.cv_folds = {2 * cv_folds} (the "
                          f"{cv_folds}-fold CV runs on the 70 % development split); choose a "
                          "larger size", step="learning curve")


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


class SubsampleSizes:
    """Sizes drawn from a finished run's modelling inputs (:func:`stratified_subsample`).

    Everything is checked on construction, before any work: the run holds features and a
    cohort, no strategy set uses label-tuned deep features, every size fits the cohort with
    enough patients of each class, and the strategies' column names exist in the run's
    inputs (:func:`~workbench.pipeline.models.check_strategy_inputs`; a subsample keeps
    every column, so once is enough).

    Raises
    ------
    ConfigError
        On any of those checks but the last.
    SelectionError
        A ``strategies.prespecified`` or ``strategies.unpenalised`` entry matches no column.
    """

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
        self.cv_folds = cfg.protocol.cv_folds
        n_pos, n_all = int(self.y.sum()), len(self.y)
        above = [n for n in sizes if n > n_all]
        if above:
            raise ConfigError(f"sizes {above} exceed the cohort: {run.root} has {n_all} "
                              f"labelled patients with features; a subsample can hold at most "
                              f"{n_all}", step="learning curve", path=run.root)
        for n in sizes:
            k = _positives(n, n_pos, n_all - n_pos)
            check_counts(n, k, n - k, self.cv_folds, f"(subsample of {run.root})")
        check_strategy_inputs(cfg, self.features, self.clinical)
        truth_path = (run.path("truth") if run.exists("truth") else
                      synthetic_cohort_dir(cfg) / TRUTH_FILE
                      if cfg.cohort.format == "synthetic" else None)
        self.truth = None if truth_path is None else _truth_of(truth_path, self.y)
        self.weights_label = _weights_label(run)
        log.info("learning curve: stratified subsamples of %d patients (%d pCR) of %s",
                 n_all, n_pos, run.root)

    def session(self):
        """Nothing to hold open across the sizes."""
        return contextlib.nullcontext()

    def inputs(self, n: int) -> SizeInputs:
        """The stratified subsample of ``n`` patients (nested in every larger one)."""
        ids = stratified_subsample(self.y, n, self.seed)
        truth = (None if self.truth is None
                 else self.truth.set_index("patient_id").loc[ids].reset_index())
        inputs = SizeInputs(self.features.loc[ids], self.clinical.loc[ids], self.y.loc[ids],
                            truth, self.weights_label)
        _check_size(inputs, n, self.cv_folds)
        return inputs


def _check_size(inputs: SizeInputs, n: int, cv_folds: int) -> None:
    n_pos = int(inputs.y.sum())
    check_counts(n, n_pos, len(inputs.y) - n_pos, cv_folds, "(its modelling inputs)")


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


class SyntheticSizes:
    """The first ``n`` patients of the generator, through QC, preprocessing and features.

    On construction: label-tuned deep features are refused, and the class counts of every
    size are checked where an earlier generation of this seed already holds the labels.
    A size's inputs exist only once its stages ran, so the strategies' column names
    (:func:`~workbench.pipeline.models.check_strategy_inputs`) are checked on each size's
    inputs, before it is modelled.
    """

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
                check_counts(n, int(labels.sum()), int(n - labels.sum()),
                             cfg.protocol.cv_folds, f"(synthetic, seed {seed})")

    def session(self):
        """Images are hashed by QC, preprocessing and features: unchanged files only once."""
        return remembered_digests(self.cache / DIGESTS_FILE)

    def inputs(self, n: int) -> SizeInputs:
        """The first ``n`` patients through the cached stages into ``<out>/n<n>/``."""
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
        inputs = SizeInputs(features, clinical, y.astype(int),
                            _truth_of(self.folder / TRUTH_FILE, y.astype(int)),
                            _weights_label(run))
        _check_size(inputs, n, self.cfg.protocol.cv_folds)
        check_strategy_inputs(self.cfg, features, clinical)
        return inputs


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


def size_source(cfg: RunConfig, sizes: list[int], *, out: Path,
                base_run: str | Path | None = None, cache_dir: str | Path | None = None,
                jobs: int, progress: bool) -> SubsampleSizes | SyntheticSizes:
    """Where the sizes' patients come from (module doc): subsamples of ``base_run`` (default
    for a real cohort: the config's run directory), else the synthetic generator with the
    caches under ``cache_dir`` (default ``data/interim``). Writes nothing."""
    if base_run is not None or cfg.cohort.format != "synthetic":
        return SubsampleSizes(cfg, sizes,
                              Path(base_run) if base_run is not None else default_run_dir(cfg))
    return SyntheticSizes(cfg, sizes, out, Path(cache_dir) if cache_dir else default_cache(),
                          jobs, progress)
