"""Tunable knobs of the synthetic DCE-MRI cohort (see :mod:`workbench.cohort.synthetic`).

One frozen, hashable dataclass, so a calibration computed for a given set of knobs can be
cached and recorded verbatim in ``synth_summary.json``. Ranges ``(low, high)`` are drawn
uniformly per patient unless the field's comment says otherwise.

:data:`SITES` names the sites the generator can play: ``"development"`` (the I-SPY1-like
defaults), ``"external"`` (another trial's scanner, case mix and pCR rates under the
same pCR law) and ``"second_scanner"`` (the development trial on another scanner: only
:data:`ACQUISITION_FIELDS` differ, for harmonisation studies); :func:`site_settings` looks
one up, :data:`SITE_PREFIX` gives its patient-ID prefix and :func:`site_shift_summary` lists
the knobs two settings differ in.
"""

from __future__ import annotations

import dataclasses
import math

from workbench.errors import ConfigError
from workbench.names import SYNTHETIC_SITES, check_registry

SUBTYPES: tuple[str, ...] = ("HR+/HER2-", "HER2+", "triple negative")

# I-SPY1 (ACRIN 6657) race mix, rounded; names as the I-SPY1 clinical sheet spells them.
ISPY1_RACE_MIX: tuple[tuple[str, float], ...] = (
    ("Caucasian", 0.75),
    ("African American", 0.19),
    ("Asian", 0.04),
    ("Multiple race", 0.01),
    ("Native Hawaiian/Pacific Islander", 0.005),
    ("American Indian/Alaskan Native", 0.005),
)


@dataclasses.dataclass(frozen=True)
class SynthSettings:
    """Knobs of the synthetic cohort; the defaults reproduce an I-SPY1-like cohort.

    Grid and acquisition
    --------------------
    inplane_spacing_mm, slice_thickness_mm
        Per-patient voxel size ranges (mm).
    fov_mm
        Range of the square in-plane field of view (mm); widened up to ``fov_max_mm`` when
        a large breast needs room.
    max_voxels
        Voxel budget per phase: the field of view of the few patients with very large
        tumours (tall slabs) is narrowed to fit it, cropping the breast but never the tumour.
    slab_margin_mm, min_slab_mm
        Slices cover the tumour plus this margin above and below, at least ``min_slab_mm``.
    tr_ms, flip_deg, r1_per_mm_s, hematocrit
        Spoiled gradient echo repetition time and flip angle, contrast agent longitudinal
        relaxivity (/mM/s), blood haematocrit (plasma = blood / (1 - Hct)).
    early_time_min, late_time_min, timing_jitter_min
        Post-contrast phase times after injection (min), each jittered uniformly by
        +- ``timing_jitter_min`` per patient.
    fat_suppression_residual
        Fraction of fat signal left by fat suppression (1 = no suppression).
    bias_amplitude
        Range of the bias field's max/min ratio minus one over the body (0.2 = 20 %
        peak-to-peak); ``(0, 0)`` disables it.
    noise_fraction
        Range of the Rician noise sigma relative to the pre-contrast fibroglandular signal.
    fgt_fraction, bpe_ktrans_per_min
        Ranges of breast density (fibroglandular volume fraction) and of background
        parenchymal enhancement (Ktrans of fibroglandular tissue, /min).

    Latent clinical and tumour model
    --------------------------------
    subtype_mix, pcr_rate_by_subtype
        Targets in the order of :data:`SUBTYPES`; intercepts are calibrated to the rates.
    her2_hr_positive
        Probability that a HER2+ tumour is also HR+.
    age_mean, age_sd, age_range
        Normal age distribution, clipped.
    race_mix
        ``(race, probability)`` pairs.
    ld_median_mm, ld_log_sd, ld_range_mm
        Lognormal longest-diameter distribution, clipped.
    ktrans_median_by_subtype, ktrans_log_sd, ktrans_range
        Lognormal tumour mean Ktrans (/min) per subtype, clipped.
    ve_mean, ve_sd, ve_range
        Normal tumour mean ve, clipped.
    heterogeneity_range
        Ktrans coefficient of variation inside the tumour: ``low + (high-low)*Beta(2, 3)``.
    necrosis_probability_by_subtype, necrosis_fraction_range
        Probability of a necrotic core at the median size (scaled by
        ``(LD / median)**0.7``), and the range of its volume fraction.
    coef_*
        Latent logistic coefficients per population standard deviation of each phenotype
        (``coef_necrosis`` per SD of the necrotic fraction, zeros included).
    calibration_draws, calibration_seed
        Size and seed of the latent sample that calibrates the intercepts and gives the
        population oracle AUC (fixed: the calibration does not depend on the cohort seed).
    """

    # grid and acquisition
    inplane_spacing_mm: tuple[float, float] = (0.7, 0.9)
    slice_thickness_mm: tuple[float, float] = (2.0, 2.5)
    fov_mm: tuple[float, float] = (130.0, 155.0)
    fov_max_mm: float = 170.0
    max_voxels: int = 1_500_000
    slab_margin_mm: float = 10.0
    min_slab_mm: float = 40.0
    tr_ms: float = 5.0
    flip_deg: float = 12.0
    r1_per_mm_s: float = 4.5
    hematocrit: float = 0.42
    early_time_min: float = 2.5
    late_time_min: float = 7.5
    timing_jitter_min: float = 0.25
    fat_suppression_residual: float = 0.25
    bias_amplitude: tuple[float, float] = (0.2, 0.4)
    noise_fraction: tuple[float, float] = (0.03, 0.06)
    fgt_fraction: tuple[float, float] = (0.1, 0.5)
    bpe_ktrans_per_min: tuple[float, float] = (0.005, 0.05)
    # latent clinical and tumour model
    subtype_mix: tuple[float, float, float] = (0.45, 0.30, 0.25)
    pcr_rate_by_subtype: tuple[float, float, float] = (0.09, 0.45, 0.35)
    her2_hr_positive: float = 0.55
    age_mean: float = 48.0
    age_sd: float = 9.0
    age_range: tuple[float, float] = (23.0, 80.0)
    race_mix: tuple[tuple[str, float], ...] = ISPY1_RACE_MIX
    ld_median_mm: float = 42.0
    ld_log_sd: float = 0.38
    ld_range_mm: tuple[float, float] = (20.0, 100.0)
    ktrans_median_by_subtype: tuple[float, float, float] = (0.20, 0.26, 0.28)
    ktrans_log_sd: float = 0.35
    ktrans_range: tuple[float, float] = (0.05, 1.0)
    ve_mean: float = 0.38
    ve_sd: float = 0.08
    ve_range: tuple[float, float] = (0.15, 0.65)
    heterogeneity_range: tuple[float, float] = (0.1, 0.6)
    necrosis_probability_by_subtype: tuple[float, float, float] = (0.15, 0.20, 0.45)
    necrosis_fraction_range: tuple[float, float] = (0.05, 0.35)
    coef_ktrans: float = 0.7
    coef_heterogeneity: float = -0.5
    coef_necrosis: float = -0.4
    coef_size: float = -0.4
    coef_irregularity: float = -0.4
    calibration_draws: int = 200_000
    calibration_seed: int = 20_240_601

    def __post_init__(self) -> None:
        for name in ("inplane_spacing_mm", "slice_thickness_mm", "fov_mm", "bias_amplitude",
                     "noise_fraction", "fgt_fraction", "bpe_ktrans_per_min", "age_range",
                     "ld_range_mm", "ktrans_range", "ve_range", "heterogeneity_range",
                     "necrosis_fraction_range"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
                raise ConfigError(f"SynthSettings.{name} must be a range (low, high) with "
                                  f"0 <= low <= high; got {(low, high)!r}", step="synth")
        if self.inplane_spacing_mm[0] <= 0 or self.slice_thickness_mm[0] <= 0:
            raise ConfigError("SynthSettings spacings must be > 0; got "
                              f"{self.inplane_spacing_mm!r}, {self.slice_thickness_mm!r}",
                              step="synth")
        for name in ("subtype_mix", "pcr_rate_by_subtype", "ktrans_median_by_subtype",
                     "necrosis_probability_by_subtype"):
            values = getattr(self, name)
            if len(values) != len(SUBTYPES):
                raise ConfigError(f"SynthSettings.{name} needs one value per subtype "
                                  f"{SUBTYPES}; got {values!r}", step="synth")
        if abs(sum(self.subtype_mix) - 1) > 1e-6 or min(self.subtype_mix) < 0:
            raise ConfigError(f"SynthSettings.subtype_mix must be >= 0 and sum to 1; got "
                              f"{self.subtype_mix!r}", step="synth")
        if abs(sum(p for _, p in self.race_mix) - 1) > 1e-6:
            raise ConfigError(f"SynthSettings.race_mix probabilities must sum to 1; got "
                              f"{self.race_mix!r}", step="synth")
        for name in ("pcr_rate_by_subtype", "necrosis_probability_by_subtype"):
            if not all(0 <= v <= 1 for v in getattr(self, name)):
                raise ConfigError(f"SynthSettings.{name} must lie in [0, 1]; got "
                                  f"{getattr(self, name)!r}", step="synth")
        if not all(0 < v < 1 for v in self.pcr_rate_by_subtype):
            raise ConfigError("SynthSettings.pcr_rate_by_subtype must lie strictly in (0, 1); "
                              f"got {self.pcr_rate_by_subtype!r}", step="synth")
        if not 0 < self.early_time_min < self.late_time_min <= 30:
            raise ConfigError("SynthSettings needs 0 < early_time_min < late_time_min <= 30; got "
                              f"{self.early_time_min!r}, {self.late_time_min!r}", step="synth")
        if not 0 <= self.timing_jitter_min < self.early_time_min:
            raise ConfigError("SynthSettings.timing_jitter_min must be in [0, early_time_min); "
                              f"got {self.timing_jitter_min!r}", step="synth")
        if not 0 <= self.fat_suppression_residual <= 1:
            raise ConfigError("SynthSettings.fat_suppression_residual must be in [0, 1]; got "
                              f"{self.fat_suppression_residual!r}", step="synth")
        if self.calibration_draws < 10_000:
            raise ConfigError("SynthSettings.calibration_draws must be >= 10000; got "
                              f"{self.calibration_draws!r}", step="synth")

    def as_dict(self) -> dict:
        """Plain JSON-ready values (tuples become lists)."""
        return dataclasses.asdict(self)


#: The law of pCR (coefficients, phenotype distributions, calibration sample) that every site
#: shares; a site may only move the acquisition, the case mix and the per-subtype pCR rates.
LAW_FIELDS: tuple[str, ...] = (
    "coef_ktrans", "coef_heterogeneity", "coef_necrosis", "coef_size", "coef_irregularity",
    "ld_median_mm", "ld_log_sd", "ld_range_mm", "ktrans_median_by_subtype",
    "ktrans_log_sd", "ktrans_range", "ve_mean", "ve_sd", "ve_range", "heterogeneity_range",
    "necrosis_probability_by_subtype", "necrosis_fraction_range", "calibration_draws",
    "calibration_seed",
)

#: The scanner and protocol: everything a site can change without changing its patients
#: (case mix, anatomy, physiology and the pCR law are the other fields).
ACQUISITION_FIELDS: tuple[str, ...] = (
    "inplane_spacing_mm", "slice_thickness_mm", "fov_mm", "fov_max_mm", "max_voxels",
    "slab_margin_mm", "min_slab_mm", "tr_ms", "flip_deg", "r1_per_mm_s", "early_time_min",
    "late_time_min", "timing_jitter_min", "fat_suppression_residual", "bias_amplitude",
    "noise_fraction",
)

EXTERNAL_SITE = SynthSettings(
    inplane_spacing_mm=(0.6, 0.75),
    slice_thickness_mm=(1.5, 2.0),
    max_voxels=2_700_000,
    tr_ms=4.5,
    flip_deg=10.0,
    early_time_min=2.0,
    late_time_min=6.0,
    bias_amplitude=(0.3, 0.5),
    noise_fraction=(0.05, 0.09),
    subtype_mix=(0.55, 0.25, 0.20),
    age_mean=52.0,
    pcr_rate_by_subtype=(0.13, 0.55, 0.42),
)
"""A second trial at another site: same pCR law, other scanner, case mix and pCR rates.

Every knob that differs from the development (default) settings:

Scanner and protocol
    * ``inplane_spacing_mm`` (0.6, 0.75) instead of (0.7, 0.9) and ``slice_thickness_mm``
      (1.5, 2.0) instead of (2.0, 2.5): a finer, higher-resolution protocol (about 1.8 times
      the voxels).
    * ``max_voxels`` 2 700 000 instead of 1 500 000: the per-phase budget scaled with the finer
      voxels, so, as at the development site, only the few very large tumours get a cropped
      field of view (about 1.5 M voxels per phase on average).
    * ``tr_ms`` 4.5 instead of 5.0 and ``flip_deg`` 10 instead of 12: another vendor's SPGR
      sequence (different T1 weighting, so different raw intensities and enhancement ratios).
    * ``early_time_min`` 2.0 / ``late_time_min`` 6.0 instead of 2.5 / 7.5: other post-contrast
      sampling times (same +- 0.25 min jitter).
    * ``bias_amplitude`` (0.3, 0.5) instead of (0.2, 0.4): a stronger coil bias field.
    * ``noise_fraction`` (0.05, 0.09) instead of (0.03, 0.06): noisier images (smaller voxels).

Case mix and prevalence
    * ``subtype_mix`` (0.55, 0.25, 0.20) instead of (0.45, 0.30, 0.25): more HR+/HER2-.
    * ``age_mean`` 52 instead of 48 (same SD 9 and clipping).
    * ``pcr_rate_by_subtype`` (0.13, 0.55, 0.42) instead of (0.09, 0.45, 0.35): a more
      effective regimen; the per-subtype intercepts are recalibrated to these rates by
      :func:`~workbench.cohort.synth_latent.calibration` (expected overall pCR rate 0.29
      against 0.26, population oracle AUC 0.83 as at development).

Everything in :data:`LAW_FIELDS` (the logistic coefficients, the tumour phenotype
distributions given the subtype, the calibration sample) is the development value. The
phenotypes are standardised on each site's own population, whose mean and SD move a little
with the subtype mix (SD by at most 3 %, for the necrotic fraction); the shift of the means is
absorbed by the recalibrated intercepts.
"""

SECOND_SCANNER_SITE = SynthSettings(
    inplane_spacing_mm=(1.0, 1.2),
    slice_thickness_mm=(3.0, 3.5),
    tr_ms=4.0,
    flip_deg=15.0,
    early_time_min=2.0,
    late_time_min=6.5,
    fat_suppression_residual=0.35,
    bias_amplitude=(0.4, 0.6),
    noise_fraction=(0.08, 0.12),
)
"""The development trial's patients imaged on a second scanner: only the acquisition moves.

Made for harmonisation (e.g. ComBat): the two sites differ only by scanner and protocol, so
any difference between their radiomics features is a scanner effect. The knobs were chosen
so the effect survives N4, 1 mm resampling and per-patient z-scoring and shows in texture
and first-order features, as multi-vendor data does. Every knob that differs from the
development (default) settings, all in :data:`ACQUISITION_FIELDS`:

* ``inplane_spacing_mm`` (1.0, 1.2) instead of (0.7, 0.9) and ``slice_thickness_mm``
  (3.0, 3.5) instead of (2.0, 2.5): a coarser protocol (voxels about 2.7 times as large),
  so the 1 mm resampled images are interpolated, smoother and carry spatially correlated
  noise.
* ``tr_ms`` 4.0 instead of 5.0 and ``flip_deg`` 15 instead of 12: another vendor's SPGR
  sequence (more T1 weighting: other tissue contrasts and enhancement ratios).
* ``early_time_min`` 2.0 / ``late_time_min`` 6.5 instead of 2.5 / 7.5: other post-contrast
  sampling times (same +- 0.25 min jitter).
* ``fat_suppression_residual`` 0.35 instead of 0.25: a weaker fat suppression (brighter fat
  shifts the body statistics the z-scoring uses).
* ``bias_amplitude`` (0.4, 0.6) instead of (0.2, 0.4): a stronger coil bias field.
* ``noise_fraction`` (0.08, 0.12) instead of (0.03, 0.06): noisier images.

Everything else, the case mix (subtype mix, receptors, age, race, breast density and
parenchymal enhancement), :data:`LAW_FIELDS` and the per-subtype pCR rates, is the
development value, so the intercepts and the expected pCR rates are the development ones.
"""

#: Settings of each site the generator can play (see :data:`EXTERNAL_SITE` and
#: :data:`SECOND_SCANNER_SITE`).
SITES: dict[str, SynthSettings] = {
    "development": SynthSettings(),
    "external": EXTERNAL_SITE,
    "second_scanner": SECOND_SCANNER_SITE,
}

#: Patient-ID prefix of each site (``SYN0001``, ``EXT0001``, ``SCB0001``...): IDs never clash
#: across sites.
SITE_PREFIX: dict[str, str] = {"development": "SYN", "external": "EXT", "second_scanner": "SCB"}
check_registry("workbench.cohort.synth_settings.SITES", SITES, SYNTHETIC_SITES)


def site_settings(site: str) -> SynthSettings:
    """The :class:`SynthSettings` of a site of :data:`SITES`.

    Raises
    ------
    ConfigError
        For a site that is not in :data:`SITES` (the message lists the allowed ones).
    """
    if site not in SITES:
        raise ConfigError(f"synthetic site must be one of {sorted(SITES)}; got {site!r}",
                          step="synth")
    return SITES[site]


def site_prefix(site: str) -> str:
    """The patient-ID prefix of a site of :data:`SITE_PREFIX` (``ConfigError`` otherwise)."""
    site_settings(site)  # same check and message as for the settings
    return SITE_PREFIX[site]


def site_shift_summary(dev: SynthSettings, ext: SynthSettings) -> dict[str, tuple]:
    """The knobs in which ``ext`` differs from ``dev``: ``{knob: (dev value, ext value)}``.

    Pure and in field order, for reports (e.g. ``site_shift_summary(SITES["development"],
    SITES["external"])``); tuples are kept as tuples. Fields of :data:`LAW_FIELDS` appear
    only when the two settings do not share the pCR law.
    """
    return {f.name: (getattr(dev, f.name), getattr(ext, f.name))
            for f in dataclasses.fields(SynthSettings)
            if getattr(dev, f.name) != getattr(ext, f.name)}
