"""From the run config to stage arguments: the only place that unpacks :class:`RunConfig`.

Every stage below the pipeline takes typed arguments (settings dataclasses, factories,
numbers); this module maps each config section onto them, so a config key is read in exactly
one place.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

import workbench
from workbench.config import RunConfig
from workbench.data import dataset_path
from workbench.errors import ConfigError
from workbench.imaging.preprocess import PreprocessSettings
from workbench.models.classifiers import make_pipeline
from workbench.models.protocols import ProtocolSettings
from workbench.models.split import stratified_split
from workbench.names import CLINICAL_ONLY_FORMATS, FEATURE_SETS
from workbench.selection import (
    ComBat,
    RobustnessFilter,
    StrategySettings,
    check_patterns,
    match_patterns,
    selection_pipeline,
    strategy_pipeline,
)

__all__ = ["DEMO_CONFIG", "checkout_root", "classifier_factory", "classifiers_for",
           "cohort_path", "default_config_path", "deep_options", "default_cache", "default_run_dir",
           "fine_tune_split", "kinetic_options", "modelled_sets", "modelling_settings", "needs_images", "preprocess_settings",
           "protocol_settings", "radiomics_params_path", "selector_factory",
           "strategy_factory", "strategy_grid", "strategy_settings", "synthetic_cohort_dir"]


# --------------------------------------------------------------------------- folders
#: The demo config, named relative to a checkout.
DEMO_CONFIG = Path("configs") / "demo.yaml"


def checkout_root() -> Path | None:
    """The source checkout the package runs from (``src/workbench`` -> its root), or ``None``
    for an installed package."""
    root = Path(workbench.__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "configs").is_dir() else None


def default_config_path() -> Path:
    """The config of a command given no ``--config``: ``configs/demo.yaml`` in the current
    folder, else in the checkout the package runs from; never a guess.

    Raises
    ------
    ConfigError
        When neither exists (an installed package has no demo config: pass ``--config``).
    """
    candidates = [DEMO_CONFIG]
    if checkout_root() is not None:
        candidates.append(checkout_root() / DEMO_CONFIG)
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"no --config given, and {DEMO_CONFIG} is in neither the current "
                      f"folder ({Path.cwd()}) nor a source checkout of the package; pass "
                      "--config FILE", step="config")


def default_run_dir(cfg: RunConfig) -> Path:
    """``data/runs/<name>`` under the current folder (``make demo`` runs from the checkout)."""
    return Path("data") / "runs" / cfg.name


def default_cache() -> Path:
    """``data/interim``: content-addressed caches, safe to share between runs."""
    return Path("data") / "interim"


def cohort_path(cfg: RunConfig) -> Path | None:
    """The cohort a run reads: ``cohort.path`` relative to the config file; for a
    clinical-only format without a path, the copy shipped with the package
    (``ispy1_clinical``: the I-SPY1 workbook, see ``workbench data``)."""
    path = cfg.resolve_path(cfg.cohort.path)
    if path is None and cfg.cohort.format in CLINICAL_ONLY_FORMATS:
        return dataset_path(cfg.cohort.format)
    return path


def modelled_sets(cfg: RunConfig) -> tuple[str, ...]:
    """Every feature set the run models: the classifiers', the strategies' and the null
    audit's (when it runs)."""
    sets = dict.fromkeys([*cfg.feature_sets, *strategy_grid(cfg)[1]])
    if cfg.audit.permutations:
        sets[cfg.audit.feature_set] = None
    return tuple(sets)


def needs_images(cfg: RunConfig) -> bool:
    """Whether any feature set the run models needs image features (else the image stages
    are skipped: a clinical-only run)."""
    return any(FEATURE_SETS[fs].blocks for fs in modelled_sets(cfg))


def synthetic_cohort_dir(cfg: RunConfig) -> Path:
    """Where the synthetic cohort lives: ``cohort.path`` (relative to the config file), else
    ``data/raw/synthetic`` under the current folder."""
    return cfg.resolve_path(cfg.cohort.path) or Path("data") / "raw" / "synthetic"


# --------------------------------------------------------------------------- features
def preprocess_settings(cfg: RunConfig) -> PreprocessSettings:
    """The ``preprocessing`` section as :class:`PreprocessSettings`."""
    pp = cfg.preprocessing
    return PreprocessSettings(n4=pp.n4, n4_mode=pp.n4_mode, shrink_factor=pp.n4_shrink_factor,
                              target_spacing=pp.spacing_mm,
                              image_interpolator=pp.image_interpolator,
                              zscore_region=pp.zscore_region, itk_threads=cfg.itk_threads)


def radiomics_params_path(cfg: RunConfig) -> Path:
    """The radiomics parameter file: relative to the config file, else to ``configs/`` under
    the current folder, else to the ``configs/`` of the checkout the package runs from
    (``radiomics/paper.yaml`` works from any config in the checkout, and from any folder)."""
    given = Path(cfg.radiomics.params)
    candidates = [cfg.resolve_path(cfg.radiomics.params)]
    if not given.is_absolute():
        candidates.append(Path("configs") / given)
        if checkout_root() is not None:
            candidates.append(checkout_root() / "configs" / given)
    for c in candidates:
        if c is not None and c.is_file():
            return c.resolve()
    raise ConfigError(f"radiomics.params {cfg.radiomics.params!r} not found; looked at "
                      f"{', '.join(str(c) for c in candidates)}", step="config",
                      path=cfg.source)


def kinetic_options(cfg: RunConfig) -> dict[str, float]:
    return {"pe_threshold": cfg.kinetic.pe_threshold, "ser_washout": cfg.kinetic.ser_washout}


def deep_options(cfg: RunConfig, labels: pd.Series | None) -> dict[str, Any]:
    """Keyword arguments of :func:`~workbench.features.deep.extract_deep` (fine-tuning on the
    protocols' training split when the config asks for it)."""
    weights = cfg.deep.weights
    if weights not in ("imagenet", "random"):
        weights = str(cfg.resolve_path(weights))
    tune: dict[str, Any] = {}
    if cfg.deep.fine_tune:
        tune = fine_tune_split(labels, cfg) if labels is not None else {}
        if not tune:
            raise ConfigError("deep.fine_tune needs pCR labels to fit on the training split",
                              step="config", path=cfg.source)
    return {"networks": cfg.deep.networks, "weights": weights, "fine_tune": bool(tune), **tune,
            "require_pretrained": cfg.deep.require_pretrained, "channels": cfg.deep.channels,
            "margin": cfg.deep.margin, "image_size": cfg.deep.image_size,
            "batch_size": cfg.deep.batch_size, "seed": cfg.seed}


def fine_tune_split(labels: pd.Series, cfg: RunConfig) -> dict:
    """Labels and train / test ids for fine-tuning: exactly the protocols' split."""
    y = labels.dropna().astype(int)
    y.index = y.index.astype(str)
    y = y.sort_index()
    split = stratified_split(pd.Series(y.index), y, test_size=cfg.protocol.test_size,
                             seed=cfg.seed)
    return {"labels": y.to_dict(), "train_ids": split.index[split == "train"].tolist(),
            "test_ids": split.index[split == "test"].tolist()}


# --------------------------------------------------------------------------- modelling
def _prefix_steps(robust: pd.Series | None, threshold: float | None,
                  harmonise: tuple[pd.Series, pd.DataFrame | None] | None) -> list:
    """The label-free steps put before every strategy's selection: the robustness filter
    (``selection.robust_icc``), then ComBat (``harmonisation.method: combat``)."""
    steps = []
    if robust is not None:
        steps.append(("robust", RobustnessFilter(icc=robust, threshold=threshold)))
    if harmonise is not None:
        batch, covariates = harmonise
        steps.append(("harmonise", ComBat(batch=batch, covariates=covariates)))
    return steps


def selector_factory(cfg: RunConfig, *, robust: pd.Series | None = None,
                     harmonise: tuple[pd.Series, pd.DataFrame | None] | None = None):
    """``factory(block, seed)`` building the configured selection pipeline for a block.

    ``robust``: the ICC(3,1) of each radiomics feature (``robustness/icc.csv``), applied with
    ``selection.robust_icc``; ``harmonise``: ``(batch, covariates)`` for an in-fold ComBat
    step (see :func:`harmonisation_inputs`)."""
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
        first = _prefix_steps(robust, cfg.selection.robust_icc, harmonise)
        return Pipeline([*first, *pipe.steps[:2], ("impute", impute),
                         *pipe.steps[2:]]).set_output(transform="pandas")

    return make


def classifier_factory(name: str, seed: int, *, balance: str = "none",
                       recalibration: str = "none"):
    """``factory(name, seed)``: the classifier pipeline (imputation, scaling, model); no
    class balancing, no recalibration unless asked (:func:`classifiers_for`)."""
    return make_pipeline(name, seed=seed, balance=balance, recalibration=recalibration)


def classifiers_for(cfg: RunConfig):
    """:func:`classifier_factory` with the config's class balancing and recalibration."""
    return partial(classifier_factory, balance=cfg.protocol.class_balance,
                   recalibration=cfg.protocol.recalibration)


def strategy_settings(cfg: RunConfig) -> StrategySettings:
    """The ``strategies`` section as :class:`~workbench.selection.StrategySettings`."""
    st = cfg.strategies
    return StrategySettings(cluster_threshold=st.cluster_threshold, inner_cv=st.inner_cv,
                            scoring=st.scoring, n_alphas=st.n_alphas,
                            elasticnet_l1_ratios=tuple(st.elasticnet_l1_ratios),
                            stability_threshold=st.stability_threshold,
                            stability_expected_false=st.stability_expected_false,
                            stability_subsamples=st.stability_subsamples,
                            prespecified=tuple(st.prespecified),
                            unpenalised=tuple(st.unpenalised))


def _strategy(name: str, seed: int, *, settings: StrategySettings, first: list | None = None):
    pipe = strategy_pipeline(name, settings, seed=seed)
    if not first:
        return pipe
    steps = []
    for step_name, step in first:
        if step_name == "harmonise":  # strategies see clin__ columns too: harmonise the rest
            step = ColumnTransformer(
                [("combat", step, make_column_selector(pattern=r"^(?!clin__)"))],
                remainder="passthrough", verbose_feature_names_out=False)
        steps.append((step_name, step))
    return Pipeline([*steps, *pipe.steps]).set_output(transform="pandas")


def strategy_factory(cfg: RunConfig, *, robust: pd.Series | None = None,
                     harmonise: tuple[pd.Series, pd.DataFrame | None] | None = None):
    """``factory(name, seed)``: the pipeline of a non-study strategy (with the same
    robustness filter and ComBat step as :func:`selector_factory`)."""
    return partial(_strategy, settings=strategy_settings(cfg),
                   first=_prefix_steps(robust, cfg.selection.robust_icc, harmonise))


def harmonisation_inputs(cfg: RunConfig, cohort: pd.DataFrame, clinical: pd.DataFrame
                         ) -> tuple[pd.Series, pd.DataFrame | None] | None:
    """``(batch, covariates)`` of an in-fold ComBat step, or None when
    ``harmonisation.method`` is ``none``.

    ``batch``: the cohort's ``harmonisation.batch`` column per patient; ``covariates``: the
    clinical design columns matching ``harmonisation.covariates``, a missing value filled with
    the column's median over every patient (label-free: ComBat needs a complete design).

    Raises
    ------
    ConfigError
        When the batch column is absent, a patient has no batch value, there is a single
        batch, or a covariate pattern matches no column.
    """
    h = cfg.harmonisation
    if h.method == "none":
        return None
    if h.batch not in cohort.columns:
        raise ConfigError(f"harmonisation.batch: the cohort has no column {h.batch!r} "
                          f"(columns: {', '.join(map(str, cohort.columns))})", step="config",
                          path=cfg.source)
    batch = pd.Series(cohort[h.batch].to_numpy(), index=cohort["patient_id"].astype(str))
    batch = batch.loc[[i for i in clinical.index.astype(str) if i in batch.index]]
    missing = batch.index[batch.isna()].tolist()
    if missing:
        raise ConfigError(f"harmonisation.batch: {len(missing)} patients have no "
                          f"{h.batch!r} value (e.g. {missing[:5]}); ComBat needs each "
                          "patient's site", step="config", path=cfg.source)
    if batch.nunique() < 2:
        raise ConfigError(f"harmonisation: the cohort has a single {h.batch!r} "
                          f"({batch.iloc[0] if len(batch) else 'none'}); ComBat needs two "
                          "sites or more", step="config", path=cfg.source)
    batch = batch.astype(str)
    if h.covariates:
        check_patterns(h.covariates, clinical.columns, where="the clinical design matrix",
                       what="harmonisation.covariates")
    matched = match_patterns(h.covariates, clinical.columns)
    cols = list(dict.fromkeys(c for found in matched.values() for c in found))
    covariates = None
    if cols:
        covariates = clinical[cols].astype(float)
        covariates = covariates.fillna(covariates.median())
        covariates.index = covariates.index.astype(str)
    return batch, covariates


def strategy_grid(cfg: RunConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(non-study strategies, the feature sets they run on)`` of the config."""
    names = tuple(n for n in cfg.strategies.names if n != "study")
    sets = cfg.strategies.feature_sets
    return names, tuple(cfg.feature_sets if sets is None else sets)


def protocol_settings(cfg: RunConfig, *, jobs: int | None = None,
                      repeats: int | None = None) -> ProtocolSettings:
    """The ``protocol`` section (plus the seed and the worker count)."""
    return ProtocolSettings(test_size=cfg.protocol.test_size, cv_folds=cfg.protocol.cv_folds,
                            repeats=cfg.protocol.repeats if repeats is None else repeats,
                            strategy_repeats=(cfg.strategies.repeats if repeats is None
                                              else repeats),
                            seed=cfg.seed, jobs=jobs or cfg.jobs)


def modelling_settings(cfg: RunConfig) -> dict:
    """The config sections that shape the modelling results (part of the stage cache key)."""
    dump = cfg.model_dump(mode="json", include={"seed", "selection", "feature_sets",
                                                "classifiers", "protocol", "strategies",
                                                "harmonisation"})
    # sections added later stay out of the key at their defaults: older runs keep their keys
    if dump["selection"].get("robust_icc") is None:
        dump["selection"].pop("robust_icc", None)
    if dump["harmonisation"]["method"] == "none":
        dump.pop("harmonisation")
    return dump
