"""Kinetic features: PE / SER from un-z-scored intensities, FTV, SER classes, guards, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_extract import write_patient

from workbench.errors import ConfigError
from workbench.features.extract import FeatureError
from workbench.features.kinetic import (
    FEATURES,
    MIN_BASELINE_FRACTION,
    SER_CAP,
    KineticSettings,
    extract_kinetic,
    kinetic_features,
    kinetic_maps,
)


def test_maps_and_guards():
    pre = np.array([100.0, 100.0, 100.0, 100.0, 0.5, 100.0, 100.0])
    early = np.array([200.0, 200.0, 200.0, 200.0, 50.0, 100.0, 50.0])
    late = np.array([150.0, 200.0, 250.0, 100.0, 50.0, 100.0, 300.0])
    pe, ser, valid = kinetic_maps(pre, early, late, baseline_floor=1.0)
    np.testing.assert_allclose(pe[:4], [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(ser[:3], [2.0, 1.0, 100 / 150])
    assert ser[3] == SER_CAP  # late back at baseline after early enhancement: full washout
    assert not valid[4] and np.isnan(pe[4]) and np.isnan(ser[4])  # no baseline
    assert np.isnan(ser[5])  # no enhancement at all: SER undefined
    assert ser[6] == 0.0  # early below baseline: clipped, not negative


def test_features_ftv_and_ser_classes():
    n = 100
    pre = np.full(n, 100.0)
    early = np.full(n, 200.0)  # PE = 1.0 everywhere ...
    early[:20] = 150.0  # ... except 20 voxels at PE 0.5, below the 0.7 FTV threshold
    late = np.full(n, 150.0)  # SER 2 (washout)
    late[20:40] = 200.0  # SER 1.0 (plateau)
    late[40:50] = 250.0  # SER 0.667 (persistent)
    roi = np.ones(n, bool)
    f = kinetic_features(pre, early, late, roi, voxel_ml=0.001, baseline_floor=1.0)
    assert list(f) == list(FEATURES)
    assert f["tumour_ml"] == pytest.approx(0.1) and f["ftv_ml"] == pytest.approx(0.08)
    assert f["ftv_fraction"] == pytest.approx(0.8)
    assert f["plateau_fraction"] == pytest.approx(20 / 80)
    assert f["persistent_fraction"] == pytest.approx(10 / 80)
    assert f["washout_fraction"] == pytest.approx(50 / 80)
    assert f["pe_median"] == pytest.approx(1.0) and f["pe_p10"] == pytest.approx(0.5)
    assert f["invalid_fraction"] == 0.0
    strict = kinetic_features(pre, early, late, roi, voxel_ml=0.001, baseline_floor=1.0,
                              settings=KineticSettings(pe_threshold=1.5))
    assert strict["ftv_ml"] == 0.0 and strict["washout_fraction"] == 0.0


def test_no_baseline_fails_and_flat_tumour_gives_nan_ser():
    roi = np.ones(4, bool)
    with pytest.raises(FeatureError, match="positive pre-contrast baseline"):
        kinetic_features(np.zeros(4), np.ones(4), np.ones(4), roi, voxel_ml=1e-3,
                         baseline_floor=1.0)
    flat = kinetic_features(np.full(4, 100.0), np.full(4, 100.0), np.full(4, 100.0), roi,
                            voxel_ml=1e-3, baseline_floor=1.0)
    assert math.isnan(flat["ser_mean"]) and flat["ftv_ml"] == 0.0 and flat["pe_mean"] == 0.0


def test_settings_validation():
    with pytest.raises(ConfigError, match="pe_threshold"):
        KineticSettings(pe_threshold=-1)
    with pytest.raises(ConfigError, match="ser_persistent"):
        KineticSettings(ser_washout=0.8, ser_persistent=0.9)


def test_extract_undoes_the_zscore(tmp_path):
    """z-scored files + the recorded mean/std give back the acquired PE = 1.0, SER = 1.5."""
    raw = {"pre": (100.0, 100.0), "early": (105.0, 200.0), "late": (108.0, 166.6666667)}
    rows = [write_patient(tmp_path, f"K{i}", seed=i, radius=4.0, raw=raw) for i in range(2)]
    table = pd.DataFrame(rows)
    result = extract_kinetic(table, tmp_path / "store", progress=False)
    assert result.errors.empty
    f = result.features
    assert list(f.columns) == [f"kin__{n}" for n in FEATURES]
    # tumour voxels carry N(0, 4) noise on a baseline of 100: PE is 1 +- ~0.06
    assert f["kin__pe_median"].to_numpy() == pytest.approx([1.0, 1.0], abs=0.03)
    assert f["kin__ser_median"].to_numpy() == pytest.approx([1.5, 1.5], abs=0.05)
    n_voxels = table["mask_voxels"].to_numpy()
    np.testing.assert_allclose(f["kin__tumour_ml"], n_voxels / 1000.0)
    assert (f["kin__ftv_fraction"] == 1.0).all() and (f["kin__washout_fraction"] > 0.9).all()


def test_zscore_from_done_json_and_missing_stats(tmp_path):
    row = write_patient(tmp_path, "D", radius=4.0)
    bare = pd.DataFrame([row]).drop(columns=["zscore_mean", "zscore_std"])
    result = extract_kinetic(bare, tmp_path / "s1", progress=False)
    assert result.features.empty and result.errors.loc[0, "step"] == "kinetic"
    assert "zscore_mean" in result.errors.loc[0, "message"]
    done = {"record": {"zscore_mean": row["zscore_mean"], "zscore_std": row["zscore_std"]}}
    (tmp_path / "D" / "done.json").write_text(json.dumps(done))
    from_done = extract_kinetic(bare, tmp_path / "s2", progress=False)
    from_table = extract_kinetic(pd.DataFrame([row]), tmp_path / "s3", progress=False)
    pd.testing.assert_frame_equal(from_done.features, from_table.features, check_exact=True)


def test_bad_patients_are_reported_and_others_complete(tmp_path):
    rows = [write_patient(tmp_path, "ok", seed=1),
            write_patient(tmp_path, "empty", mask="empty"),
            write_patient(tmp_path, "nan", nan_phase="late"),
            write_patient(tmp_path, "no_late"),
            write_patient(tmp_path, "one", mask="one")]
    table = pd.DataFrame(rows)
    table.loc[3, "image_late"] = None
    result = extract_kinetic(table, tmp_path / "store", progress=False)
    assert list(result.features.index) == ["ok", "one"]  # one voxel: kinetics are defined
    errors = result.errors.set_index("patient_id")
    assert "empty" in errors.loc["empty", "message"]
    assert errors.loc["empty", "file"] == rows[1]["mask"]
    assert errors.loc["nan", "step"] == "read" and "NaN" in errors.loc["nan", "message"]
    assert "phase 'late'" in errors.loc["no_late", "message"]
    assert MIN_BASELINE_FRACTION > 0
