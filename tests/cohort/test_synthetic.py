"""The embedded synthetic cohort: files and geometry, determinism, physics, latent pCR law."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.metrics import roc_auc_score

from workbench.cohort.synth_anatomy import TISSUE_LABELS
from workbench.cohort.synth_kinetics import parker_blood_aif, tofts_concentration
from workbench.cohort.synth_latent import calibration, expected_auc
from workbench.cohort.synth_settings import SUBTYPES, SynthSettings
from workbench.cohort.synthetic import (
    MANIFEST_COLUMNS,
    generate_cohort,
    latent_sample,
    synthesize_patient,
)
from workbench.cohort.table import (
    HR_HER2_VALUES,
    LATERALITY_VALUES,
    STATUS_VALUES,
    validate_cohort,
)
from workbench.errors import ConfigError
from workbench.imaging.geometry import geometry_mismatch

# Small tumours keep the test volumes small; everything else is the default model.
SMALL = SynthSettings(ld_median_mm=26.0, ld_range_mm=(20.0, 35.0), fov_mm=(120.0, 130.0),
                      min_slab_mm=30.0)
IMAGES = ("pre", "early", "late", "mask")


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synth")
    return {
        "a": generate_cohort(root / "a", n=4, seed=7, jobs=1, progress=False, settings=SMALL),
        "b": generate_cohort(root / "b", n=4, seed=7, jobs=2, progress=False, settings=SMALL),
        "c": generate_cohort(root / "c", n=3, seed=7, jobs=1, progress=False, settings=SMALL),
    }


def _arrays(manifest: Path, pid: str) -> dict[str, np.ndarray]:
    folder = manifest.parent / "images" / pid
    return {k: sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{k}.nii.gz"))) for k in IMAGES}


def test_manifest_columns_vocabularies_and_files(cohorts):
    manifest = cohorts["a"]
    df = pd.read_csv(manifest)
    assert list(df.columns) == MANIFEST_COLUMNS
    assert df["patient_id"].tolist() == ["SYN0001", "SYN0002", "SYN0003", "SYN0004"]
    assert set(df["pcr"]) <= {0, 1}
    for col in ("er", "pgr", "hr", "her2"):
        assert set(df[col]) <= set(STATUS_VALUES)
    assert set(df["hr_her2"]) <= set(HR_HER2_VALUES)
    assert set(df["laterality"]) <= set(LATERALITY_VALUES)
    assert df["race"].map(lambda r: isinstance(r, str) and r[0].isupper()).all()
    assert df["mri_ld_mm"].between(10, 60).all()
    for col in ("image_pre", "image_early", "image_late", "mask"):
        assert all(not Path(p).is_absolute() and p.startswith("images/") for p in df[col])
        assert all((manifest.parent / p).is_file() for p in df[col])
    resolved = df.copy()
    for col in ("image_pre", "image_early", "image_late", "mask"):
        resolved[col] = [str(manifest.parent / p) for p in df[col]]
    table = validate_cohort(resolved, name="synthetic", source=manifest)
    assert table.problems == []
    assert len(table.imaging_ready()) == 4


def test_phases_and_mask_share_a_realistic_grid(cohorts):
    df = pd.read_csv(cohorts["a"])
    for _, row in df.iterrows():
        columns = ("image_pre", "image_early", "image_late", "mask")
        images = {k: sitk.ReadImage(str(cohorts["a"].parent / row[c]))
                  for k, c in zip(IMAGES, columns, strict=True)}
        for name in ("early", "late", "mask"):
            assert geometry_mismatch(images["pre"], images[name]) is None, name
        sx, sy, sz = images["pre"].GetSpacing()
        assert SMALL.inplane_spacing_mm[0] <= sx <= SMALL.inplane_spacing_mm[1]
        assert sx == sy
        assert SMALL.slice_thickness_mm[0] <= sz <= SMALL.slice_thickness_mm[1]
        assert images["pre"].GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)
        assert np.abs(images["pre"].GetOrigin()).min() > 0
        assert images["pre"].GetPixelID() == sitk.sitkInt16
        assert images["mask"].GetPixelID() == sitk.sitkUInt8
        mask = sitk.GetArrayFromImage(images["mask"])
        assert set(np.unique(mask)) == {0, 1}
        assert np.prod(mask.shape) <= 1_500_000


def test_same_seed_same_arrays_whatever_jobs(cohorts):
    a, b = cohorts["a"], cohorts["b"]
    for pid in ("SYN0001", "SYN0004"):
        xa, xb = _arrays(a, pid), _arrays(b, pid)
        for name in IMAGES:
            np.testing.assert_array_equal(xa[name], xb[name], err_msg=f"{pid} {name}")
    assert a.read_text() == b.read_text()
    assert (a.parent / "truth.csv").read_text() == (b.parent / "truth.csv").read_text()


def test_patient_does_not_depend_on_cohort_size(cohorts):
    xa, xc = _arrays(cohorts["a"], "SYN0002"), _arrays(cohorts["c"], "SYN0002")
    for name in IMAGES:
        np.testing.assert_array_equal(xa[name], xc[name], err_msg=name)
    rows_a = pd.read_csv(cohorts["a"]).iloc[:3]
    pd.testing.assert_frame_equal(rows_a, pd.read_csv(cohorts["c"]))


def test_other_seed_other_patient():
    one, two = synthesize_patient(7, 0, SMALL), synthesize_patient(8, 0, SMALL)
    assert one.truth != two.truth


def test_summary_and_truth(cohorts):
    summary = json.loads((cohorts["a"].parent / "synth_summary.json").read_text())
    for key in ("n", "seed", "settings", "pcr_rate", "pcr_rate_by_subtype", "subtype_mix",
                "oracle_auc_realised", "oracle_auc_population", "generation_seconds",
                "versions"):
        assert key in summary, key
    assert summary["n"] == 4 and summary["seed"] == 7
    assert {"numpy", "SimpleITK"} <= set(summary["versions"])
    assert summary["settings"]["ld_median_mm"] == 26.0
    assert 0.78 <= summary["oracle_auc_population"] <= 0.87
    truth = pd.read_csv(cohorts["a"].parent / "truth.csv")
    for col in ("patient_id", "true_probability", "pcr", "subtype", "ktrans_mean", "ve_mean",
                "heterogeneity", "necrosis_fraction", "rim_enhancement", "irregularity",
                "longest_diameter_mm", "volume_ml", "spacing_z"):
        assert col in truth.columns, col
    manifest = pd.read_csv(cohorts["a"])
    assert truth["pcr"].tolist() == manifest["pcr"].tolist()
    assert truth["true_probability"].between(0, 1).all()
    # the manifest's diameter is the mask's, plus a few mm of measurement noise
    assert (truth["mri_ld_mm"] - truth["measured_ld_mm"]).abs().max() < 10
    assert (truth["measured_ld_mm"] / truth["longest_diameter_mm"]).between(0.8, 1.15).all()


def test_tumour_enhances_and_necrotic_core_does_not():
    settings = dataclasses.replace(SMALL, necrosis_probability_by_subtype=(0.95, 0.95, 0.95),
                                   necrosis_fraction_range=(0.2, 0.3))
    patient = next(p for p in (synthesize_patient(11, i, settings) for i in range(10))
                   if p.truth["necrosis_fraction"] > 0)
    pre, early = (patient.phases[k].astype(float) for k in ("pre", "early"))
    tumour = patient.mask.astype(bool)
    assert early[tumour].mean() > 1.3 * pre[tumour].mean()
    core = patient.labels == TISSUE_LABELS["necrosis"]
    rim = patient.labels == TISSUE_LABELS["tumour"]
    assert core.sum() > 10 and rim.sum() > 10
    enhancement = (early - pre) / np.maximum(pre, 1.0)
    assert enhancement[core].mean() < 0.5 * enhancement[rim].mean()


def test_bias_field_raises_fat_variation():
    flat = dataclasses.replace(SMALL, bias_amplitude=(0.0, 0.0))
    biased = dataclasses.replace(SMALL, bias_amplitude=(0.35, 0.35))
    with_bias, without = synthesize_patient(3, 1, biased), synthesize_patient(3, 1, flat)
    np.testing.assert_array_equal(with_bias.mask, without.mask)  # only the bias differs
    fat = without.labels == TISSUE_LABELS["fat"]
    assert fat.sum() > 10_000

    def cov(patient):
        values = patient.phases["pre"][fat].astype(float)
        return values.std() / values.mean()

    assert cov(with_bias) > 1.15 * cov(without)


def test_latent_model_matches_ispy1_targets():
    settings = SynthSettings()
    sample = latent_sample(200_000, seed=123, settings=settings)
    pcr = np.random.default_rng(5).random(len(sample)) < sample["true_probability"]
    assert abs(pcr.mean() - 0.27) <= 0.03
    for name, target in zip(SUBTYPES, (0.09, 0.45, 0.35), strict=True):
        in_subtype = (sample["hr_her2"] == name).to_numpy()
        assert abs(pcr[in_subtype].mean() - target) <= 0.05, name
    for name, share in zip(SUBTYPES, (0.45, 0.30, 0.25), strict=True):
        assert abs((sample["hr_her2"] == name).mean() - share) < 0.01, name
    assert 0.78 <= calibration(settings).population_auc <= 0.87
    assert 0.78 <= roc_auc_score(pcr, sample["true_probability"]) <= 0.87
    assert abs(sample["age"].mean() - 48) < 0.5
    assert abs((sample["race"] == "Caucasian").mean() - 0.75) < 0.01
    # receptor status is consistent with the subtype
    hr_pos = (sample["er"] == "positive") | (sample["pgr"] == "positive")
    assert ((sample["hr"] == "positive") == hr_pos).all()
    assert ((sample["her2"] == "positive") == (sample["hr_her2"] == "HER2+")).all()
    tn = sample[sample["hr_her2"] == "triple negative"]
    assert (tn[["er", "pgr", "her2"]] == "negative").all().all()
    assert sample["longest_diameter_mm"].between(20, 100).all()
    assert 38 <= sample["longest_diameter_mm"].median() <= 46


def test_expected_auc_is_the_mean_auc_of_bernoulli_labels():
    p = np.random.default_rng(0).beta(2, 5, 200_000)
    labels = np.random.default_rng(1).random(p.size) < p
    assert abs(expected_auc(p) - roc_auc_score(labels, p)) < 0.005


def test_parker_aif_and_tofts_behave():
    t = np.linspace(0, 8, 4001)
    cb = parker_blood_aif(t)
    assert 0.1 < t[np.argmax(cb)] < 0.25 and 5 < cb.max() < 7
    # fast exchange: tissue follows ve * Cp; slow leakage stays far below it
    cp_late = float(parker_blood_aif(np.array([7.5]))[0]) / (1 - 0.42)
    fast = float(tofts_concentration(5.0, 0.4, 7.5))
    assert abs(fast - 0.4 * cp_late) / (0.4 * cp_late) < 0.1
    # slow leakage (kep -> 0): Ct(T) ~ Ktrans * integral of Cp, still rising at 7.5 min
    tt = np.linspace(0, 2.5, 5001)
    area = np.trapezoid(parker_blood_aif(tt) / (1 - 0.42), tt)
    slow = float(tofts_concentration(0.001, 0.4, 2.5))
    assert abs(slow - 0.001 * area) / (0.001 * area) < 0.02
    assert float(tofts_concentration(0.01, 0.4, 7.5)) > float(tofts_concentration(0.01, 0.4, 2.5))
    assert float(tofts_concentration(0.0, 0.4, 2.5)) == 0.0


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="n must be"):
        generate_cohort("/nonexistent-never-created", n=0, progress=False)
    with pytest.raises(ConfigError, match="inplane_spacing_mm"):
        SynthSettings(inplane_spacing_mm=(0.9, 0.7))
    with pytest.raises(ConfigError, match="subtype_mix"):
        SynthSettings(subtype_mix=(0.5, 0.5, 0.5))
