"""The synthetic second-scanner site and multi-site cohorts (for harmonisation)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from workbench.cohort import load_cohort
from workbench.cohort.synth_latent import calibration
from workbench.cohort.synth_settings import (
    ACQUISITION_FIELDS,
    LAW_FIELDS,
    SECOND_SCANNER_SITE,
    SITE_PREFIX,
    SITES,
    SynthSettings,
    site_settings,
    site_shift_summary,
)
from workbench.cohort.synthetic import (
    MANIFEST_COLUMNS,
    generate_multisite_cohort,
    site_seed,
)
from workbench.errors import ConfigError

DEV, SCB = SITES["development"], SITES["second_scanner"]
TWO_SITES = {"development": 2, "second_scanner": 3}


@pytest.fixture(scope="module")
def multisite(tmp_path_factory) -> Path:
    """A tiny two-site cohort with images (5 patients, a few seconds)."""
    return generate_multisite_cohort(tmp_path_factory.mktemp("multi") / "a", TWO_SITES,
                                     seed=11, progress=False)


def test_second_scanner_moves_only_the_acquisition():
    assert site_settings("second_scanner") is SECOND_SCANNER_SITE
    assert SITE_PREFIX["second_scanner"] == "SCB"
    assert set(SITE_PREFIX) == set(SITES) and len(set(SITE_PREFIX.values())) == len(SITES)
    shift = site_shift_summary(DEV, SCB)
    assert set(shift) == {"inplane_spacing_mm", "slice_thickness_mm", "tr_ms", "flip_deg",
                          "early_time_min", "late_time_min", "fat_suppression_residual",
                          "bias_amplitude", "noise_fraction"}
    assert set(shift) <= set(ACQUISITION_FIELDS)
    fields = [f.name for f in dataclasses.fields(SynthSettings)]
    assert set(ACQUISITION_FIELDS) <= set(fields) and set(LAW_FIELDS) <= set(fields)
    # case mix, anatomy, physiology, pCR law and rates: all the development values
    same = [f for f in fields if f not in ACQUISITION_FIELDS]
    assert {"subtype_mix", "pcr_rate_by_subtype", "age_mean", "race_mix",
            "fgt_fraction", *LAW_FIELDS} <= set(same)
    assert all(getattr(SCB, f) == getattr(DEV, f) for f in same)
    dev, scb = calibration(DEV), calibration(SCB)
    assert scb.intercepts == dev.intercepts
    assert scb.expected_pcr_rate == dev.expected_pcr_rate
    # noisier and coarser than development, as documented
    assert SCB.noise_fraction[0] > DEV.noise_fraction[1]
    assert SCB.inplane_spacing_mm[0] > DEV.inplane_spacing_mm[1]
    assert SCB.slice_thickness_mm[0] > DEV.slice_thickness_mm[1]


def test_multisite_manifest_has_both_sites_and_loads_keeping_site(multisite):
    df = pd.read_csv(multisite)
    assert list(df.columns) == MANIFEST_COLUMNS + ["site"]
    assert df["patient_id"].tolist() == ["SYN0001", "SYN0002", "SCB0001", "SCB0002", "SCB0003"]
    assert df["patient_id"].is_unique
    assert df["site"].tolist() == ["development"] * 2 + ["second_scanner"] * 3
    assert all((multisite.parent / p).is_file() for p in df["image_early"])
    truth = pd.read_csv(multisite.parent / "truth.csv")
    assert truth[["patient_id", "site"]].equals(df[["patient_id", "site"]])
    assert truth["pcr"].tolist() == df["pcr"].tolist()
    # each site's scanner: voxel sizes within its own ranges
    for site, rows in truth.groupby("site"):
        low, high = SITES[site].slice_thickness_mm
        assert rows["spacing_z"].between(low, high).all()

    cohort = load_cohort(multisite, fmt="manifest")
    assert cohort.problems == []
    assert cohort.df["site"].tolist() == df["site"].tolist()
    assert len(cohort.imaging_ready()) == 5

    summary = json.loads((multisite.parent / "synth_summary.json").read_text())
    assert summary["site"] == "multisite" and summary["sites"] == TWO_SITES
    assert summary["n"] == 5 and summary["seed"] == 11 and summary["images"] is True
    assert summary["site_seeds"] == {s: site_seed(11, s) for s in TWO_SITES}
    assert summary["by_site"]["development"]["site_shift"] == {}
    assert set(summary["by_site"]["second_scanner"]["site_shift"]) == set(
        site_shift_summary(DEV, SCB))
    assert summary["by_site"]["second_scanner"]["id_prefix"] == "SCB"
    assert summary["by_site"]["second_scanner"]["n"] == 3


def test_multisite_is_deterministic_and_sites_are_independent(multisite, tmp_path):
    again = generate_multisite_cohort(tmp_path / "b", TWO_SITES, seed=11, progress=False)
    for name in ("manifest.csv", "truth.csv"):
        assert (again.parent / name).read_bytes() == (multisite.parent / name).read_bytes()
    pid = "SCB0002"
    for phase in ("pre", "early", "late", "mask"):
        rel = f"images/{pid}/{phase}.nii.gz"
        assert (again.parent / rel).read_bytes() == (multisite.parent / rel).read_bytes()
    # a site's patients do not depend on the other sites (image-less: the same streams)
    alone = pd.read_csv(generate_multisite_cohort(tmp_path / "c", {"second_scanner": 3},
                                                  seed=11, progress=False, images=False))
    both = pd.read_csv(multisite)
    scb = both[both["site"] == "second_scanner"].reset_index(drop=True)
    same = [c for c in alone.columns if c != "mri_ld_mm"]  # measured on the mask with images
    pd.testing.assert_frame_equal(alone[same], scb[same])
    # ... and sites play independent seeds: not the development patients renamed
    assert len({site_seed(11, s) for s in SITES} | {11}) == len(SITES) + 1
    other = pd.read_csv(generate_multisite_cohort(tmp_path / "d", TWO_SITES, seed=12,
                                                  progress=False, images=False))
    assert not other["age"].equals(both["age"])


@pytest.mark.parametrize(("sites", "match"), [
    ({}, "non-empty mapping"),
    ({"development": 2, "mars": 2}, r"one of \[.*'second_scanner'\]; got 'mars'"),
    ({"development": 0}, r"sites\['development'\] .* integer >= 1; got 0"),
])
def test_multisite_refuses_bad_sites(tmp_path, sites, match):
    with pytest.raises(ConfigError, match=match):
        generate_multisite_cohort(tmp_path / "x", sites, progress=False)
    assert not (tmp_path / "x").exists()
