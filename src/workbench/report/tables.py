"""The report's tables as DataFrames of formatted strings (pure pandas, no HTML).

* :func:`table2` — the study's Table 2: per feature set × classifier, AUC (95 % CI),
  accuracy, sensitivity, specificity, precision and F1 on one split of one protocol.
* :func:`ablation_table` — Table S2: rows radiomics / deep / fusion feature sets, columns
  classifiers, cells AUC (95 % CI).
* :func:`funnel_table` — features extracted and kept by each selection stage, per block.
* :func:`feature_inventory` — extracted features per block (radiomics: per phase, image type
  and feature class), with the missing values of each group.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from workbench.evaluation.display import format_ci
from workbench.names import BLOCK_PREFIXES, MODEL_LABELS, NETWORK_NAMES
from workbench.plots.signatures import FUNNEL_STEPS, funnel_counts

__all__ = ["ABLATION_SETS", "TABLE2_METRICS", "ablation_table", "classifier_label",
           "feature_inventory", "format_ci", "funnel_table", "table2"]

#: Table 2 columns: metric name in the metrics table → column heading.
TABLE2_METRICS: dict[str, str] = {
    "auc": "AUC (95% CI)", "accuracy": "Accuracy", "sensitivity": "Sensitivity",
    "specificity": "Specificity", "precision": "Precision", "f1": "F1",
}
#: Feature sets of the ablation table (Table S2), in row order, when present.
ABLATION_SETS: tuple[str, ...] = ("radiomics", *NETWORK_NAMES, "deep", "fusion",
                                  "fusion_clinical", "fusion_clinical_kinetic")


def classifier_label(name: str) -> str:
    """Display name of a classifier (``"lr"`` → ``"Logistic regression"``)."""
    return MODEL_LABELS.get(str(name), str(name))


def _rows(metrics: pd.DataFrame, protocol: str, split: str) -> pd.DataFrame:
    m = metrics[(metrics["protocol"].astype(str) == protocol)
                & (metrics["split"].astype(str) == split)]
    return m.assign(feature_set=m["feature_set"].astype(str),
                    classifier=m["classifier"].astype(str), metric=m["metric"].astype(str))


def table2(metrics: pd.DataFrame, protocol: str, split: str = "test") -> pd.DataFrame:
    """Table 2 for one protocol and split.

    Returns
    -------
    pandas.DataFrame
        Columns ``Feature set, Classifier, n (pCR)`` and :data:`TABLE2_METRICS` headings,
        one row per model in table order; cells are formatted strings. Empty when the
        protocol has no rows.
    """
    m = _rows(metrics, protocol, split)
    out = []
    for (fs, clf), group in m.groupby(["feature_set", "classifier"], sort=False):
        by = group.set_index("metric")
        first = group.iloc[0]
        row = {"Feature set": fs, "Classifier": classifier_label(clf),
               "n (pCR)": f"{int(first['n'])} ({int(first['n_pos'])})"}
        for metric, heading in TABLE2_METRICS.items():
            if metric in by.index:
                r = by.loc[metric]
                row[heading] = format_ci(float(r["value"]), float(r["lo"]), float(r["hi"]))
            else:
                row[heading] = "n/a"
        out.append(row)
    return pd.DataFrame(out, columns=["Feature set", "Classifier", "n (pCR)",
                                      *TABLE2_METRICS.values()])


def ablation_table(metrics: pd.DataFrame, protocol: str, split: str = "test",
                   feature_sets: tuple[str, ...] = ABLATION_SETS) -> pd.DataFrame:
    """Table S2: AUC (95 % CI) with rows ``feature_sets`` (those present, in that order)
    and one column per classifier."""
    m = _rows(metrics, protocol, split)
    m = m[m["metric"] == "auc"]
    present = [fs for fs in feature_sets if fs in set(m["feature_set"])]
    classifiers = list(dict.fromkeys(m["classifier"]))
    out = []
    for fs in present:
        row = {"Feature set": fs}
        for clf in classifiers:
            hit = m[(m["feature_set"] == fs) & (m["classifier"] == clf)]
            row[classifier_label(clf)] = ("–" if hit.empty else
                                          format_ci(*hit[["value", "lo", "hi"]].iloc[0]))
        out.append(row)
    return pd.DataFrame(out, columns=["Feature set", *map(classifier_label, classifiers)])


def funnel_table(selection: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """Block × step counts of :func:`workbench.plots.funnel_counts` (final fit), wide."""
    counts = funnel_counts(selection, protocol=protocol)
    wide = counts.pivot(index="block", columns="step", values="features")
    wide = wide.reindex(columns=list(FUNNEL_STEPS)).reindex(counts["block"].unique())
    wide.columns = ["extracted", "after variance filter", "after univariate filter",
                    "after LASSO"]
    return wide.reset_index().rename(columns={"block": "Block"})


def _column_group(column: str) -> tuple[str, str, str, str]:
    """``(block, phase, image type, class)`` of a feature column; ``""`` where not relevant.

    Radiomics columns are ``rad__<phase>__<imagetype>_<class>_<feature>``."""
    for block, prefix in BLOCK_PREFIXES.items():
        if column.startswith(prefix):
            if block != "radiomics":
                return block, "", "", ""
            phase, _, rest = column.removeprefix(prefix).partition("__")
            parts = rest.split("_")
            return block, phase, parts[0], parts[1] if len(parts) > 2 else ""
    return "other", "", "", ""


def feature_inventory(features: pd.DataFrame,
                      by: Sequence[str] = ("Phase", "Image type", "Class")) -> pd.DataFrame:
    """What a feature table holds, group by group.

    Parameters
    ----------
    features
        A feature table of the run directory (``features/<stage>.parquet``: one row per
        patient, columns named by block prefix), or several joined.
    by
        Radiomics levels to count separately, any of ``"Phase"``, ``"Image type"``,
        ``"Class"`` (feature class); other blocks have one row each.

    Returns
    -------
    pandas.DataFrame
        Columns ``Block``, the ``by`` levels, ``Features`` and ``Missing values`` (empty cells
        of the group), one row per group in column order.

    Raises
    ------
    ValueError
        For a level of ``by`` not listed above.
    """
    levels = ("Phase", "Image type", "Class")
    unknown = [b for b in by if b not in levels]
    if unknown:
        raise ValueError(f"by must list levels among {levels}, got {unknown}")
    columns = [str(c) for c in features.columns]
    groups = pd.DataFrame([_column_group(c) for c in columns], index=columns,
                          columns=["Block", *levels])
    groups["Features"] = 1
    groups["Missing values"] = features.isna().sum().to_numpy() if columns else []
    keys = ["Block", *by]
    out = groups.groupby(keys, sort=False)[["Features", "Missing values"]].sum()
    return out.reset_index().astype({"Features": int, "Missing values": int})
