"""Benchmark: the modelling grid (10 classifiers x 12 feature sets, honest and paper).

Usage::

    python benchmarks/modelling.py --synthetic [--jobs 2]        # the study's shape, noise
    python benchmarks/modelling.py --run data/runs/demo [--jobs 2] # a run's feature tables

Steps (all in this process, on the same machine, one after the other):

1. the full grid under ``honest`` and then ``paper`` with :func:`run_protocol`, as the modelling
   stage runs it (selection once per block and fold, shared by every feature set and
   classifier); the wall time of each;
2. shared selection against a naive baseline on a subset (default radiomics, kinetic and
   clinical x the ten classifiers, honest): (a) one ``run_protocol`` call for the whole
   subset; (b) one call per classifier, which refits every block's selection for every
   classifier, as a grid search over pipelines would. Prints the ratio b/a and checks that
   both give the same predictions.
3. the non-study strategies (``cluster``, ``stability``, ``elasticnet``, ``prespecified``;
   ``--strategies``) on the config's strategy feature sets with its repeats, honest: the wall
   time of each, and its ratio to the study chain (``lr``) on the same feature sets and CV
   repeats, measured in the same run.

``--synthetic`` builds a table of the study's shape (:func:`workbench.models.noise.noise_table`
with ``signal=1``): 163 patients, 1,702 ``rad__``, 17 ``kin__``
and 8,576 ``dl_<network>__`` columns (2,048 ResNet50, 1,664 DenseNet169, 2,048 InceptionV3,
1,536 InceptionResNetV2, 1,280 EfficientNetB0), standard-normal noise plus a weak latent pCR
signal in a few columns per block, and clinical columns with the subtype effect. Selection
uses the run config (``--config``; default: the study's settings, a 100-alpha LASSO path
with 10-fold CV). Target: the honest grid in <= 5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
import warnings
from pathlib import Path

import pandas as pd


def synthetic_table(n: int = 163, seed: int = 0, pcr_rate: float = 0.3):
    """Features (rad__, kin__, dl_*), clinical matrix and labels of the study's shape, with
    the weak latent signal (:func:`workbench.models.noise.noise_table`, ``signal=1``)."""
    from workbench.models.noise import noise_table

    return noise_table(n, seed, pcr_rate=pcr_rate, signal=1.0)


def run_table(run_dir: Path):
    """Features, clinical matrix and labels of a run directory, as the model stage reads them."""
    from workbench.pipeline.models import load_modelling_inputs

    return load_modelling_inputs(run_dir)


def _sorted(pred: pd.DataFrame) -> pd.DataFrame:
    keys = ["feature_set", "classifier", "split", "repeat", "fold", "patient_id"]
    return pred.sort_values(keys).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory with features/*.parquet and cohort/")
    source.add_argument("--synthetic", action="store_true",
                        help="163 patients x 10,295 noise features with a little signal")
    parser.add_argument("--config", default=None, help="run config YAML (default: the "
                        "study's selection settings)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel folds (default 2)")
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--protocols", nargs="+", default=["honest", "paper"])
    parser.add_argument("--subset", nargs="+", default=["radiomics", "kinetic", "clinical"],
                        help="feature sets of the shared-vs-naive comparison")
    parser.add_argument("--skip-grid", action="store_true", help="only the comparison")
    parser.add_argument("--skip-naive", action="store_true", help="only the grid")
    parser.add_argument("--strategies", nargs="*", default=None,
                        help="strategies timed in step 3 (default: the config's non-study "
                             "strategies, else all four); give none to skip step 3")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore")  # per-fold selection and convergence warnings
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # ... in the joblib workers too

    from workbench.config import RunConfig, load_config
    from workbench.models.protocols import ProtocolSettings, run_protocol
    from workbench.names import CLASSIFIER_NAMES as ALL_CLASSIFIERS
    from workbench.names import FEATURE_SET_NAMES as ALL_FEATURE_SETS
    from workbench.names import MODEL_STRATEGIES
    from workbench.pipeline.settings import (
        classifier_factory,
        classifiers_for,
        protocol_settings,
        selector_factory,
        strategy_factory,
        strategy_grid,
    )

    cfg = load_config(args.config) if args.config else RunConfig()
    t0 = time.perf_counter()
    features, clinical, y = (synthetic_table() if args.synthetic
                             else run_table(Path(args.run)))
    blocks = pd.Series([c.split("__")[0] for c in features.columns]).value_counts()
    print(f"table: {len(y)} patients ({int(y.sum())} pCR) x {features.shape[1]} features "
          f"({', '.join(f'{b} {n}' for b, n in blocks.items())}) + {clinical.shape[1]} "
          f"clinical; built in {time.perf_counter() - t0:.1f} s")
    lasso = cfg.selection.lasso
    print(f"selection: LASSO {lasso.n_alphas} alphas, {lasso.cv_folds}-fold CV; protocol "
          f"{args.cv_folds}-fold CV, jobs {args.jobs}")
    settings = ProtocolSettings(test_size=cfg.protocol.test_size, cv_folds=args.cv_folds,
                                seed=cfg.seed, jobs=args.jobs)
    selector = selector_factory(cfg)

    def grid(protocol, feature_sets, classifiers):
        start = time.perf_counter()
        res = run_protocol(protocol, features, clinical, y, feature_sets=list(feature_sets),
                           classifiers=list(classifiers), selector=selector,
                           make_clf=classifier_factory, settings=settings)
        return res, time.perf_counter() - start

    if not args.skip_grid:
        print(f"\n1. full grid: {len(ALL_CLASSIFIERS)} classifiers x {len(ALL_FEATURE_SETS)} "
              "feature sets")
        for protocol in args.protocols:
            res, seconds = grid(protocol, ALL_FEATURE_SETS, ALL_CLASSIFIERS)
            ran = res.predictions.groupby(["feature_set", "classifier"]).ngroups
            print(f"   {protocol:6s} {seconds:7.1f} s  ({ran} models, "
                  f"{len(res.skipped)} skip records)")

    if not args.skip_naive:
        sets = args.subset
        print(f"\n2. shared selection vs naive refits: {len(sets)} feature sets "
              f"({', '.join(sets)}) x {len(ALL_CLASSIFIERS)} classifiers, honest")
        shared, t_shared = grid("honest", sets, ALL_CLASSIFIERS)
        print(f"   (a) shared selection, one call     {t_shared:7.1f} s")
        t_naive, naive = 0.0, []
        for name in ALL_CLASSIFIERS:
            res, seconds = grid("honest", sets, [name])
            t_naive += seconds
            naive.append(res.predictions)
        print(f"   (b) naive, one call per classifier {t_naive:7.1f} s")
        same = _sorted(pd.concat(naive, ignore_index=True)).equals(_sorted(shared.predictions))
        print(f"   ratio b/a = {t_naive / t_shared:.2f}  (identical predictions: {same})")

    configured, strategy_sets = strategy_grid(cfg)
    names = (args.strategies if args.strategies is not None
             else list(configured) or list(MODEL_STRATEGIES))
    if "prespecified" in names and not cfg.strategies.prespecified:
        print("   prespecified left out: the config lists no prespecified features")
        names = [n for n in names if n != "prespecified"]
    if names:
        s3 = protocol_settings(cfg, jobs=args.jobs)
        print(f"\n3. strategies on {', '.join(strategy_sets)}: {s3.strategy_repeats} x "
              f"{s3.cv_folds}-fold CV + final refit, honest")
        start = time.perf_counter()
        run_protocol("honest", features, clinical, y, feature_sets=list(strategy_sets),
                     classifiers=["lr"], selector=selector, make_clf=classifiers_for(cfg),
                     settings=dataclasses.replace(s3, repeats=s3.strategy_repeats))
        t_study = time.perf_counter() - start
        print(f"   study chain (lr), same sets and repeats {t_study:7.1f} s  (baseline)")
        for name in names:
            start = time.perf_counter()
            res = run_protocol("honest", features, clinical, y, feature_sets=["clinical"],
                               classifiers=[], selector=selector, make_clf=classifiers_for(cfg),
                               settings=s3, strategies=[name], strategy_sets=strategy_sets,
                               make_strategy=strategy_factory(cfg))
            seconds = time.perf_counter() - start
            ran = res.predictions.groupby("feature_set").ngroups
            print(f"   {name:12s} {seconds:7.1f} s  ({ran} feature sets; ratio to the "
                  f"study chain {seconds / t_study:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
