"""Feature sets, chosen by column prefix, and the clinical design matrix.

A *block* is one family of extracted features with its own selection pipeline and signature
(``rad__`` → ``sig__radiomics``, ``dl_resnet50__`` → ``sig__resnet50``, ...). A *feature set*
is a union of blocks, plus the clinical columns when it includes them; its classifiers see the
blocks' signatures and the raw ``clin__`` columns. Selection therefore runs once per
(protocol, block, fold) and is shared by every feature set and classifier that uses the block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The registry itself is pure data in workbench.names (one copy, shared with the report and
# the dashboard); this module keeps the behaviour: columns of a block, the clinical matrix.
from workbench.names import BLOCK_PREFIXES, CLINICAL_PREFIX, FEATURE_SETS, FeatureSet

__all__ = ["BLOCK_PREFIXES", "CLINICAL_PREFIX", "FEATURE_SETS", "FeatureSet",
           "available_blocks", "block_columns", "clinical_matrix"]


def block_columns(columns: pd.Index | list[str], block: str) -> list[str]:
    """Columns of ``block`` (by prefix), in table order."""
    prefix = BLOCK_PREFIXES[block]
    return [c for c in columns if str(c).startswith(prefix)]


def available_blocks(columns: pd.Index | list[str]) -> list[str]:
    """Blocks that have at least one column in a feature table."""
    return [b for b in BLOCK_PREFIXES if block_columns(columns, b)]


_POSITIVE = {"positive": 1.0, "negative": 0.0}


def clinical_matrix(cohort: pd.DataFrame) -> pd.DataFrame:
    """Numeric ``clin__`` design matrix from a cohort table (index ``patient_id``).

    Receptors are 1 (positive) / 0 (negative) / NaN (indeterminate or unknown); subtype is
    one-hot against HR+/HER2−; laterality is 1 for right; race is one-hot against Caucasian
    (African American, Asian, other). Missing stays NaN for the pipelines' median imputation.
    """
    df = cohort.set_index("patient_id")
    out = pd.DataFrame(index=df.index)
    out["clin__age"] = pd.to_numeric(df.get("age"), errors="coerce")
    for col in ("er", "pgr", "hr", "her2"):
        if col in df:
            out[f"clin__{col}_pos"] = df[col].map(_POSITIVE).astype(float)
    if "hr_her2" in df:
        sub = df["hr_her2"]
        known = sub.notna()
        out["clin__subtype_her2pos"] = np.where(known, (sub == "HER2+").astype(float), np.nan)
        out["clin__subtype_tn"] = np.where(known, (sub == "triple negative").astype(float),
                                           np.nan)
    if "laterality" in df:
        lat = df["laterality"]
        out["clin__laterality_right"] = np.where(lat.notna(), (lat == "right").astype(float),
                                                 np.nan)
    if "race" in df:
        race = df["race"]
        known = race.notna()
        out["clin__race_african_american"] = np.where(known, (race == "African American")
                                                      .astype(float), np.nan)
        out["clin__race_asian"] = np.where(known, (race == "Asian").astype(float), np.nan)
        out["clin__race_other"] = np.where(
            known, (~race.isin(["Caucasian", "African American", "Asian"])).astype(float),
            np.nan)
    return out.dropna(axis=1, how="all")
