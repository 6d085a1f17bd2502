"""The synthetic cohort's sites: the external site's shifted knobs and the image-less path."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pandas as pd
import pytest

from workbench.cohort import load_cohort
from workbench.cohort.synth_latent import calibration
from workbench.cohort.synth_settings import (
    LAW_FIELDS,
    SITE_PREFIX,
    SITES,
    SynthSettings,
    site_settings,
    site_shift_summary,
)
from workbench.cohort.synthetic import (
    CLINICAL_MANIFEST_COLUMNS,
    MANIFEST_COLUMNS,
    generate_cohort,
)
from workbench.errors import CohortError, ConfigError

DEV, EXT = SITES["development"], SITES["external"]
# Every knob the external site moves (documented in synth_settings.EXTERNAL_SITE).
SHIFTED = {"inplane_spacing_mm", "slice_thickness_mm", "max_voxels", "tr_ms", "flip_deg",
           "early_time_min", "late_time_min", "bias_amplitude", "noise_fraction",
           "subtype_mix", "age_mean", "pcr_rate_by_subtype"}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != "synth_summary.json"}  # the summary holds a timing


def _imageless(folder: Path, n: int, seed: int = 3, site: str = "external") -> Path:
    return generate_cohort(folder, n=n, seed=seed, site=site, images=False, progress=False)


def test_sites_shift_the_documented_knobs_and_share_the_law():
    assert site_settings("development") == SynthSettings()
    assert site_settings("external") is EXT
    shift = site_shift_summary(DEV, EXT)
    assert set(shift) == SHIFTED
    assert shift["subtype_mix"] == ((0.45, 0.30, 0.25), (0.55, 0.25, 0.20))
    assert all(getattr(DEV, f) == getattr(EXT, f) for f in LAW_FIELDS)
    assert all(f.name in LAW_FIELDS for f in dataclasses.fields(SynthSettings)
               if f.name.startswith("coef_"))
    assert site_shift_summary(DEV, DEV) == {}
    assert set(SITE_PREFIX) == set(SITES) and len(set(SITE_PREFIX.values())) == len(SITES)
    # the external scanner is finer, noisier, more biased and samples earlier
    assert EXT.inplane_spacing_mm[1] < DEV.inplane_spacing_mm[1]
    assert EXT.noise_fraction[0] > DEV.noise_fraction[0]
    assert (EXT.early_time_min, EXT.late_time_min) == (2.0, 6.0)


def test_external_site_is_recalibrated_to_its_own_rates():
    dev, ext = calibration(DEV), calibration(EXT)
    assert ext.intercepts != dev.intercepts
    assert ext.expected_rate_by_subtype == pytest.approx(EXT.pcr_rate_by_subtype, abs=1e-6)
    assert ext.expected_pcr_rate == pytest.approx(0.294, abs=0.005)
    assert ext.expected_pcr_rate - dev.expected_pcr_rate > 0.02
    assert ext.population_auc == pytest.approx(dev.population_auc, abs=0.02)


def test_unknown_site_is_refused_naming_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError,
                       match=r"one of \[.development., .external., .second_scanner.\]; got .mars."):
        site_settings("mars")
    with pytest.raises(ConfigError, match="external"):
        generate_cohort(tmp_path / "x", n=2, site="mars", images=False, progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="images must be True or False"):
        generate_cohort(tmp_path / "y", n=2, images="no", progress=False)


def test_imageless_cohort_files(tmp_path):
    manifest = _imageless(tmp_path / "ext", n=40)
    df = pd.read_csv(manifest)
    assert list(df.columns) == CLINICAL_MANIFEST_COLUMNS
    assert not [c for c in df.columns if c.startswith("image_") or c == "mask"]
    assert df["patient_id"].tolist() == [f"EXT{i:04d}" for i in range(1, 41)]
    assert set(df["pcr"]) <= {0, 1} and df["mri_ld_mm"].min() >= 1
    assert not (tmp_path / "ext" / "images").exists()
    truth = pd.read_csv(tmp_path / "ext" / "truth.csv")
    assert truth["patient_id"].tolist() == df["patient_id"].tolist()
    assert truth["pcr"].tolist() == df["pcr"].tolist()
    assert set(truth["site"]) == {"external"}
    assert truth["true_probability"].between(0, 1).all()
    for latent in ("ktrans_mean", "ve_mean", "heterogeneity", "necrosis_fraction",
                   "rim_enhancement", "irregularity", "longest_diameter_mm", "age", "subtype"):
        assert latent in truth
    # mri_ld_mm: the latent diameter plus N(0, 2 mm), rounded
    assert (df["mri_ld_mm"] - truth["longest_diameter_mm"]).abs().max() < 10
    summary = json.loads((tmp_path / "ext" / "synth_summary.json").read_text())
    assert summary["site"] == "external" and summary["images"] is False
    assert summary["id_prefix"] == "EXT" and summary["voxels_per_phase"] is None
    assert summary["settings"] == json.loads(json.dumps(EXT.as_dict()))
    assert summary["intercepts"] == dict(zip(summary["intercepts"], calibration(EXT).intercepts,
                                             strict=True))
    assert summary["expected_pcr_rate"] == pytest.approx(calibration(EXT).expected_pcr_rate)
    assert set(summary["site_shift"]) == SHIFTED


def test_imageless_manifest_loads_as_a_cohort_when_the_loader_allows_it(tmp_path):
    manifest = _imageless(tmp_path / "ext", n=12)
    try:
        cohort = load_cohort(manifest, fmt="manifest")
    except CohortError as exc:
        # The manifest loader still requires an image_<phase> column (image-less manifests
        # are being added to it separately); the CSV itself is checked in the test above.
        assert "no image_" in str(exc)
        pytest.skip("the manifest loader does not accept image-less manifests yet")
    assert cohort.df["patient_id"].tolist() == [f"EXT{i:04d}" for i in range(1, 13)]


def test_imageless_cohort_is_deterministic_and_prefix_of_larger(tmp_path):
    a, b = _imageless(tmp_path / "a", n=10), _imageless(tmp_path / "b", n=10)
    assert _files(a.parent) == _files(b.parent)
    small = pd.read_csv(_imageless(tmp_path / "c", n=5))
    big = pd.read_csv(a)
    pd.testing.assert_frame_equal(small, big.head(5))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "truth.csv"),
                                  pd.read_csv(tmp_path / "a" / "truth.csv").head(5))
    other = pd.read_csv(_imageless(tmp_path / "d", n=10, seed=4))
    assert not other.equals(big)


def test_sites_share_seed_streams_but_not_ids(tmp_path):
    dev = pd.read_csv(_imageless(tmp_path / "dev", n=30, site="development"))
    ext = pd.read_csv(_imageless(tmp_path / "ext", n=30))
    assert dev["patient_id"].str.startswith("SYN").all()
    assert not set(dev["patient_id"]) & set(ext["patient_id"])
    assert not dev.drop(columns="patient_id").equals(ext.drop(columns="patient_id"))


def test_imageless_patients_match_the_imaging_path(tmp_path):
    """Same latent and label streams: clinical values and label identical with or without
    images; only mri_ld_mm differs (measured on the mask vs the latent diameter)."""
    seed, n = 5, 2
    imaging = generate_cohort(tmp_path / "img", n=n, seed=seed, site="external",
                              progress=False)
    plain = _imageless(tmp_path / "plain", n=n, seed=seed)
    with_images, without = pd.read_csv(imaging), pd.read_csv(plain)
    assert list(with_images.columns) == MANIFEST_COLUMNS
    assert with_images["patient_id"].tolist() == ["EXT0001", "EXT0002"]
    same = [c for c in CLINICAL_MANIFEST_COLUMNS if c != "mri_ld_mm"]
    pd.testing.assert_frame_equal(with_images[same], without[same])
    assert (with_images["mri_ld_mm"] - without["mri_ld_mm"]).abs().max() <= 15
    truth_img = pd.read_csv(tmp_path / "img" / "truth.csv")
    truth_plain = pd.read_csv(tmp_path / "plain" / "truth.csv")
    shared = [c for c in truth_plain.columns if c != "mri_ld_mm"]
    pd.testing.assert_frame_equal(truth_img[shared], truth_plain[shared])


def test_thousand_imageless_patients_are_fast(tmp_path):
    calibration.cache_clear()  # time the site's intercept calibration too (about 0.4 s)
    start = time.perf_counter()
    manifest = _imageless(tmp_path / "big", n=1000, seed=0)
    seconds = time.perf_counter() - start
    assert seconds < 5.0, f"1000 image-less patients took {seconds:.2f} s (target < 5 s)"
    df = pd.read_csv(manifest)
    assert len(df) == 1000 and df["patient_id"].iloc[-1] == "EXT1000"
    summary = json.loads((tmp_path / "big" / "synth_summary.json").read_text())
    assert abs(summary["pcr_rate"] - summary["expected_pcr_rate"]) < 0.05
