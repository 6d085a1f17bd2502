"""Feature blocks fitted on pCR labels before modelling (fine-tuned CNNs): what they may claim.

With ``deep.fine_tune`` a CNN backbone is tuned on the labels of the whole training split
(:mod:`workbench.features.deep.finetune`); the protocols' test patients never take part. So:

* the **test** estimate of every protocol stays honest: the test patients' labels shaped
  nothing;
* the honest protocol's **cross-validation** estimate of a feature set with a tuned block is
  not: every CV fold's evaluation patients were among the patients the backbone was tuned on.
  Tuning inside each fold would cost one tuning per fold and network, so the estimate is
  withheld instead (:func:`withhold_tuned_cv`): its value and CI are NaN and its ``warning``
  says why, in the metrics table, the predictions table and the skipped table;
* the **null audit** permutes the labels, but tuned features keep the true labels' imprint,
  so an audit of a feature set with a tuned block measures nothing; it is refused
  (:func:`refuse_tuned_audit`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.names import FEATURE_SETS, NETWORK_NAMES, TUNED_CV_NOTE

__all__ = ["TUNED_AUDIT_REASON", "TUNED_CV_NOTE", "refuse_tuned_audit", "sets_using",
           "tuned_blocks", "withhold_tuned_cv"]

TUNED_AUDIT_REASON = ("the deep features were fine-tuned on the true pCR labels, so they keep "
                      "the labels' imprint under any permutation and a null audit of them "
                      "measures nothing")
#: Metric columns that are estimates (blanked), as opposed to counts and the threshold.
_ESTIMATES = ("value", "lo", "hi")


def tuned_blocks(deep_weights: Mapping[str, Any] | None = None,
                 configured: Iterable[str] = ()) -> tuple[str, ...]:
    """Blocks whose features were fitted on labels: networks marked fine-tuned in the deep
    weights provenance (``deep_weights.json``), plus ``configured`` networks (those a config
    with ``deep.fine_tune`` tunes), in registry order."""
    nets = set(configured)
    for net, source in ((deep_weights or {}).get("networks") or {}).items():
        if isinstance(source, Mapping) and source.get("fine_tune"):
            nets.add(net)
    return tuple(n for n in NETWORK_NAMES if n in nets)


def sets_using(blocks: Iterable[str], feature_sets: Iterable[str]) -> list[str]:
    """The feature sets (names) that use any of ``blocks``."""
    blocks = set(blocks)
    return [fs for fs in feature_sets if blocks & set(FEATURE_SETS[fs].blocks)]


def withhold_tuned_cv(metrics: pd.DataFrame, predictions: pd.DataFrame,
                      tuned_sets: Sequence[str], protocols: Sequence[str] = ("honest",)
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Blank the CV estimates of ``tuned_sets`` under ``protocols``.

    Returns the metrics (value, lo, hi NaN; ``warning`` = :data:`TUNED_CV_NOTE`), the
    predictions (the same rows' ``warning`` set: they stay, since the test threshold may be
    chosen on them, but are marked) and one skipped-table row per feature set.
    """
    metrics, predictions = metrics.copy(), predictions.copy()
    if not tuned_sets:
        return metrics, predictions, []
    for frame in (metrics, predictions):
        if "warning" not in frame:
            frame["warning"] = None
        frame["warning"] = frame["warning"].astype(object)
    rows = (metrics["protocol"].isin(protocols) & (metrics["split"] == "cv")
            & metrics["feature_set"].isin(tuned_sets))
    metrics.loc[rows, [c for c in _ESTIMATES if c in metrics]] = np.nan
    metrics.loc[rows, "warning"] = TUNED_CV_NOTE
    rows = (predictions["protocol"].isin(protocols) & (predictions["split"] == "cv")
            & predictions["feature_set"].isin(tuned_sets))
    predictions.loc[rows, "warning"] = TUNED_CV_NOTE
    present = set(metrics.loc[metrics["protocol"].isin(protocols), "feature_set"])
    skipped = [{"protocol": p, "feature_set": fs, "reason": TUNED_CV_NOTE}
               for p in protocols for fs in tuned_sets if fs in present]
    return metrics, predictions, skipped


def refuse_tuned_audit(feature_set: str, blocks: Iterable[str]) -> None:
    """Raise :class:`WorkbenchError` when ``feature_set`` uses a label-tuned block."""
    used = sorted(set(blocks) & set(FEATURE_SETS[feature_set].blocks))
    if used:
        raise WorkbenchError(f"null audit of '{feature_set}' refused: {TUNED_AUDIT_REASON} "
                             f"(fine-tuned: {', '.join(used)}); audit a set without them, "
                             "e.g. radiomics", step="audit")
