"""The non-study strategies inside a protocol run: units of work and their outputs.

A strategy (``cluster``, ``stability``, ``elasticnet``, ``prespecified``;
:func:`workbench.selection.strategy_pipeline`) is one Pipeline from a feature set's raw
columns (plus ``clin__`` when the set has them) to a probability, so each (fold, feature
set, strategy) is one unit of work, fitted on the fold's training patients only. They run
under the ``honest`` protocol, on ``strategy_repeats`` repeats of the protocol's folds (the
first repeats are the study chain's folds) and the final refit on the whole training split,
scored once on the test patients. Rows in the run tables carry the strategy's name in the
``classifier`` column.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from workbench.models.feature_sets import FeatureSet, block_columns
from workbench.models.fusion import FusionModel
from workbench.selection import PrespecifiedColumns, match_patterns

log = logging.getLogger(__name__)

#: unit key: ("strategy", task index, feature set, strategy)
Key = tuple[str, int, str, str]


def strategy_columns(features: pd.DataFrame, fs: FeatureSet) -> list[str]:
    """The raw columns a strategy sees for feature set ``fs`` (its blocks, in order)."""
    return [c for b in fs.blocks for c in block_columns(features.columns, b)]


def strategy_design(features: pd.DataFrame, clinical: pd.DataFrame, fs: FeatureSet,
                    ids: Sequence[str]) -> pd.DataFrame:
    """Raw block columns (+ clinical columns when ``fs`` has them) of patients ``ids``."""
    parts = [features.loc[list(ids), strategy_columns(features, fs)]]
    if fs.clinical:
        parts.append(clinical.loc[list(ids)])
    return pd.concat(parts, axis=1)


def strategy_pairs(sets: Sequence[FeatureSet], strategies: Sequence[str],
                   features: pd.DataFrame, make_strategy: Callable, seed: int
                   ) -> tuple[list[tuple[FeatureSet, str]], list[dict]]:
    """``(pairs, skips)``: the (feature set, strategy) pairs that can run, and a skip record
    for each that cannot run at all (a prespecified list naming no column of the set),
    recorded once instead of per fold."""
    pairs, skips = [], []
    for fs in sets:
        columns = strategy_columns(features, fs)
        if not (fs.clinical or columns):
            continue
        for name in strategies:
            if applies(make_strategy(name, seed), columns):
                pairs.append((fs, name))
            else:
                skips.append({"feature_set": fs.name, "classifier": name,
                              "reason": "strategy keeps no feature here: none of its "
                                        "prespecified features is a column of this feature "
                                        "set"})
    return pairs, skips


def strategy_calls(tasks: list[tuple], pairs: Sequence[tuple[FeatureSet, str]],
                   features: pd.DataFrame, clinical: pd.DataFrame, y: pd.Series,
                   fit: Callable, make_strategy: Callable, seed: int
                   ) -> tuple[int, Iterator[tuple]]:
    """``(count, units)``: the ``(key, fit, args)`` of every (task, feature set, strategy)
    of ``pairs`` (:func:`strategy_pairs`), built lazily (a fusion set's design is ~10 MB:
    the workers take them as they go, so only a few exist at once); ``fit`` is the protocol
    module's classifier unit (same signature, same failure handling)."""
    sets = list(dict.fromkeys(fs for fs, _ in pairs))

    def units():
        for i, (r, _k, tr, ev) in enumerate(tasks):
            for fs in sets:
                X_tr = strategy_design(features, clinical, fs, tr)
                X_ev = strategy_design(features, clinical, fs, ev)
                for f, name in pairs:
                    if f is fs:
                        yield (("strategy", i, fs.name, name), fit,
                               (X_tr, y.loc[tr], X_ev, name, make_strategy, seed, r == -1))

    return len(tasks) * len(pairs), units()


def applies(pipeline, columns: Sequence[str]) -> bool:
    """Whether a strategy pipeline can keep a feature of ``columns`` (only a prespecified
    list can rule a feature set out before fitting)."""
    first = pipeline.steps[0][1] if hasattr(pipeline, "steps") else None
    if isinstance(first, PrespecifiedColumns):
        return any(match_patterns(first.features, columns).values())
    return True


def strategy_outputs(tasks: list[tuple], fits: dict, y: pd.Series, protocol: str) -> tuple[list[pd.DataFrame], list[dict], dict]:
    """Predictions, skips and final models (``(feature set, strategy) -> FusionModel``)."""
    preds, skipped, models = [], [], {}
    done: dict[tuple[str, str], int] = {}
    failed: dict[tuple[str, str], int] = {}
    mine = sorted(k for k in fits if k[0] == "strategy")  # keys of the study: other shapes
    for key in mine:
        proba, clf, reason = fits[key]
        _, i, fs, name = key
        r, k, tr, ev = tasks[i]
        if reason is not None:
            skipped.append({"feature_set": fs, "classifier": name, "repeat": r, "fold": k,
                            "reason": f"strategy kept no model here: {reason}"})
            failed[fs, name] = failed.get((fs, name), 0) + 1
            log.debug("%s/%s skipped in a fold: %s", fs, name, reason)
            continue
        done[fs, name] = done.get((fs, name), 0) + 1
        pred = pd.DataFrame({"patient_id": list(ev), "feature_set": fs, "classifier": name,
                             "probability": proba, "label": y.loc[ev].to_numpy()})
        pred["split"] = "test" if r == -1 else "cv"
        pred["repeat"], pred["fold"] = r, k
        preds.append(pred)
        if clf is not None:
            columns = list(getattr(clf, "feature_names_in_", []))
            models[fs, name] = FusionModel(
                blocks={}, classifier=clf, design_columns=columns,
                block_inputs={}, feature_set=fs, classifier_name=name,
                protocol=protocol).fit(None)
    for (fs, name), count in sorted(failed.items()):  # one line per model, not per fold
        log.warning("%s/%s: no model in %d of %d folds (see models/skipped.csv)", fs, name,
                    count, len(tasks))
    skipped += [{"feature_set": fs, "classifier": name, "reason": f"predictions from only "
                 f"{count} of {len(tasks)} folds (CV folds + final refit; see the fold "
                 "skips): its metrics cover fewer patients"}
                for (fs, name), count in sorted(done.items()) if count < len(tasks)]
    return preds, skipped, models


def fold_tasks(train_ids: list[str], y_train: pd.Series, test_ids: list[str], *,
               folds: int, repeats: int, seed: int) -> list[tuple]:
    """``(repeat, fold, fit ids, eval ids)`` for ``repeats`` x ``folds`` stratified CV of the
    training split (repeat r shuffled with ``seed + r``) and the final ``(-1, -1, train,
    test)``."""
    tasks = []
    for r in range(repeats):
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for k, (tr, ev) in enumerate(skf.split(np.zeros(len(train_ids)), y_train)):
            tasks.append((r, k, [train_ids[i] for i in tr], [train_ids[i] for i in ev]))
    tasks.append((-1, -1, train_ids, test_ids))
    return tasks
