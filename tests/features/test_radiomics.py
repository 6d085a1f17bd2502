"""Radiomics stage: the shipped study config gives 1,702 features, values equal plain
PyRadiomics, the parameter file is schema-checked, bad inputs become errors-table rows."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_extract import small_params, write_patient

from workbench.errors import ConfigError
from workbench.features.radiomics import PREFIX, extract_radiomics, load_params

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "radiomics" / "paper.yaml"
CLASS_COUNTS = {"firstorder": 18, "glcm": 24, "glrlm": 16, "glszm": 16, "gldm": 14, "ngtdm": 5}
IMAGE_TYPES = ["original"] + [f"wavelet-{b}" for b in
                              ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")]


# --------------------------------------------------------------------------- parameter file
def test_shipped_paper_params_validate():
    params = load_params(PAPER)
    assert params.version == 1
    assert params.setting.binWidth == 0.1 and params.setting.normalize is False
    assert set(params.imageType) == {"Original", "Wavelet"}
    assert params.pyradiomics("shape")["featureClass"] == {"shape": None}
    assert "binWidth" not in params.pyradiomics("shape")["setting"]


@pytest.mark.parametrize("text, expected", [
    ("setting:\n  binWidth: 0.1\n  binwidth: 0.2\n", "unknown key 'setting.binwidth'"),
    ("setting:\n  binWidth: 0.1\nextra_section: 1\n", "unknown key 'extra_section'"),
    ("setting:\n  binWidth: -1\n", "key 'setting.binWidth'"),
    ("setting:\n  binWidth: 0.1\n  wavelet: nope\n", "not a PyWavelets wavelet"),
    ("setting:\n  label: 1\n", "default binWidth 25 puts a z-scored tumour into a single bin"),
])
def test_bad_params_name_key_and_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\n" + text + "imageType:\n  Original: {}\n"
                    "featureClass:\n  firstorder:\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_bad_feature_and_image_type_names(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nsetting:\n  binWidth: 0.1\nimageType:\n  Wavelets: {}\n"
                    "featureClass:\n  glcm: [Contrast, Contrastt]\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert "imageType.Wavelets" in str(info.value) and "Contrastt" in str(info.value)
    path.write_text("setting:\n  binWidth: 0.1\n")
    with pytest.raises(ConfigError, match="missing key 'version'"):
        load_params(path)


# --------------------------------------------------------------------------- the study count
def test_paper_config_gives_1702_features(tmp_path, caplog):
    table = pd.DataFrame([write_patient(tmp_path / "pre", "P0", radius=5.0)])
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        result = extract_radiomics(table, tmp_path / "store", params_path=PAPER, progress=False)
    seconds = time.perf_counter() - start
    assert result.errors.empty, result.errors.to_dict("records")
    feats = result.features
    assert feats.shape == (1, 1702), feats.shape
    assert feats.index.name == "patient_id" and list(feats.index) == ["P0"]
    assert (feats.dtypes == "float64").all() and np.isfinite(feats.to_numpy()).all()
    assert not [r for r in caplog.records if "Sum Average" in r.getMessage()]
    for phase in ("pre", "early"):
        cols = [c for c in feats.columns if c.startswith(f"{PREFIX}__{phase}__")]
        assert len(cols) == 851
        assert sum("_shape_" in c for c in cols) == 14
        for image_type in IMAGE_TYPES:
            for cls, n in CLASS_COUNTS.items():
                pattern = re.compile(rf"^rad__{phase}__{image_type}_{cls}_\w+$")
                assert sum(bool(pattern.match(c)) for c in cols) == n, (phase, image_type, cls)
    for name in ("rad__pre__original_firstorder_Mean", "rad__early__wavelet-LLH_glcm_Correlation",
                 "rad__pre__original_shape_Elongation"):
        assert name in feats.columns
    shape_pre = feats.filter(like="rad__pre__original_shape_").to_numpy()
    shape_early = feats.filter(like="rad__early__original_shape_").to_numpy()
    np.testing.assert_array_equal(shape_pre, shape_early)  # documented duplicates
    # early enhancement is visible: the tumour's mean z-score rises after contrast
    assert feats.at["P0", "rad__early__original_firstorder_Mean"] > \
        feats.at["P0", "rad__pre__original_firstorder_Mean"] + 1
    logging.getLogger(__name__).info("1,702 features of one tiny patient in %.1f s", seconds)


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
def test_values_equal_plain_pyradiomics(tmp_path):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    params_path = small_params(tmp_path / "small.yaml",
                               classes=("shape", "firstorder", "glcm", "glszm"))
    row = write_patient(tmp_path / "pre", "P0", seed=3, radius=4.5)
    ours = extract_radiomics(pd.DataFrame([row]), tmp_path / "store", params_path=params_path,
                             progress=False).features
    plain = RadiomicsFeatureExtractor(load_params(params_path).pyradiomics())
    n = 0
    for phase in ("pre", "early"):
        ref = plain.execute(row[f"image_{phase}"], row["mask"])
        for key, value in ref.items():
            if key.startswith("diagnostics_"):
                continue
            assert ours.at["P0", f"rad__{phase}__{key}"] == float(value), key
            n += 1
    assert n == ours.shape[1]


# --------------------------------------------------------------------------- bad inputs
def test_bad_inputs_become_error_rows_and_others_complete(tmp_path):
    root = tmp_path / "pre"
    rows = [write_patient(root, "good1", seed=1),
            write_patient(root, "empty", mask="empty"),
            write_patient(root, "one_voxel", mask="one"),
            write_patient(root, "border", mask="border"),
            write_patient(root, "nan", nan_phase="early"),
            write_patient(root, "no_early"),
            write_patient(root, "gone_early"),
            write_patient(root, "tiny_roi", mask="tiny"),
            write_patient(root, "good2", seed=2)]
    table = pd.DataFrame(rows)
    table.loc[table["patient_id"] == "no_early", "image_early"] = None
    gone = table.loc[table["patient_id"] == "gone_early", "image_early"].item()
    Path(gone).unlink()
    # level 3 coif1 spans 16 voxels: fine for the 10 mm tumours (box 20), not for a 2-voxel ROI
    params = small_params(tmp_path / "level3.yaml", level=3, classes=("shape", "firstorder"))
    result = extract_radiomics(table, tmp_path / "store", params_path=params, progress=False)

    assert list(result.features.index) == ["good1", "good2"]
    errors = result.errors.set_index("patient_id")
    assert set(errors.index) == {"empty", "one_voxel", "border", "nan", "no_early", "gone_early",
                                 "tiny_roi"}
    assert not errors.index.duplicated().any(), errors  # one row each, not one per unit

    def row(pid: str) -> pd.Series:
        return errors.loc[pid]

    def mask_of(pid: str) -> str:
        return table.loc[table["patient_id"] == pid, "mask"].item()

    assert row("empty")["step"] == "mask" and "empty" in row("empty")["message"]
    assert row("empty")["file"] == mask_of("empty")
    assert "single voxel" in row("one_voxel")["message"]
    assert "touches the image border (x min face)" in row("border")["message"]
    assert row("nan")["step"] == "read" and "NaN" in row("nan")["message"]
    assert row("nan")["file"].endswith("nan/image_early.nii.gz")
    assert row("no_early")["step"] == "load" and "phase 'early'" in row("no_early")["message"]
    assert row("gone_early")["file"] == gone and "not found" in row("gone_early")["message"]
    tiny = row("tiny_roi")
    assert tiny["step"] == "wavelet" and tiny["file"] == mask_of("tiny_roi")
    assert "coif1 at level 3 spans 16 voxels" in tiny["message"]
    assert "would not fail" in tiny["message"]


def test_mask_on_border_warn_accepts(tmp_path, caplog):
    params = small_params(tmp_path / "p.yaml", classes=("shape", "firstorder"),
                          wavelet_classes=False)
    params.write_text(params.read_text() + "checks:\n  mask_on_border: warn\n")
    table = pd.DataFrame([write_patient(tmp_path / "pre", "B", mask="border")])
    with caplog.at_level(logging.WARNING):
        result = extract_radiomics(table, tmp_path / "store", params_path=params,
                                   progress=False)
    assert list(result.features.index) == ["B"] and result.errors.empty
    assert any("touches the image border" in r.getMessage() for r in caplog.records)
