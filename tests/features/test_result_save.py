"""FeatureResult.save: an unchanged feature table is not rewritten; any difference is."""

import numpy as np
import pandas as pd
import pytest

from workbench.features.extract import FeatureResult, holds_table


def _result(values: np.ndarray, attrs: dict | None = None) -> FeatureResult:
    features = pd.DataFrame(values, columns=[f"rad__f{j}" for j in range(values.shape[1])],
                            index=pd.Index([f"P{i}" for i in range(len(values))],
                                           name="patient_id"))
    features.attrs.update(attrs or {})
    errors = pd.DataFrame(columns=["patient_id", "step", "file", "message"])
    return FeatureResult(features=features, errors=errors, n_cached=0, n_computed=0,
                         seconds=0.0)


def _identity(path):
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


VALUES = np.arange(12, dtype=float).reshape(4, 3) - 5.0


def test_an_identical_table_is_left_as_it_is(tmp_path):
    attrs = {"weights": {"kind": "random", "phases": ("pre", "early")}}  # a tuple: JSON list
    path = _result(VALUES, attrs).save(tmp_path / "radiomics.parquet")
    before = _identity(path)
    again = _result(VALUES.copy(), attrs)
    assert holds_table(path, again.features)
    again.save(path)
    assert _identity(path) == before
    pd.testing.assert_frame_equal(pd.read_parquet(path), again.features)


@pytest.mark.parametrize("change", ["value", "negative zero", "nan", "column name", "patient",
                                    "attrs", "file corrupt"])
def test_any_difference_rewrites_it(tmp_path, change):
    path = _result(VALUES, {"weights": {"kind": "random"}}).save(tmp_path / "radiomics.parquet")
    values, attrs = VALUES.copy(), {"weights": {"kind": "random"}}
    new = _result(values, attrs)
    if change == "value":
        new.features.iloc[1, 2] += 1e-12
    elif change == "negative zero":  # equal as numbers, another bit pattern
        new.features.iloc[0, 0] = 0.0
        old = _result(VALUES, attrs)
        old.features.iloc[0, 0] = -0.0
        old.save(path)
    elif change == "nan":
        new.features.iloc[2, 1] = np.nan
    elif change == "column name":
        new.features = new.features.rename(columns={"rad__f0": "rad__g0"})
    elif change == "patient":
        new.features = new.features.rename(index={"P3": "P9"})
    elif change == "attrs":
        new.features.attrs["weights"] = {"kind": "imagenet"}
    else:
        path.write_bytes(path.read_bytes()[:-40])
    assert not holds_table(path, new.features)
    new.save(path)
    assert holds_table(path, new.features)
    saved = pd.read_parquet(path)
    assert saved.to_numpy().tobytes() == new.features.to_numpy().tobytes()
    assert list(saved.columns) == list(new.features.columns)
    assert list(saved.index) == list(new.features.index)
    assert saved.attrs == new.features.attrs
