"""Latent clinical and tumour-phenotype model of the synthetic cohort, and its pCR law.

Everything here is image-free and vectorised: :func:`sample_latent` draws ``size``
patients from one generator (a single patient is ``size=1``, so the cohort and the big
calibration sample follow exactly the same law), :func:`true_probability` applies the
latent logistic model, and :func:`calibration` solves the per-subtype intercepts on a
large fixed sample and reports the population oracle AUC.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from workbench.cohort.synth_settings import SUBTYPES, SynthSettings

# Phenotypes entering the logistic model, and the settings field holding each coefficient.
LOGIT_TERMS: dict[str, str] = {
    "log_ktrans": "coef_ktrans",
    "heterogeneity": "coef_heterogeneity",
    "necrosis_fraction": "coef_necrosis",
    "log_ld": "coef_size",
    "irregularity": "coef_irregularity",
}
# Luminal (HR+/HER2-) masses are more often spiculated, triple-negative ones round.
IRREGULARITY_SHIFT = (0.10, 0.0, -0.10)
PGR_GIVEN_ER_POSITIVE = (("positive", 0.75), ("negative", 0.23), ("indeterminate", 0.02))
ER_POSITIVE_GIVEN_HR_POSITIVE = 0.93


def sample_latent(rng: np.random.Generator, size: int, settings: SynthSettings) -> dict:
    """Draw ``size`` latent patients (clinical covariates + tumour phenotype).

    Returns a dict of equal-length arrays: ``subtype`` (index into :data:`SUBTYPES`),
    ``hr_her2``, ``er``, ``pgr``, ``hr``, ``her2``, ``age``, ``race``, ``laterality``,
    ``longest_diameter_mm``, ``ktrans_mean`` (/min), ``ve_mean``, ``heterogeneity``
    (Ktrans CoV), ``necrosis_fraction`` (0 when no necrotic core), ``rim_enhancement``
    (relative Ktrans boost at the rim) and ``irregularity`` (0 smooth ... 1 spiculated).
    The draw order is fixed, so a patient's values depend only on ``rng``'s state.
    """
    s = settings
    subtype = rng.choice(len(SUBTYPES), size=size, p=np.asarray(s.subtype_mix))
    age = np.clip(rng.normal(s.age_mean, s.age_sd, size), *s.age_range)
    races = [name for name, _ in s.race_mix]
    race = np.asarray(races, dtype=object)[
        rng.choice(len(races), size=size, p=np.asarray([p for _, p in s.race_mix]))]
    laterality = np.where(rng.random(size) < 0.5, "left", "right").astype(object)

    her2_pos_hr = rng.random(size) < s.her2_hr_positive
    hr_pos = (subtype == 0) | ((subtype == 1) & her2_pos_hr)
    er_pos = hr_pos & (rng.random(size) < ER_POSITIVE_GIVEN_HR_POSITIVE)
    pgr_labels = np.asarray([v for v, _ in PGR_GIVEN_ER_POSITIVE], dtype=object)
    pgr_draw = pgr_labels[rng.choice(3, size=size, p=[p for _, p in PGR_GIVEN_ER_POSITIVE])]
    # HR+ with ER- means PgR+ (HR+ = ER+ or PgR+); HR- means both negative.
    pgr = np.where(er_pos, pgr_draw, np.where(hr_pos, "positive", "negative")).astype(object)

    ld = np.exp(rng.normal(np.log(s.ld_median_mm), s.ld_log_sd, size))
    ld = np.clip(ld, *s.ld_range_mm)
    k_med = np.asarray(s.ktrans_median_by_subtype)[subtype]
    ktrans = np.clip(np.exp(rng.normal(np.log(k_med), s.ktrans_log_sd)), *s.ktrans_range)
    ve = np.clip(rng.normal(s.ve_mean, s.ve_sd, size), *s.ve_range)
    h_lo, h_hi = s.heterogeneity_range
    heterogeneity = h_lo + (h_hi - h_lo) * rng.beta(2.0, 3.0, size)
    p_nec = np.asarray(s.necrosis_probability_by_subtype)[subtype]
    p_nec = np.clip(p_nec * (ld / s.ld_median_mm) ** 0.7, 0.0, 0.95)
    has_nec = rng.random(size) < p_nec
    necrosis = np.where(has_nec, rng.uniform(*s.necrosis_fraction_range, size), 0.0)
    rim = np.where(has_nec, rng.uniform(0.4, 1.2, size), rng.uniform(0.0, 0.4, size))
    irregularity = np.clip(rng.beta(2.0, 3.0, size)
                           + np.asarray(IRREGULARITY_SHIFT)[subtype], 0.0, 1.0)

    return {
        "subtype": subtype,
        "hr_her2": np.asarray(SUBTYPES, dtype=object)[subtype],
        "er": np.where(er_pos, "positive", "negative").astype(object),
        "pgr": pgr,
        "hr": np.where(hr_pos, "positive", "negative").astype(object),
        "her2": np.where(subtype == 1, "positive", "negative").astype(object),
        "age": age,
        "race": race,
        "laterality": laterality,
        "longest_diameter_mm": ld,
        "ktrans_mean": ktrans,
        "ve_mean": ve,
        "heterogeneity": heterogeneity,
        "necrosis_fraction": necrosis,
        "rim_enhancement": rim,
        "irregularity": irregularity,
    }


def _phenotypes(latent: dict) -> dict[str, np.ndarray]:
    return {
        "log_ktrans": np.log(latent["ktrans_mean"]),
        "heterogeneity": np.asarray(latent["heterogeneity"], dtype=float),
        "necrosis_fraction": np.asarray(latent["necrosis_fraction"], dtype=float),
        "log_ld": np.log(latent["longest_diameter_mm"]),
        "irregularity": np.asarray(latent["irregularity"], dtype=float),
    }


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What the big latent sample fixes for a given :class:`SynthSettings`.

    ``intercepts`` per subtype (order of :data:`SUBTYPES`); ``centre`` / ``scale``
    standardise each phenotype in :data:`LOGIT_TERMS`; ``population_auc`` is the expected
    AUC of the true probabilities; ``expected_pcr_rate`` overall and ``by_subtype``.
    """

    intercepts: tuple[float, ...]
    centre: dict
    scale: dict
    population_auc: float
    expected_pcr_rate: float
    expected_rate_by_subtype: tuple[float, ...]
    subtype_mix: tuple[float, ...]


def imaging_logit(latent: dict, calib: Calibration, settings: SynthSettings) -> np.ndarray:
    """Imaging part of the latent logit (without the subtype intercept)."""
    phen = _phenotypes(latent)
    eta = np.zeros_like(phen["log_ld"], dtype=float)
    for term, coef_name in LOGIT_TERMS.items():
        eta += getattr(settings, coef_name) * (phen[term] - calib.centre[term]) / calib.scale[term]
    return eta


def true_probability(latent: dict, settings: SynthSettings) -> np.ndarray:
    """P(pCR | latent) = expit(intercept[subtype] + sum_j coef_j * z_j)."""
    calib = calibration(settings)
    eta = imaging_logit(latent, calib, settings)
    return expit(np.asarray(calib.intercepts)[latent["subtype"]] + eta)


def expected_auc(p: np.ndarray) -> float:
    """Expected ROC AUC of scores ``p`` when labels are Bernoulli(``p``).

    ``sum_{i != j} p_i (1 - p_j) [p_i > p_j] / (sum_i p_i * sum_j (1 - p_j))``, computed
    in O(n log n) after sorting (ties count one half; the i = j terms are negligible).
    """
    p = np.sort(np.asarray(p, dtype=float))
    neg = 1.0 - p
    # negatives weight strictly below each score, with ties sharing half
    _, first, counts = np.unique(p, return_index=True, return_counts=True)
    cum_neg = np.concatenate([[0.0], np.cumsum(neg)])
    below = cum_neg[first]
    tied = cum_neg[first + counts] - below
    group_pos = np.add.reduceat(p, first)
    num = float(np.sum(group_pos * (below + 0.5 * tied)))
    return float(num / (p.sum() * neg.sum()))


@functools.lru_cache(maxsize=16)
def calibration(settings: SynthSettings) -> Calibration:
    """Calibrate the per-subtype intercepts on ``settings.calibration_draws`` latent draws.

    Each intercept solves ``mean(expit(a_s + eta)) = pcr_rate_by_subtype[s]`` over the
    sample's patients of subtype ``s`` (Brent's method). The sample uses the fixed
    ``calibration_seed``, so the result depends on the settings only.
    """
    rng = np.random.default_rng(settings.calibration_seed)
    latent = sample_latent(rng, settings.calibration_draws, settings)
    phen = _phenotypes(latent)
    centre = {k: float(np.mean(v)) for k, v in phen.items()}
    scale = {k: float(np.std(v)) or 1.0 for k, v in phen.items()}
    draft = Calibration((0.0,) * len(SUBTYPES), centre, scale, float("nan"), float("nan"),
                        (), settings.subtype_mix)
    eta = imaging_logit(latent, draft, settings)
    intercepts = []
    for s_idx, target in enumerate(settings.pcr_rate_by_subtype):
        eta_s = eta[latent["subtype"] == s_idx]
        if eta_s.size == 0:  # subtype with zero prevalence: intercept from the target alone
            intercepts.append(float(np.log(target / (1 - target))))
            continue
        intercepts.append(float(brentq(lambda a, e=eta_s, t=target: expit(a + e).mean() - t,
                                       -30.0, 30.0, xtol=1e-10)))
    p = expit(np.asarray(intercepts)[latent["subtype"]] + eta)
    by_subtype = tuple(float(p[latent["subtype"] == k].mean()) if np.any(latent["subtype"] == k)
                       else float("nan") for k in range(len(SUBTYPES)))
    return Calibration(tuple(intercepts), centre, scale, expected_auc(p), float(p.mean()),
                       by_subtype, settings.subtype_mix)
