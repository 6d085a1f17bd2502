"""Null audit: the same protocols on permuted labels, so leakage shows as signal in noise.

With the pCR labels randomly permuted no model can predict anything: an honest protocol's
test AUC must centre on 0.5. The study's ``paper`` protocol, which selects features on the
whole cohort before splitting, is run on the **same** permutations beside it, and its AUCs
show how much of an apparent result that order alone can manufacture.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from workbench.models.protocols import ModellingError, ProtocolSettings, run_protocol
from workbench.models.tuned import refuse_tuned_audit

log = logging.getLogger(__name__)


def null_audit(features: pd.DataFrame, clinical: pd.DataFrame, y: pd.Series, *,
               selector, make_clf, permutations: int = 20, feature_set: str = "radiomics",
               classifier: str = "lr", protocols: Sequence[str] = ("honest", "paper"),
               settings: ProtocolSettings | None = None, seed: int = 0,
               progress: bool = True, tuned_blocks: Iterable[str] = (),
               strategies: Sequence[str] = (), make_strategy=None) -> pd.DataFrame:
    """Run ``protocols`` on ``permutations`` label permutations.

    The permutations are drawn up front from ``seed`` and run in parallel
    (``settings.jobs`` workers, each running its protocols' folds in turn), so the result
    does not depend on the number of workers. ``strategies`` (with ``make_strategy``) are
    non-study strategies audited beside ``classifier`` on the same permutations (honest
    protocol; their rows carry the strategy in ``classifier``); ``classifier=None`` audits
    the strategies only. ``tuned_blocks`` are blocks fitted on the true
    labels (fine-tuned CNNs); a feature set using one is refused
    (:func:`~workbench.models.tuned.refuse_tuned_audit`).

    Raises
    ------
    WorkbenchError
        When ``feature_set`` uses a block of ``tuned_blocks``.

    Returns
    -------
    pandas.DataFrame
        permutation, protocol, feature_set, classifier, split (cv | test), auc, n, note —
        one row per permutation × protocol × model × split; ``auc`` is NaN, with the reason
        in ``note``, when the model kept no feature and predicted nothing.
    """
    refuse_tuned_audit(feature_set, tuned_blocks)
    rng = np.random.default_rng(seed)
    perms = [pd.Series(rng.permutation(y.to_numpy()), index=y.index)
             for _ in range(permutations)]
    s = settings or ProtocolSettings()
    jobs, inner = s.jobs, dataclasses.replace(s, jobs=1)  # permutations in parallel, folds in turn
    start = time.perf_counter()

    def one(k: int, y_perm: pd.Series) -> list[dict]:
        return _one_permutation(k, y_perm, features, clinical, selector=selector,
                                make_clf=make_clf, feature_set=feature_set,
                                classifier=classifier, protocols=protocols, settings=inner,
                                strategies=strategies, make_strategy=make_strategy)

    rows = []
    runs = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(one)(k, y_perm) for k, y_perm in enumerate(perms))
    for part in tqdm(runs, total=permutations, desc="null audit", unit="permutation",
                     disable=not progress):
        rows += part
    out = pd.DataFrame(rows)
    out.attrs["seconds"] = time.perf_counter() - start
    return out


def _one_permutation(k, y_perm, features, clinical, *, selector, make_clf, feature_set,
                     classifier, protocols, settings, strategies=(), make_strategy=None
                     ) -> list[dict]:
    rows = []
    for protocol in protocols:
        with_strategies = protocol == "honest" and strategies
        if classifier is None and not with_strategies:
            continue
        expected = ([classifier] if classifier else []) + (list(strategies)
                                                           if with_strategies else [])
        try:
            res = run_protocol(protocol, features, clinical, y_perm,
                               feature_sets=[feature_set],
                               classifiers=[classifier] if classifier else [],
                               selector=selector, make_clf=make_clf, settings=settings,
                               strategies=strategies if with_strategies else (),
                               make_strategy=make_strategy)
        except ModellingError as exc:  # nothing predicted at all (e.g. nothing stable)
            preds, why = pd.DataFrame(columns=["classifier", "split", "repeat"]), str(exc)
        else:
            preds, why = res.predictions[res.predictions["repeat"] <= 0], ""
        for name in expected:
            for split in ("cv", "test"):
                part = preds[(preds["classifier"] == name) & (preds["split"] == split)]
                row = {"permutation": k, "protocol": protocol, "feature_set": feature_set,
                       "classifier": name, "split": split, "auc": np.nan, "n": len(part),
                       "note": ""}
                if part.empty or part["label"].nunique() < 2:
                    # a strategy that keeps no feature predicts nothing: said, not imputed
                    row["note"] = ("no prediction: the model kept no feature"
                                   + (f" ({why[:160]})" if why else ""))
                else:
                    row["auc"] = float(roc_auc_score(part["label"], part["probability"]))
                rows.append(row)
    return rows


def summarise(audit: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD and range of the null AUCs per protocol, model (classifier or strategy) and
    split; ``runs`` counts the permutations with an AUC, ``no_model`` those where the model
    kept no feature (no prediction, so no AUC)."""
    grouped = audit.groupby(["protocol", "classifier", "split"], sort=False)["auc"]
    out = grouped.agg(mean="mean", sd="std", min="min", max="max", runs="count")
    out["no_model"] = grouped.size() - out["runs"]
    return out.reset_index()
