"""The two protocols: ``honest`` (leakage-free, the default) and ``paper`` (the study's order).

honest
    Stratified 70/30 split (fixed seed). On the 70 %, stratified k-fold CV (optionally
    repeated) in which **every** label-fitted step — variance filter, univariate tests, LASSO,
    signature weights, imputation, scaling, classifier — is fitted on the training folds only.
    The final models are refitted on the whole 70 % and scored once on the 30 %.
paper
    The study's order: filters, LASSO and signatures are fitted on the **whole cohort**
    (test patients included), then the split, CV and classifiers. The test patients' labels
    have shaped the signatures, so its test AUC is optimistic; every output says so.

Selection runs once per (protocol, block, repeat, fold) and its signatures are shared by every
feature set and classifier that uses the block. The units of work -- one selection fit per
(fold, block), then one classifier fit per (fold, feature set, classifier) -- run in parallel
(joblib) and are what the progress bar counts (:func:`grid_units`); results do not depend on
the number of workers or the order the units finish in.

Beside the study's chain, the honest protocol runs the non-study strategies
(:mod:`workbench.models.strategy_runs`): one unit per (fold, feature set, strategy) on
``strategy_repeats`` repeats of the same folds, in the same pool and progress bar.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from workbench.errors import WorkbenchError
from workbench.models.feature_sets import (
    CLINICAL_PREFIX,
    FEATURE_SETS,
    FeatureSet,
    block_columns,
)
from workbench.models.fusion import assemble
from workbench.models.split import stratified_split
from workbench.models.strategy_runs import (
    fold_tasks,
    strategy_calls,
    strategy_outputs,
    strategy_pairs,
)
from workbench.names import LEAKAGE_WARNING, PROTOCOL_NAMES
from workbench.selection import lasso_cv_trace, selection_trace

log = logging.getLogger(__name__)

PROTOCOLS = PROTOCOL_NAMES  # names and warning: one copy, in workbench.names

#: ``factory(block, seed) -> estimator`` mapping a block's columns to one ``sig__<block>``
SelectorFactory = Callable[[str, int], object]
#: ``factory(classifier_name, seed) -> estimator`` with predict_proba
ClassifierFactory = Callable[[str, int], object]


class ModellingError(WorkbenchError):
    """The modelling inputs cannot support the requested protocol."""


@dataclass
class ProtocolSettings:
    """What a protocol run needs (from the run config's ``protocol`` section)."""

    test_size: float = 0.3
    cv_folds: int = 5
    repeats: int = 1
    seed: int = 42
    jobs: int = 1
    #: repeats of the CV for the non-study strategies (honest protocol only)
    strategy_repeats: int = 1


@dataclass
class ProtocolResult:
    """Everything a protocol produced, as tidy tables."""

    protocol: str
    predictions: pd.DataFrame  # patient_id, protocol, feature_set, classifier, split, repeat, fold, probability, label
    selection: pd.DataFrame  # protocol, block, repeat, fold, stage, feature, kept, test, p, coefficient
    signatures: pd.DataFrame  # patient_id, protocol, block, repeat, fold, split, value
    split: pd.Series  # patient_id -> train / test
    final_models: dict = field(default_factory=dict)  # (feature_set, classifier) -> FusionModel
    final_designs: dict = field(default_factory=dict)  # feature_set -> (X_train, X_test)
    # (feature_set, strategy) -> FusionModel of a non-study strategy (raw columns in)
    strategy_models: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)  # recorded, explained skips
    # protocol, block, repeat, fold, alpha, mean_score, std_score, sem_score, n_nonzero, chosen
    lasso_cv: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0
    warning: str | None = None


def check_inputs(features: pd.DataFrame, y: pd.Series, *, min_per_class: int = 3) -> pd.Series:
    """Align labels to the feature table and refuse inputs no protocol can use.

    Raises
    ------
    ModellingError
        On patient IDs that do not match, missing labels, a single class or fewer than
        ``min_per_class`` patients in a class.
    """
    y = pd.Series(y).copy()
    y.index = y.index.astype(str)
    idx = features.index.astype(str)
    missing = sorted(set(idx) - set(y.index))
    extra = sorted(set(y.index) - set(idx))
    if missing:
        raise ModellingError(f"{len(missing)} patients of the feature table have no label "
                             f"(e.g. {missing[:5]}); feature tables and cohort must share "
                             "patient IDs", step="model")
    if extra:
        log.warning("%d labelled patients have no features and are left out (e.g. %s)",
                    len(extra), extra[:5])
    y = y.loc[idx]
    if y.isna().any():
        raise ModellingError(f"{int(y.isna().sum())} patients have no pCR label; drop "
                             "unlabelled patients before modelling", step="model")
    counts = y.astype(int).value_counts().reindex([0, 1], fill_value=0)
    if (counts < min_per_class).any():
        raise ModellingError(f"class counts {counts.to_dict()}: each class needs at least "
                             f"{min_per_class} patients to split and cross-validate",
                             step="model")
    return y.astype(int)


def _design(sigs: pd.DataFrame, clinical: pd.DataFrame, fs: FeatureSet) -> pd.DataFrame:
    parts = [sigs[[c for c in fs.signature_columns if c in sigs.columns]]]
    if fs.clinical:
        parts.append(clinical.loc[sigs.index])
    return pd.concat(parts, axis=1)


def _fit_block(X_fit: pd.DataFrame, y_fit: pd.Series, block: str, selector: SelectorFactory,
               seed: int) -> tuple[object | None, str | None]:
    """One selection unit: the block's pipeline fitted on ``X_fit``, or why it could not be."""
    est = selector(block, seed)
    try:
        est.fit(X_fit, y_fit)
    except (ValueError, WorkbenchError) as exc:
        return None, str(exc)
    return est, None


def _fit_classifier(X_train: pd.DataFrame, y_train: pd.Series, X_eval: pd.DataFrame,
                    name: str, make_clf: ClassifierFactory, seed: int, keep: bool
                    ) -> tuple[np.ndarray | None, object | None, str | None]:
    """One fit unit: ``(probabilities of X_eval, the fitted classifier when keep, None)``, or
    ``(None, None, reason)`` when the classifier cannot fit (e.g. SVM's inner CV on tiny
    classes)."""
    clf = make_clf(name, seed)
    try:
        clf.fit(X_train, y_train)
        proba = clf.predict_proba(X_eval)[:, 1]
    except (ValueError, WorkbenchError) as exc:
        return None, None, str(exc)
    return proba, (clf if keep else None), None


def _keyed(key, func, args):
    return key, func(*args)


def _run_units(calls: Iterable[tuple], jobs: int, bar, counts: dict[str, int],
               done: Callable[[object], str]) -> dict:
    """Run every ``(key, func, args)`` with joblib (``jobs`` workers), advancing ``bar`` as
    each unit finishes; ``done(value)`` names the ``counts`` entry it adds to. Returns
    ``{key: value}`` (the results do not depend on the order the units finish in)."""
    out = {}
    units = Parallel(n_jobs=jobs, return_as="generator_unordered")(
        delayed(_keyed)(key, func, args) for key, func, args in calls)
    for key, value in units:
        out[key] = value
        counts[done(value)] += 1
        bar.set_postfix(counts, refresh=False)
        bar.update()
    return out


def _signatures(fitted: dict, features: pd.DataFrame, ids) -> pd.DataFrame:
    cols = []
    for block, est in fitted.items():
        out = est.transform(features.loc[ids, block_columns(features.columns, block)])
        out = pd.DataFrame(np.asarray(out), index=ids).iloc[:, :1]
        out.columns = [f"sig__{block}"]
        cols.append(out)
    return pd.concat(cols, axis=1) if cols else pd.DataFrame(index=ids)


def _fold_output(task: tuple, fitted: dict, sig_tr: pd.DataFrame, sig_ev: pd.DataFrame,
                 designs: dict, usable: Sequence[FeatureSet], classifiers: Sequence[str],
                 fits: dict, i: int, y: pd.Series, block_skips: list[dict]) -> tuple:
    """One fold's predictions, skips and (final refit) models from its finished units:
    ``(task, predictions, fitted blocks, skips, (models, designs), sig_train, sig_eval)``."""
    r, k, _tr, ev = task
    preds, skip, models = [], list(block_skips), {}
    for fs in usable if classifiers else []:
        if fs.name not in designs:
            missing = [b for b in fs.blocks if b not in fitted]
            skip.append({"feature_set": fs.name, "reason": f"blocks {missing} skipped"})
            continue
        for name in classifiers:
            proba, clf, reason = fits[i, fs.name, name]
            if reason is not None:
                skip.append({"feature_set": fs.name, "classifier": name,
                             "reason": f"classifier failed: {reason}"})
                log.warning("%s/%s skipped in a fold: %s", fs.name, name, reason)
                continue
            pred = pd.DataFrame({"patient_id": list(ev), "feature_set": fs.name,
                                 "classifier": name, "probability": proba,
                                 "label": y.loc[ev].to_numpy()})
            pred["split"] = "test" if r == -1 else "cv"
            pred["repeat"], pred["fold"] = r, k
            preds.append(pred)
            if clf is not None:
                models[fs.name, name] = clf
    return task, preds, fitted, skip, (models, designs if r == -1 else {}), sig_tr, sig_ev


def grid_units(protocol: str, n_tasks: int, n_blocks: int, n_sets: int,
               n_classifiers: int) -> int:
    """Units of work of a protocol run, what its progress bar counts: one selection fit per
    block per fold (``paper``: per block, once, on the whole cohort) and one classifier fit
    per fold x feature set x classifier. ``n_tasks`` counts the CV folds of every repeat plus
    the final refit."""
    selections = n_blocks if protocol == "paper" else n_tasks * n_blocks
    return selections + n_tasks * n_sets * n_classifiers


def run_protocol(protocol: str, features: pd.DataFrame, clinical: pd.DataFrame, y: pd.Series,
                 *, feature_sets: Sequence[str], classifiers: Sequence[str],
                 selector: SelectorFactory, make_clf: ClassifierFactory,
                 settings: ProtocolSettings | None = None,
                 progress: bool = False, strategies: Sequence[str] = (),
                 strategy_sets: Sequence[str] | None = None,
                 make_strategy: ClassifierFactory | None = None) -> ProtocolResult:
    """Run ``protocol`` over the grid feature sets × classifiers.

    Parameters
    ----------
    protocol
        ``"honest"`` or ``"paper"`` (see module docstring).
    features
        Extracted features, index ``patient_id``, block columns chosen by prefix.
    clinical
        ``clin__`` design matrix (index ``patient_id``; may have no columns).
    y
        pCR labels (0/1) indexed by ``patient_id``.
    feature_sets, classifiers
        Names from :data:`~workbench.models.feature_sets.FEATURE_SETS` and the classifier
        registry.
    selector, make_clf
        Factories for block selection pipelines and classifier pipelines.
    settings
        Split, folds, repeats, seed and ``jobs`` (workers running the units of work).
    progress
        Show a tqdm bar ``models (<protocol>)`` over the units of work (:func:`grid_units`),
        advancing as each finishes, with selected / fitted / skipped counts.
    strategies, strategy_sets, make_strategy
        Non-study strategies (:mod:`workbench.models.strategy_runs`), the feature sets they
        run on (default ``feature_sets``) and ``factory(name, seed)`` building their
        pipelines. Honest protocol only: under ``paper`` each is recorded as skipped.
    """
    if protocol not in PROTOCOLS:
        raise ModellingError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}",
                             step="model")
    s = settings or ProtocolSettings()
    start = time.perf_counter()
    y = check_inputs(features, y, min_per_class=max(3, s.cv_folds if s.cv_folds else 3))
    features = features.copy()
    features.index = features.index.astype(str)
    features = features.sort_index()  # the split depends on row order: make it canonical
    y = y.loc[features.index]
    clinical = clinical.reindex(features.index)
    clinical = clinical[[c for c in clinical.columns if str(c).startswith(CLINICAL_PREFIX)]]
    sets = [FEATURE_SETS[n] for n in feature_sets]
    blocks = sorted({b for fs in sets for b in fs.blocks})
    empty = [b for b in blocks if not block_columns(features.columns, b)]
    skipped = [{"block": b, "reason": "no column with this prefix in the feature table"}
               for b in empty]
    usable = [fs for fs in sets if not set(fs.blocks) & set(empty)]
    skipped += [{"feature_set": fs.name, "reason": f"needs missing blocks "
                 f"{sorted(set(fs.blocks) & set(empty))}"} for fs in sets if fs not in usable]
    if not usable:
        raise ModellingError("no feature set can run: " + "; ".join(
            f"{d.get('feature_set', d.get('block'))}: {d['reason']}" for d in skipped),
            step="model")

    split = stratified_split(pd.Series(features.index), y.reindex(features.index),
                             test_size=s.test_size, seed=s.seed)
    train_ids = split.index[split == "train"].tolist()
    test_ids = split.index[split == "test"].tolist()
    y_train = y.loc[train_ids]

    # CV folds of every repeat, then the final refit, scored once on test
    tasks = fold_tasks(train_ids, y_train, test_ids, folds=s.cv_folds, repeats=s.repeats,
                       seed=s.seed)
    strategies = list(strategies) if make_strategy is not None else []
    if protocol == "paper" and strategies:
        skipped += [{"classifier": name, "reason": "non-study strategies run under the honest "
                     "protocol only (the paper protocol reproduces the study's chain)"}
                    for name in strategies]
        strategies = []
    s_sets = [FEATURE_SETS[n] for n in (feature_sets if strategy_sets is None
                                        else strategy_sets)]
    s_sets = [fs for fs in s_sets if not set(fs.blocks) & set(empty)]
    s_tasks = (fold_tasks(train_ids, y_train, test_ids, folds=s.cv_folds,
                          repeats=s.strategy_repeats, seed=s.seed) if strategies else [])
    pairs, not_applicable = (strategy_pairs(s_sets, strategies, features, make_strategy,
                                            s.seed) if strategies else ([], []))
    skipped += not_applicable
    n_strategy_units, s_calls = strategy_calls(s_tasks, pairs, features, clinical, y,
                                               _fit_classifier, make_strategy, s.seed)

    # Every unit of work is its own joblib task, so the bar advances as units finish:
    # selection per (fold, block) -- paper: per block, on everyone, before the split -- then
    # one classifier fit per (fold, feature set, classifier) on that fold's signatures.
    fold_blocks = sorted({b for fs in usable for b in fs.blocks})
    sel_blocks = [b for b in blocks if b not in empty] if protocol == "paper" else fold_blocks
    if not classifiers:  # strategies only: the study's selection has no consumer
        sel_blocks = []
    fit_on = ({None: features.index.tolist()} if protocol == "paper"
              else {i: task[2] for i, task in enumerate(tasks)})
    cols = {b: block_columns(features.columns, b) for b in sel_blocks}
    counts = {"selected": 0, "fitted": 0, "skipped": 0}
    total = (grid_units(protocol, len(tasks), len(sel_blocks), len(usable), len(classifiers))
             + n_strategy_units)
    with tqdm(total=total, desc=f"models ({protocol})", unit="fit",
              disable=not progress) as bar:
        selected = _run_units(
            [((i, b), _fit_block, (features.loc[ids, cols[b]], y.loc[ids], b, selector, s.seed))
             for i, ids in fit_on.items() for b in sel_blocks], s.jobs, bar, counts,
            lambda v: "skipped" if v[0] is None else "selected")
        fitted_of, block_skips = {}, {}
        for i in fit_on:
            fitted_of[i] = {b: selected[i, b][0] for b in sel_blocks
                            if selected[i, b][0] is not None}
            block_skips[i] = [{"block": b, "reason": selected[i, b][1]} for b in sel_blocks
                              if selected[i, b][0] is None]
            for d in block_skips[i]:
                log.warning("block %s skipped: %s", d["block"], d["reason"])
        if protocol == "paper":
            skipped += block_skips[None]

        folds, calls = [], []
        for i, (r, _k, tr, ev) in enumerate(tasks):
            fitted = fitted_of[None if protocol == "paper" else i]
            sig_tr, sig_ev = _signatures(fitted, features, tr), _signatures(fitted, features, ev)
            designs = {}
            for fs in usable:
                if any(b not in fitted for b in fs.blocks) or (not fs.blocks
                                                               and not fs.clinical):
                    counts["skipped"] += len(classifiers)
                    bar.update(len(classifiers))
                    continue
                X_tr, X_ev = _design(sig_tr, clinical, fs), _design(sig_ev, clinical, fs)
                designs[fs.name] = (X_tr, X_ev)
                calls += [((i, fs.name, name), _fit_classifier,
                           (X_tr, y.loc[tr], X_ev, name, make_clf, s.seed, r == -1))
                          for name in classifiers]
            folds.append((fitted, sig_tr, sig_ev, designs))
        fits = _run_units(itertools.chain(calls, s_calls), s.jobs, bar, counts,
                          lambda v: "skipped" if v[2] is not None else "fitted")
    s_preds, s_skipped, s_models = strategy_outputs(s_tasks, fits, y, protocol)
    skipped += s_skipped
    outputs = [_fold_output(task, *fold, usable, classifiers, fits, i, y,
                            [] if protocol == "paper" else block_skips[i])
               for i, (task, fold) in enumerate(zip(tasks, folds, strict=True))]
    # a model missing from some folds is kept (the metrics table gives its n), but said so
    done: dict[tuple[str, str], int] = {}
    for _task, preds, *_ in outputs:
        for p in preds:
            key = (p["feature_set"].iat[0], p["classifier"].iat[0])
            done[key] = done.get(key, 0) + 1
    skipped += [{"feature_set": fs, "classifier": clf, "reason": f"predictions from only "
                 f"{count} of {len(tasks)} folds (CV folds + final refit; see the fold "
                 "skips): its metrics cover fewer patients"}
                for (fs, clf), count in sorted(done.items()) if count < len(tasks)]
    if not done and not s_preds:
        fold_skips = [d for _task, _p, _f, skip, *_ in outputs for d in skip]
        reasons = sorted({f"{d.get('block') or d.get('feature_set')}: {d['reason']}"
                          for d in skipped + fold_skips})
        raise ModellingError(f"no feature set x classifier produced any prediction under "
                             f"protocol {protocol!r}: " + "; ".join(reasons[:5]), step="model")
    predictions, selections, signatures, final_models, final_designs = [], [], [], {}, {}
    curves = []
    for (r, k, _tr, _ev), preds, fitted, skip, models, sig_tr, sig_ev in outputs:
        predictions += preds
        skipped += [{**d, "repeat": r, "fold": k} for d in skip]
        if r == -1:
            clfs, designs = models
            final_designs = designs
            final_models = {
                key: assemble(fitted, clf, features, list(designs[key[0]][0].columns),
                              feature_set=key[0], classifier_name=key[1], protocol=protocol)
                for key, clf in clfs.items()}
        if protocol == "honest" or r == -1:
            selections.append(_trace(fitted, r, k))
            curves.append(_trace(fitted, r, k, lasso_cv=True))
        for name, frame in (("train", sig_tr), ("eval", sig_ev)):
            if not frame.empty:
                long = frame.rename_axis("patient_id").reset_index().melt(
                    id_vars="patient_id", var_name="block", value_name="value")
                long["block"] = long["block"].str.removeprefix("sig__")
                long["repeat"], long["fold"] = r, k
                long["split"] = ("test" if r == -1 else "cv") if name == "eval" else "fit"
                signatures.append(long)
    predictions += s_preds  # the strategies' rows after the study's
    pred = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    pred.insert(1, "protocol", protocol)
    sel = pd.concat(selections, ignore_index=True) if selections else pd.DataFrame()
    if not sel.empty:
        sel.insert(0, "protocol", protocol)
    sig = pd.concat(signatures, ignore_index=True) if signatures else pd.DataFrame()
    if not sig.empty:
        sig.insert(1, "protocol", protocol)
    cv_curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    if not cv_curves.empty:
        cv_curves.insert(0, "protocol", protocol)
    return ProtocolResult(protocol=protocol, predictions=pred, selection=sel, signatures=sig,
                          split=split, final_models=final_models,
                          final_designs=final_designs, strategy_models=s_models,
                          skipped=skipped, lasso_cv=cv_curves,
                          seconds=time.perf_counter() - start,
                          warning=LEAKAGE_WARNING if protocol == "paper" else None)


def _trace(fitted: dict, repeat: int, fold: int, *, lasso_cv: bool = False) -> pd.DataFrame:
    """Selection trace (or, with ``lasso_cv``, the LASSO CV curves) of every fitted block."""
    frames = []
    for block, est in fitted.items():
        try:
            t = lasso_cv_trace(est) if lasso_cv else selection_trace(est)
        except (AttributeError, TypeError):  # a custom selector without these steps
            continue
        if t.empty:
            continue
        t.insert(0, "block", block)
        frames.append(t)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["repeat"], out["fold"] = repeat, fold
    return out
