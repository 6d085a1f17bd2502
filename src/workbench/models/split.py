"""The stratified train/test split shared by Table 1 and every protocol."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from workbench.errors import CohortError


def stratified_split(patient_ids: pd.Series, labels: pd.Series, *, test_size: float = 0.3,
                     seed: int = 42) -> pd.Series:
    """Assign each labelled patient to ``"train"`` or ``"test"``, stratified on the label.

    Parameters
    ----------
    patient_ids, labels
        Aligned series; labels must be 0/1 without missing values.
    test_size
        Fraction of patients in the test split (the study: 0.3).
    seed
        Random state; the same ids, labels and seed always give the same split.

    Returns
    -------
    pandas.Series
        ``"train"`` / ``"test"`` indexed by patient id, in the input order.

    Raises
    ------
    CohortError
        When a class has fewer than 2 patients (no stratified split exists).
    """
    ids = pd.Series(patient_ids).astype(str).reset_index(drop=True)
    y = pd.Series(labels).reset_index(drop=True)
    if y.isna().any():
        raise CohortError("stratified_split needs labels for every patient; drop unlabelled "
                          "patients first", step="split")
    counts = y.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise CohortError(f"cannot stratify a split with class counts {counts.to_dict()}: "
                          "each class needs at least 2 patients", step="split")
    train_idx, test_idx = train_test_split(ids.index.to_numpy(), test_size=test_size,
                                           stratify=y.astype(int).to_numpy(),
                                           random_state=seed)
    split = pd.Series("train", index=ids.to_numpy(), name="split", dtype="object")
    split.iloc[test_idx] = "test"
    return split
