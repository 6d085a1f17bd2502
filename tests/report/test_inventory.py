"""feature_inventory: what a feature table holds, per block and radiomics group."""

import numpy as np
import pandas as pd
import pytest

from workbench.report.tables import feature_inventory


def table() -> pd.DataFrame:
    cols = ["rad__pre__original_shape_Elongation", "rad__pre__original_firstorder_Mean",
            "rad__early__wavelet-LLH_glcm_Contrast", "rad__early__wavelet-LLH_glcm_Idm",
            "kin__pe_mean", "dl_efficientnetb0__0", "dl_efficientnetb0__1", "other"]
    values = np.ones((3, len(cols)))
    values[0, 2] = values[1, 3] = values[2, 5] = np.nan
    return pd.DataFrame(values, columns=cols, index=["a", "b", "c"])


def test_counts_and_missing_values_per_group_in_column_order():
    out = feature_inventory(table())
    assert list(out.columns) == ["Block", "Phase", "Image type", "Class", "Features",
                                 "Missing values"]
    rows = [tuple(r) for r in out.itertuples(index=False)]
    assert rows == [("radiomics", "pre", "original", "shape", 1, 0),
                    ("radiomics", "pre", "original", "firstorder", 1, 0),
                    ("radiomics", "early", "wavelet-LLH", "glcm", 2, 2),
                    ("kinetic", "", "", "", 1, 0),
                    ("efficientnetb0", "", "", "", 2, 1),
                    ("other", "", "", "", 1, 0)]
    assert out["Features"].sum() == table().shape[1]


def test_coarser_groups():
    out = feature_inventory(table(), by=("Phase",))
    assert out.loc[out["Block"] == "radiomics", ["Phase", "Features"]].values.tolist() == [
        ["pre", 2], ["early", 2]]
    assert list(feature_inventory(table(), by=())["Block"]) == [
        "radiomics", "kinetic", "efficientnetb0", "other"]


def test_unknown_level_is_named():
    with pytest.raises(ValueError, match="'Network'"):
        feature_inventory(table(), by=("Network",))
