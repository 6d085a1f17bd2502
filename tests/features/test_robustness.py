"""ICC(3,1) per feature: the textbook example, limits, the interval, the vectorised table."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from workbench.features.robustness import (
    NOTE_CONSTANT,
    NOTE_MISSING,
    NOTE_NO_PATIENT_SPREAD,
    RobustnessError,
    feature_family,
    icc_3_1,
    icc_3_1_ci,
    icc_table,
    robust_counts,
)

#: Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6],
                          [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)


def _copies(values: np.ndarray, names: list[str]) -> dict[str, pd.DataFrame]:
    """(n, k, p) array -> copy name -> frame (index patient_id, columns features)."""
    n, k, p = values.shape
    index = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    copy_names = ["original"] + [f"pert{j}" for j in range(1, k)]
    return {c: pd.DataFrame(values[:, j, :], index=index, columns=names)
            for j, c in enumerate(copy_names)}


def test_shrout_fleiss_table_2():
    assert round(icc_3_1(SHROUT_FLEISS), 2) == 0.71
    assert icc_3_1(SHROUT_FLEISS) == pytest.approx(0.7148407, abs=1e-6)
    assert round(icc_3_1(SHROUT_FLEISS), 3) == 0.715
    res = icc_3_1_ci(SHROUT_FLEISS)
    # the published interval of this example (e.g. pingouin's ICC3 row: [0.34, 0.95])
    assert (round(res.low, 2), round(res.high, 2)) == (0.34, 0.95)
    assert res.low < res.icc < res.high


def test_a_perfectly_reproduced_feature_gives_1():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    res = icc_3_1_ci(np.column_stack([x] * 4))
    assert res.icc == pytest.approx(1.0)
    assert res.low == pytest.approx(1.0) and res.high == pytest.approx(1.0)
    # consistency: a shift common to all patients in one copy still gives 1
    assert icc_3_1(np.column_stack([x, x + 5.0, x, x - 1.0])) == pytest.approx(1.0)


def test_a_feature_replaced_by_noise_in_each_copy_gives_about_0():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(2000, 4))
    assert abs(icc_3_1(values)) < 0.05


@pytest.mark.parametrize("seed", range(5))
def test_the_interval_contains_the_estimate(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(25, 1))
    res = icc_3_1_ci(truth + 0.5 * rng.normal(size=(25, 3)))
    assert res.low <= res.icc <= res.high
    wider = icc_3_1_ci(truth + 0.5 * rng.normal(size=(25, 3)), confidence=0.99)
    narrower = icc_3_1_ci(truth + 0.5 * rng.normal(size=(25, 3)), confidence=0.5)
    assert wider.high - wider.low > narrower.high - narrower.low


def test_bad_inputs_are_refused():
    with pytest.raises(RobustnessError, match="k >= 2, got shape \\(6, 1\\)"):
        icc_3_1(SHROUT_FLEISS[:, :1])
    with pytest.raises(RobustnessError, match="confidence must be in \\(0, 1\\), got 1.5"):
        icc_3_1_ci(SHROUT_FLEISS, confidence=1.5)
    with pytest.raises(RobustnessError, match="at least 2 copies"):
        icc_table({"original": pd.DataFrame({"a": [1.0, 2.0]})})


def test_the_vectorised_table_equals_the_scalar_function_per_feature():
    rng = np.random.default_rng(2)
    n, k, p = 12, 4, 9
    truth = rng.normal(size=(n, 1, p))
    values = truth + rng.normal(size=(n, k, p)) * np.linspace(0.05, 3, p)
    values[3, 2, 4] = np.nan  # one missing value: that patient leaves feature 4 only
    names = [f"f{j}" for j in range(p)]
    table = icc_table(_copies(values, names))
    assert list(table.columns) == ["feature", "icc", "icc_low", "icc_high", "n_patients",
                                   "n_copies", "note"]
    assert table["feature"].tolist() == names
    for j in range(p):
        res = icc_3_1_ci(values[:, :, j])
        row = table.iloc[j]
        assert row["icc"] == pytest.approx(res.icc, abs=1e-12)
        assert row["icc_low"] == pytest.approx(res.low, abs=1e-12)
        assert row["icc_high"] == pytest.approx(res.high, abs=1e-12)
        assert row["n_copies"] == k
    assert table["n_patients"].tolist() == [n] * 4 + [n - 1] + [n] * 4
    assert table.loc[4, "note"] == "1 patient(s) with missing values left out"
    assert icc_3_1(values[:, :, 4]) == pytest.approx(icc_3_1(np.delete(values[:, :, 4], 3, 0)))
    # more noise, less reproducible
    assert table["icc"].iloc[0] > 0.9 > table["icc"].iloc[-1]


def test_nan_iccs_say_why():
    n = 10
    x = np.arange(n, dtype=float)
    values = np.stack([
        np.column_stack([np.full(n, 2.0)] * 3),               # constant
        np.column_stack([np.zeros(n), np.ones(n), np.full(n, 2.0)]),  # differs only by copy
        np.column_stack([x, x + 0.1, np.full(n, np.nan)]),    # missing in one copy
        np.column_stack([x, x + 0.1, x - 0.1]),               # fine
    ], axis=2)
    table = icc_table(_copies(values, ["const", "by_copy", "missing", "ok"])).set_index("feature")
    assert table.loc["const", "note"] == NOTE_CONSTANT
    assert table.loc["by_copy", "note"] == NOTE_NO_PATIENT_SPREAD
    assert table.loc["missing", "note"] == NOTE_MISSING
    assert table.loc["missing", "n_patients"] == 0
    undefined = table.loc[["const", "by_copy", "missing"], ["icc", "icc_low", "icc_high"]]
    assert undefined.isna().all().all()
    assert table.loc["ok", "note"] == "" and table.loc["ok", "icc"] == pytest.approx(1.0)
    assert np.isnan(icc_3_1(values[:, :, 0]))


def test_only_shared_patients_and_features_are_used():
    rng = np.random.default_rng(3)
    copies = _copies(rng.normal(size=(8, 3, 3)), ["a", "b", "c"])
    copies["pert1"] = copies["pert1"].drop(index="P005").drop(columns="b")
    copies["pert2"] = copies["pert2"].iloc[::-1]  # order does not matter: aligned by id
    copies["pert2"]["extra"] = 1.0
    table = icc_table(copies)
    assert table["feature"].tolist() == ["a", "c"]
    assert (table["n_patients"] == 7).all()
    keep = [p for p in copies["original"].index if p != "P005"]
    stacked = np.column_stack([copies[c].loc[keep, "a"] for c in copies])
    assert table.loc[0, "icc"] == pytest.approx(icc_3_1(stacked))


def test_the_table_is_fast_at_study_size():
    rng = np.random.default_rng(4)
    n, k, p = 40, 4, 1702
    values = rng.normal(size=(n, 1, p)) + 0.3 * rng.normal(size=(n, k, p))
    copies = _copies(values, [f"rad__early__original_firstorder_F{j}" for j in range(p)])
    start = time.perf_counter()
    table = icc_table(copies)
    elapsed = time.perf_counter() - start
    assert len(table) == p and table["icc"].notna().all()
    assert elapsed < 1.0, f"icc_table took {elapsed:.2f} s for {p} features"


def test_robust_counts_per_threshold_and_family():
    icc = pd.DataFrame({
        "feature": ["rad__early__original_firstorder_Mean",
                    "rad__early__wavelet-LLH_glcm_Correlation",
                    "rad__late__log-sigma-2-0-mm-3D_glcm_Contrast",
                    "rad__pre_sub__original_shape_Sphericity",
                    "kin__wash_in"],
        "icc": [0.95, 0.8, 0.5, np.nan, 0.92],
    })
    counts = robust_counts(icc)
    assert list(counts.columns) == ["threshold", "family", "robust", "total", "share"]
    at = counts.set_index(["threshold", "family"])
    assert at.loc[(0.75, "all"), ["robust", "total"]].tolist() == [3, 5]
    assert at.loc[(0.75, "glcm"), ["robust", "total"]].tolist() == [1, 2]
    assert at.loc[(0.9, "glcm"), "robust"] == 0
    assert at.loc[(0.9, "all"), "share"] == pytest.approx(2 / 5)
    assert at.loc[(0.75, "shape"), ["robust", "total"]].tolist() == [0, 1]  # NaN: not robust
    assert at.loc[(0.9, "other"), "robust"] == 1
    assert counts["family"].tolist()[:5] == ["all", "firstorder", "glcm", "other", "shape"]
    series = icc.set_index("feature")["icc"]
    pd.testing.assert_frame_equal(robust_counts(series), counts)
    assert feature_family("rad__early__original_firstorder_10Percentile") == "firstorder"
    assert feature_family("dl_resnet50__17") == "other"
    with pytest.raises(RobustnessError, match="thresholds must lie in \\[0, 1\\], got 75"):
        robust_counts(icc, thresholds=(75,))
