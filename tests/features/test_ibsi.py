"""IBSI-1 conformance of the PyRadiomics layer (digital phantom) and the IBSI naming layer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from workbench.data import ibsi1_dir, ibsi1_phantom, ibsi1_reference_values
from workbench.errors import ImageError, WorkbenchError
from workbench.features.ibsi import (
    SETTINGS,
    format_report,
    half_unit,
    is_match,
    load_reference,
    pyradiomics_params,
    pyradiomics_settings,
    run_ibsi,
)
from workbench.features.ibsi_naming import (
    CODE_TO_PYRADIOMICS,
    IBSI_BY_CODE,
    PYRADIOMICS_TO_IBSI,
    apply_ibsi_corrections,
    naming_from_reference,
    naming_table,
    to_ibsi,
)

# the IBSI-1 phantom and reference values shipped with the package (workbench.data)
IBSI = ibsi1_dir()
PHANTOM = IBSI / "digital_phantom"
REFERENCE = ibsi1_reference_values()

# PyRadiomics validates parameter dicts with pykwalify, which loads its schema functions via
# the deprecated importlib load_module(); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

# The six reference values plain PyRadiomics cannot reach: (IBSI code, PyRadiomics setting).
RAW_MISSES = {
    ("IPH6", "3D"), ("C3I7", "3D"),  # excess kurtosis (stat, ih)
    ("P9VJ", "3D"), ("7J51", "3D"),  # minor, least axis length
    ("6XV8", "3D"), ("6XV8", "2.5D"),  # NGLDM dependence count percentage
}


@pytest.fixture(scope="module")
def reference_csv() -> Path:
    return REFERENCE


@pytest.fixture(scope="module")
def report():
    return run_ibsi()  # defaults: the phantom and reference values shipped with the package


def test_shipped_phantom_paths():
    image, mask = ibsi1_phantom()
    assert (image, mask) == (PHANTOM / "image.nii.gz", PHANTOM / "mask.nii.gz")
    assert image.is_file() and mask.is_file() and REFERENCE == IBSI / "reference_values.csv"


def test_explicit_paths_still_work(tmp_path, report):
    import shutil

    phantom = tmp_path / "phantom"
    shutil.copytree(PHANTOM, phantom)
    reference = shutil.copy(REFERENCE, tmp_path / "ref.csv")
    explicit = run_ibsi(phantom, reference)
    assert (explicit.matched, explicit.total) == (report.matched, report.total) == (282, 282)
    assert str(phantom / "image.nii.gz") in explicit.provenance["inputs"]


def _expected_total(csv: Path) -> int:
    """N straight from the CSV, independently of the library's filter."""
    ref = pd.read_csv(csv)
    rows = ref[(ref["dataset"] == "digital_phantom") & ref["value"].notna()
               & ref["pyradiomics_feature"].notna()
               & ref["pyradiomics_setting"].isin(["3D", "3D_merged", "2.5D", "2.5D_merged"])]
    return len(rows)


# --- conformance on the real phantom -------------------------------------------------------

def test_all_reference_values_matched_through_ibsi_layer(report, reference_csv):
    n = _expected_total(reference_csv)
    assert n == 282 == report.total
    text = format_report(report)
    assert text.splitlines()[-1] == f"IBSI digital phantom: {n}/{n} matched"
    assert text.splitlines()[-1] == "IBSI digital phantom: 282/282 matched"
    assert report.rows["matched"].all()


def test_raw_pyradiomics_misses_exactly_the_three_known_conventions(report):
    rows = report.rows
    assert report.matched_raw == 276
    misses = set(zip(rows.loc[~rows["matched_raw"], "ibsi_code"],
                     rows.loc[~rows["matched_raw"], "setting"], strict=True))
    assert misses == RAW_MISSES
    # the report shows both counts, per family and in total
    all_line = next(li for li in format_report(report).splitlines() if li.startswith("all"))
    assert "276/282" in all_line and "282/282" in all_line
    per = report.per_family.set_index("family")
    assert per["total"].sum() == 282 and per["matched_raw"].sum() == 276
    assert per.loc["morph", "matched_raw"] == 12 and per.loc["ngl", "matched_raw"] == 30


def test_corrections_are_the_documented_ones(report):
    rows = report.rows.set_index(["ibsi_code", "setting"])
    kurt = rows.loc[("IPH6", "3D")]
    assert kurt["ibsi_value"] == pytest.approx(kurt["raw_value"] - 3)
    minor = rows.loc[("P9VJ", "3D")]
    assert minor["ibsi_value"] == pytest.approx(minor["raw_value"] * math.sqrt(74 / 73))
    assert math.isnan(rows.loc[("6XV8", "2.5D"), "raw_value"])
    assert rows.loc[("6XV8", "2.5D"), "ibsi_value"] == 1.0
    major = rows.loc[("TDIC", "3D")]  # same covariance, so the major axis is rescaled too
    assert major["ibsi_value"] == pytest.approx(major["raw_value"] * math.sqrt(74 / 73))
    changed = set(RAW_MISSES) | {("TDIC", "3D")}
    same = rows[[idx not in changed for idx in rows.index]]
    assert (same["raw_value"] == same["ibsi_value"]).all()


def test_matched_flags_follow_the_readme_rule(report):
    def rule(x: float, value: float, tol: float) -> bool:
        half = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 2)
        return math.isfinite(x) and abs(x - value) <= tol + half + 1e-12

    for col, flag in (("raw_value", "matched_raw"), ("ibsi_value", "matched")):
        expected = [rule(x, v, t) for x, v, t in
                    zip(report.rows[col], report.rows["reference"], report.rows["tolerance"],
                        strict=True)]
        assert report.rows[flag].tolist() == expected


def test_report_columns_and_provenance(report, tmp_path):
    assert {"family", "ibsi_name", "ibsi_code", "aggregation", "setting",
            "pyradiomics_feature", "reference", "tolerance", "raw_value", "ibsi_value",
            "matched_raw", "matched"} <= set(report.rows.columns)
    assert list(report.per_family.columns) == ["family", "matched_raw", "matched", "total"]
    data = json.loads(report.to_json(tmp_path / "ibsi.json"))
    assert data["summary"] == {"dataset": "digital_phantom", "total": 282, "matched": 282,
                               "matched_raw": 276}
    assert json.loads((tmp_path / "ibsi.json").read_text())["summary"]["matched"] == 282
    hashes = data["provenance"]["inputs"]
    assert hashes[str(PHANTOM / "image.nii.gz")].startswith("83773ac2a288")
    assert set(data["provenance"]["settings"]) == set(SETTINGS)
    report.to_csv(tmp_path / "ibsi.csv")
    assert len(pd.read_csv(tmp_path / "ibsi.csv")) == 282


# --- naming layer ----------------------------------------------------------------------------

def test_naming_codes_and_names_are_one_to_one():
    table = naming_table()
    assert table["ibsi_code"].is_unique
    assert not table.duplicated(["family", "ibsi_name"]).any()
    for key, feats in PYRADIOMICS_TO_IBSI.items():
        assert key.startswith("original_")
        assert len({f.ibsi_code for f in feats}) == len(feats)
        assert all(CODE_TO_PYRADIOMICS[f.ibsi_code] == key for f in feats)


def test_naming_agrees_with_reference_csv(reference_csv):
    from_csv = naming_from_reference(reference_csv)
    key = ["pyradiomics_feature", "family", "ibsi_name", "ibsi_code"]
    assert set(map(tuple, from_csv[key].values)) == set(map(tuple, naming_table()[key].values))
    ref = load_reference(reference_csv)
    for setting, rows in ref.groupby("pyradiomics_setting"):
        assert rows["ibsi_code"].is_unique, setting
        assert not rows.duplicated(["family", "ibsi_name"]).any(), setting
    for r in ref.itertuples():
        feat = IBSI_BY_CODE[r.ibsi_code]
        assert (feat.family, feat.ibsi_name) == (r.family, r.ibsi_name)


def test_to_ibsi_applies_the_three_corrections_without_touching_raw():
    raw = {
        "diagnostics_Mask-original_VoxelNum": 5,
        "original_firstorder_Kurtosis": 2.5,
        "original_firstorder_Mean": 3.0,
        "original_shape_MinorAxisLength": 4.0,
        "original_gldm_DependenceNonUniformity": 2.0,
        "original_gldm_DependenceNonUniformityNormalized": 0.5,  # N_s = 4 of N_v = 5
    }
    before = dict(raw)
    out = to_ibsi(raw)
    assert raw == before
    assert out["IPH6"] == out["C3I7"] == pytest.approx(-0.5)
    assert out["Q4LE"] == out["X6K6"] == 3.0
    assert out["P9VJ"] == pytest.approx(4.0 * math.sqrt(5 / 4))
    assert out["6XV8"] == pytest.approx(0.8)
    assert to_ibsi(raw, n_voxels=4)["6XV8"] == 1.0
    assert "original_gldm_DependencePercentage" in apply_ibsi_corrections(raw)


def test_to_ibsi_needs_a_voxel_count_for_axis_lengths():
    with pytest.raises(WorkbenchError, match="additionalInfo=True or pass n_voxels"):
        to_ibsi({"original_shape_LeastAxisLength": 3.0})
    assert to_ibsi({"original_firstorder_Kurtosis": 3.0}) == {"IPH6": 0.0, "C3I7": 0.0}


# --- match rule and settings ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "half"), [
    (556, 0.5), (1490, 5), (13.1, 0.05), (1, 0.005), (-0.355, 0.0005), (0.0257, 0.00005),
    (0.00963, 0.000005), (0, 0.0),
])
def test_half_unit_in_third_significant_digit(value, half):
    assert half_unit(value) == pytest.approx(half)


def test_match_rule():
    assert is_match(-0.35462, -0.355, 0)
    assert not is_match(2.6454, -0.355, 0)
    assert not is_match(9.2449, 9.31, 0.06)  # raw minor axis: 0.0651 > 0.06 + 0.005
    assert is_match(9.3080, 9.31, 0.06)
    assert is_match(1.005, 1, 0) and not is_match(1.0051, 1, 0)
    assert not is_match(float("nan"), 1, 0)


def test_pyradiomics_settings_for_the_four_aggregations():
    for setting in SETTINGS:
        s = pyradiomics_settings(setting)
        assert s["binWidth"] == 1 and s["distances"] == [1] and s["symmetricalGLCM"]
        assert s["gldm_a"] == 0 and s["voxelArrayShift"] == 0
        assert "interpolator" not in s and "resampledPixelSpacing" not in s
        assert "resegmentRange" not in s
        assert s.get("force2D", False) == setting.startswith("2.5D")
        assert (s.get("weightingNorm") == "no_weighting") == setting.endswith("merged")
    pyradiomics_settings("3D")["binWidth"] = 99
    assert pyradiomics_settings("3D")["binWidth"] == 1
    with pytest.raises(WorkbenchError, match="allowed: 3D, 3D_merged, 2.5D, 2.5D_merged"):
        pyradiomics_settings("2D")


def test_pyradiomics_params_validate_and_enable_deprecated_ibsi_features():
    from radiomics import featureextractor

    params = pyradiomics_params("3D")
    assert {"Compactness1", "Compactness2", "SphericalDisproportion"} <= set(
        params["featureClass"]["shape"])
    extractor = featureextractor.RadiomicsFeatureExtractor(params)  # schema-validated
    assert extractor.settings["binWidth"] == 1


def test_clear_errors_for_bad_inputs(tmp_path):
    with pytest.raises(WorkbenchError, match="reference_values.csv"):
        load_reference(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(WorkbenchError, match="lacks columns"):
        load_reference(bad)
    with pytest.raises(ImageError, match="image.nii.gz"):
        run_ibsi(tmp_path, REFERENCE)
