"""Embedded synthetic DCE-MRI cohort: I-SPY1-like patients with a known pCR law.

``generate_cohort(out_dir, n=163, seed=0)`` writes, per patient ``SYN0001``, ``SYN0002``...,
``images/<id>/pre.nii.gz``, ``early.nii.gz``, ``late.nii.gz`` (int16, scanner-like
intensities), ``mask.nii.gz`` (uint8 tumour mask) and ``tissue_labels.nii.gz`` (uint8, see
:data:`~workbench.cohort.synth_anatomy.TISSUE_LABELS`; not part of the cohort contract),
all on one grid, plus ``manifest.csv`` (the cohort-table columns, image paths relative to
the manifest), ``truth.csv`` (the true P(pCR) and every latent variable) and
``synth_summary.json``.

Acquisition and anatomy
-----------------------
* One breast per patient, axial LPS grid with identity direction and a non-zero,
  laterality-consistent origin; in-plane spacing 0.7-0.9 mm, slice thickness 2.0-2.5 mm
  (uniform per patient); square field of view drawn in 130-155 mm, widened (up to 170 mm)
  for a large breast and narrowed to a 1.5 M voxels-per-phase budget for the few very large
  tumours (cropping the breast, never the tumour). The slab covers the tumour plus 10 mm
  above and below (at least 40 mm): 0.45-1.5 M voxels per phase, 0.86 M on average.
* Breast (prone): a half-ellipsoid dome 55-90 mm deep and 110-145 mm wide with a smoothly
  wobbling outline, enlarged when needed so the whole tumour lies inside it, on a curved,
  laterally tilted chest wall; a subcutaneous fat layer, 1.5-2.5 mm skin, 8-14 mm pectoral
  muscle and dark lung behind; air (Rayleigh noise floor only) outside the body.
  Fibroglandular tissue is a two-scale smooth Gaussian random field (correlations ~8 and
  ~3 mm) plus a central cone weight, soft-thresholded to a breast density of 10-50 %; fat
  fills the rest of the breast.
* Native T1 / proton density at 1.5 T: fat 300 ms / 0.9 (times a fat-suppression residual
  of 0.25), fibroglandular 1260 ms / 0.8, tumour 1100 ms / 0.85, necrosis 1800 ms / 0.9,
  muscle 1000 ms / 0.75, skin 900 ms / 0.7.

Contrast kinetics and signal
----------------------------
* Three phases: pre-contrast, early (2.5 min) and late (7.5 min) after injection, each
  time jittered by +- 0.25 min per patient.
* Concentrations from the **standard Tofts model** driven by the **Parker (2006)
  population AIF** (haematocrit 0.42). Tumour Ktrans is a per-voxel lognormal smooth field
  (correlation ~4 mm, coefficient of variation = the latent heterogeneity 0.1-0.6) around
  the latent mean, with optional **rim enhancement** and an optional **non-enhancing
  necrotic core** (Ktrans 0.003 /min); ve varies half as much around the latent mean.
  Background parenchymal enhancement: fibroglandular Ktrans 0.005-0.05 /min, ve 0.3;
  muscle and skin enhance slightly, fat not at all.
* Signal from the full **spoiled gradient echo (SPGR) equation**, TR 5 ms, flip 12 deg,
  R1 = 1/T1 + r1 C with **r1 = 4.5 /mM/s** (no linear approximation), times a per-patient
  scanner gain (fibroglandular pre-contrast level 250-600).
* A smooth multiplicative **bias field** (very smooth random field, correlation ~120 mm,
  max/min ratio 1.2-1.4 over the body) multiplies all three phases identically, so N4 correction matters.
* **Rician noise** per phase: magnitude of the signal plus complex Gaussian noise with
  sigma 3-6 % of the fibroglandular pre-contrast level; rounded and clipped to int16.

Tumours
-------
* Shape: an ellipsoid (axes 1 : 0.65-0.95 : 0.42-0.9, shortest axis near cranio-caudal,
  random in-plane rotation, tilts up to 15 deg) whose radius function on the sphere is
  perturbed by random real spherical harmonics of degree 2-6 (lobulation, RMS 3-18 % of
  the radius) and by Poisson(30 (irregularity - 0.3) / 0.7) narrow (3-7 deg) radial spicules,
  both growing with the latent irregularity; scaled so the maximum Feret diameter equals
  the latent longest diameter, lognormal with median 42 mm (log-SD 0.38) clipped to
  20-100 mm. The mask edge has a 1 mm partial-volume ramp in the images.
* Necrotic core (when present): the inner ``fraction^(1/3)`` of the normalised radius with a
  smoothly perturbed border, Ktrans 0.003 /min and long T1, so it does not enhance; the rim
  profile ``1 + rim * clip((rho - 0.5) / 0.5, 0, 1)^2`` boosts peripheral Ktrans.
* ``mri_ld_mm`` in the manifest is the mask's measured 3-D maximum Feret diameter plus
  N(0, 2 mm) measurement noise, rounded to the millimetre.

Clinical covariates and the pCR law
-----------------------------------
* Subtype mix as in I-SPY1: HR+/HER2- 45 %, HER2+ 30 % (55 % of them HR+), triple negative
  25 %; ER/PgR/HR/HER2 consistent with the subtype (HR+ = ER+ or PgR+); age N(48, 9)
  clipped to 23-80; race 75 % Caucasian, 19 % African American, 4 % Asian, 2 % other;
  laterality 50/50.
* Latent phenotypes: mean Ktrans (lognormal, subtype medians 0.20 / 0.26 / 0.28 /min),
  ve, heterogeneity, necrotic core (probability 15 / 20 / 45 % by subtype, rising with
  size; 5-35 % of the volume), rim enhancement, irregularity (0-1), longest diameter.
* pCR ~ Bernoulli(p), ``logit p = a[subtype] + 0.7 z(log Ktrans) - 0.5 z(heterogeneity)
  - 0.4 z(necrotic fraction) - 0.4 z(log diameter) - 0.4 z(irregularity)`` with ``z`` the
  population standardisation. The intercepts ``a`` are solved numerically (Brent) on a
  fixed 200 000-draw latent sample so the pCR rates are 9 % (HR+/HER2-), 45 % (HER2+) and
  35 % (triple negative), 26 % overall; the population oracle AUC (expected AUC of the true
  probabilities on that sample) is about 0.83, against 0.72 for subtype alone.

Sites
-----
``site="development"`` (the default) is the model above, IDs ``SYN0001``...;
``site="external"`` plays a second trial for external validation, IDs ``EXT0001``...: the
same pCR law (coefficients and tumour phenotype distributions) with another scanner (finer
0.6-0.75 mm x 1.5-2.0 mm voxels, TR 4.5 ms / flip 10 deg, phases at 2.0 and 6.0 min, stronger
bias, more noise), more HR+/HER2- patients (55 / 25 / 20 %), older (mean age 52) and higher
pCR rates (13 / 55 / 42 %, 29 % overall; intercepts recalibrated, oracle AUC about 0.83).
Every shifted knob is listed in :data:`~workbench.cohort.synth_settings.EXTERNAL_SITE`;
:func:`~workbench.cohort.synth_settings.site_shift_summary` tabulates them.
``site="second_scanner"``, IDs ``SCB0001``..., is the development trial (same case mix, law
and pCR rates) on another scanner: coarser 1.0-1.2 mm x 3.0-3.5 mm voxels, TR 4 ms / flip
15 deg, phases at 2.0 and 6.5 min, weaker fat suppression, stronger bias and two to three
times the noise (:data:`~workbench.cohort.synth_settings.SECOND_SCANNER_SITE`), so a
scanner effect on the features can be measured and harmonised away.
``synth_summary.json`` records the site, its settings, intercepts and expected pCR rate;
``truth.csv`` gets a ``site`` column (except for the development imaging cohort, kept
byte-identical to earlier releases).

``images=False`` writes an image-less cohort, about a second per thousand patients:
``manifest.csv`` with ``patient_id``, ``pcr`` and the clinical columns only (no image or
mask column), ``truth.csv`` (true probability, every latent, ``site``) and the summary
(``"images": false``). Patient ``i`` has the same latent and label streams as with images,
so the same clinical values and pCR label; only ``mri_ld_mm`` differs: with no mask to
measure, it is the latent longest diameter plus N(0, 2 mm) noise, rounded.

Multi-site cohorts
------------------
``generate_multisite_cohort(out_dir, {"development": 80, "second_scanner": 80}, seed=0)``
writes several sites into one folder: each site's patients with its settings and ID prefix,
one ``manifest.csv`` and one ``truth.csv`` with a ``site`` column, and a summary recording
the sites, their seeds and shifts. Site ``s`` plays the cohort seed
``SeedSequence([seed, crc32(s)]).generate_state(1, uint64)[0]``, so the sites' patients are
independent of each other and of the order and number of sites.

Determinism
-----------
Patient ``i`` uses ``numpy.random.SeedSequence(seed, spawn_key=(i,))`` (the ``i``-th child
of ``SeedSequence(seed).spawn(n)``), split into latent, label and image streams, so its
data do not depend on ``n`` nor on ``jobs`` (BLAS runs single-threaded while a patient is
built, so thread counts cannot change a bit). All knobs live in
:class:`~workbench.cohort.synth_settings.SynthSettings`.
"""

from __future__ import annotations

import json
import logging
import platform
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy
import SimpleITK as sitk
from sklearn.metrics import roc_auc_score

import workbench
from workbench.batch import Job, run_batch
from workbench.cohort.synth_latent import calibration, sample_latent, true_probability
from workbench.cohort.synth_patient import (
    SyntheticPatient,
    clinical_patient,
    patient_id,
    synthesize_patient,
)
from workbench.cohort.synth_settings import (
    SITES,
    SUBTYPES,
    SynthSettings,
    site_prefix,
    site_settings,
    site_shift_summary,
)
from workbench.cohort.table import CLINICAL_COLUMNS, DEFAULT_PHASES, image_column
from workbench.errors import ConfigError, WorkbenchError
from workbench.files import atomic_write_text
from workbench.imaging.io import write_image

__all__ = ["SynthSettings", "SyntheticPatient", "generate_cohort", "generate_multisite_cohort",
           "synthesize_patient", "clinical_patient", "patient_id", "MANIFEST_COLUMNS",
           "CLINICAL_MANIFEST_COLUMNS", "latent_sample", "SITES", "site_settings",
           "site_shift_summary", "site_seed"]

log = logging.getLogger(__name__)

#: Columns of an image-less manifest (``images=False``).
CLINICAL_MANIFEST_COLUMNS: list[str] = ["patient_id", "pcr"] + list(CLINICAL_COLUMNS)
MANIFEST_COLUMNS: list[str] = (CLINICAL_MANIFEST_COLUMNS
                               + [image_column(p) for p in DEFAULT_PHASES] + ["mask"])


def latent_sample(size: int, seed: int, settings: SynthSettings | None = None) -> pd.DataFrame:
    """Image-free draw of ``size`` latent patients with ``true_probability`` (for checks)."""
    settings = settings or SynthSettings()
    latent = sample_latent(np.random.default_rng(seed), size, settings)
    frame = pd.DataFrame(latent)
    frame["true_probability"] = true_probability(latent, settings)
    return frame


class _PatientSpec(NamedTuple):
    """What identifies one patient to generate: its cohort seed, index, knobs and ID prefix."""

    seed: int
    index: int
    settings: SynthSettings
    prefix: str


def site_seed(seed: int, site: str) -> int:
    """The cohort seed that ``site`` plays in a multi-site cohort of seed ``seed``.

    ``SeedSequence([seed, crc32(site)]).generate_state(1, uint64)[0]``: a function of the
    site's name only (crc32 rather than ``hash``, which Python salts per process), so each
    site's patients are independent of the other sites' and of their order and number.
    """
    entropy = np.random.SeedSequence([int(seed), zlib.crc32(site.encode("utf-8"))])
    return int(entropy.generate_state(1, np.uint64)[0])


def _write_patient(out: Path, seed: int, index: int, settings: SynthSettings,
                   prefix: str = "SYN") -> dict:
    """Generate one patient, write its images, return its manifest and truth rows."""
    patient = synthesize_patient(seed, index, settings, prefix=prefix)
    pid = patient.patient_id
    folder = out / "images" / pid
    rel = {}
    for name, image in patient.images().items():
        write_image(image, folder / f"{name}.nii.gz")
        rel[name] = f"images/{pid}/{name}.nii.gz"
    row = dict(patient.clinical)
    row.update({image_column(p): rel[p] for p in DEFAULT_PHASES})
    row["mask"] = rel["mask"]
    return {"manifest": row, "truth": patient.truth}


def _check_arguments(n: int, seed: int, jobs: int, images: bool) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"synthetic cohort size n must be an integer >= 1; got {n!r}",
                          step="synth")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synthetic cohort seed must be an integer >= 0; got {seed!r}",
                          step="synth")
    if not isinstance(jobs, (int, np.integer)) or (jobs < 1 and jobs != -1):
        raise ConfigError(f"jobs must be an integer >= 1 (or -1 for all cores); got {jobs!r}",
                          step="synth")
    if not isinstance(images, (bool, np.bool_)):
        raise ConfigError(f"images must be True or False; got {images!r}", step="synth")


def generate_cohort(out_dir: str | Path, n: int = 163, seed: int = 0, *, jobs: int = 1,
                    progress: bool = True, settings: SynthSettings | None = None,
                    site: str = "development", images: bool = True) -> Path:
    """Generate the synthetic cohort and return the path of ``out_dir/manifest.csv``.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed); existing files of the same patients are
        overwritten atomically.
    n
        Number of patients (``SYN0001`` ... ``SYN{n:04d}``, or ``EXT...`` / ``SCB...`` for the
        external / second-scanner site).
    seed
        Cohort seed; patient ``i`` depends on ``(seed, i, settings)`` only.
    jobs
        Parallel worker processes (joblib ``loky``) for the imaging path; output is identical
        for any value. The image-less path runs in this process.
    progress
        Show a tqdm progress bar on stderr (imaging path).
    settings
        Generator knobs; ``None`` uses the site's settings
        (:func:`~workbench.cohort.synth_settings.site_settings`).
    site
        A key of :data:`~workbench.cohort.synth_settings.SITES`: picks the settings (unless
        ``settings`` is given) and the patient-ID prefix (``SYN`` / ``EXT`` / ``SCB``).
    images
        ``False`` writes an image-less cohort: a manifest of the clinical columns only
        (:data:`CLINICAL_MANIFEST_COLUMNS`), ``truth.csv`` and the summary.

    Raises
    ------
    ConfigError
        On an invalid ``n``, ``seed``, ``jobs``, ``images`` or an unknown ``site``.
    WorkbenchError
        If a patient cannot be generated (names the patient).
    """
    _check_arguments(n, seed, jobs, images)
    prefix = site_prefix(site)
    settings = settings or site_settings(site)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    calib = calibration(settings)
    log.info("generating %d synthetic %s-site patients%s (seed %d) into %s", n, site,
             "" if images else " without images", seed, out)
    specs = [_PatientSpec(seed, i, settings, prefix) for i in range(n)]
    manifest, truth = _patient_tables(out, specs, images=images, jobs=jobs, progress=progress)
    if site != "development" or not images:  # the development imaging truth.csv stays as it was
        truth["site"] = site
    manifest_path = out / "manifest.csv"
    atomic_write_text(manifest_path, manifest.to_csv(index=False))
    atomic_write_text(out / "truth.csv", truth.to_csv(index=False))
    summary = _summary(truth, n=n, seed=seed, jobs=jobs, settings=settings, calib=calib,
                       seconds=time.perf_counter() - start)
    summary.update({"site": site, "id_prefix": prefix, "images": bool(images),
                    "site_shift": _shift_json(settings)})
    atomic_write_text(out / "synth_summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("synthetic cohort written: %s (pCR rate %.2f, realised oracle AUC %s)",
             manifest_path, summary["pcr_rate"], summary["oracle_auc_realised"])
    return manifest_path


def generate_multisite_cohort(out_dir: str | Path, sites: Mapping[str, int], seed: int = 0, *,
                              jobs: int = 1, progress: bool = True, images: bool = True
                              ) -> Path:
    """Generate several sites into one cohort and return the path of ``out_dir/manifest.csv``.

    Each site's patients are generated with its
    :func:`~workbench.cohort.synth_settings.site_settings` and ID prefix (``SYN0001``...,
    ``SCB0001``...: IDs never clash) from its own cohort seed :func:`site_seed`, so they are
    the same whatever other sites are asked for. ``manifest.csv`` (the columns of
    :func:`generate_cohort` plus ``site``) and ``truth.csv`` (plus ``site``) list the sites
    in the order of ``sites``; ``synth_summary.json`` records ``sites`` (name -> n),
    ``site_seeds``, the pooled pCR rate and, under ``by_site``, each site's summary as
    :func:`generate_cohort` writes it (settings, intercepts, rates, ``site_shift`` against the
    development site). Its ``"site"`` is ``"multisite"``, so the folder never passes for a
    single-site cohort.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    sites
        Patients per site, e.g. ``{"development": 80, "second_scanner": 80}``; keys of
        :data:`~workbench.cohort.synth_settings.SITES`.
    seed
        Cohort seed; site ``s`` plays the seed ``site_seed(seed, s)``.
    jobs, progress, images
        As for :func:`generate_cohort`; the imaging path runs every site's patients in one
        batch.

    Raises
    ------
    ConfigError
        On an empty ``sites``, an unknown site, a count that is not an integer >= 1, or an
        invalid ``seed``, ``jobs`` or ``images``.
    WorkbenchError
        If a patient cannot be generated (names the patient).
    """
    if not isinstance(sites, Mapping) or not sites:
        raise ConfigError("sites must be a non-empty mapping {site: number of patients}, e.g. "
                          f"{{'development': 80, 'second_scanner': 80}}; got {sites!r}",
                          step="synth")
    _check_arguments(1, seed, jobs, images)  # the counts are checked per site below
    for site, n in sites.items():
        site_settings(site)  # an unknown site: the message lists the allowed ones
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"sites[{site!r}] (its number of patients) must be an integer "
                              f">= 1; got {n!r}", step="synth")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    seeds = {site: site_seed(seed, site) for site in sites}
    log.info("generating a %s synthetic cohort%s (seed %d) into %s",
             " + ".join(f"{n} {s}" for s, n in sites.items()),
             "" if images else " without images", seed, out)
    specs = [_PatientSpec(seeds[site], i, site_settings(site), site_prefix(site))
             for site, n in sites.items() for i in range(n)]
    manifest, truth = _patient_tables(out, specs, images=images, jobs=jobs, progress=progress)
    site_of = [site for site, n in sites.items() for _ in range(n)]
    manifest["site"] = site_of
    truth["site"] = site_of
    manifest_path = out / "manifest.csv"
    atomic_write_text(manifest_path, manifest.to_csv(index=False))
    atomic_write_text(out / "truth.csv", truth.to_csv(index=False))
    by_site = {}
    for site, n in sites.items():
        settings = site_settings(site)
        part = _summary(truth[truth["site"] == site], n=n, seed=seeds[site], jobs=jobs,
                        settings=settings, calib=calibration(settings), seconds=0.0)
        for shared in ("jobs", "generation_seconds", "versions"):  # recorded once, on top
            del part[shared]
        by_site[site] = {**part, "id_prefix": site_prefix(site),
                         "site_shift": _shift_json(settings)}
    summary = {
        "site": "multisite",
        "sites": {site: int(n) for site, n in sites.items()},
        "n": int(sum(sites.values())),
        "seed": int(seed),
        "site_seeds": seeds,
        "jobs": int(jobs),
        "images": bool(images),
        "pcr_rate": float(truth["pcr"].mean()),
        "by_site": by_site,
        "generation_seconds": round(time.perf_counter() - start, 2),
        "versions": _versions(),
    }
    atomic_write_text(out / "synth_summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("multi-site synthetic cohort written: %s (pCR rate %.2f)", manifest_path,
             summary["pcr_rate"])
    return manifest_path


def _shift_json(settings: SynthSettings) -> dict[str, list]:
    """:func:`site_shift_summary` against the development site, JSON-ready."""
    return {k: list(v) for k, v in site_shift_summary(SITES["development"], settings).items()}


def _patient_tables(out: Path, specs: list[_PatientSpec], *, images: bool, jobs: int,
                    progress: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest and truth tables of ``specs``, in their order (images written if asked)."""
    if images:
        return _imaging_rows(out, specs, jobs=jobs, progress=progress)
    rows = [clinical_patient(s.seed, s.index, s.settings, prefix=s.prefix) for s in specs]
    return (pd.DataFrame([r[0] for r in rows])[CLINICAL_MANIFEST_COLUMNS],
            pd.DataFrame([r[1] for r in rows]))


def _imaging_rows(out: Path, specs: list[_PatientSpec], *, jobs: int, progress: bool
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate and write every patient's images; the manifest and truth tables."""
    work = [Job(patient_id(s.index, s.prefix), _write_patient,
                (out, s.seed, s.index, s.settings, s.prefix), step="synth", tag=k)
            for k, s in enumerate(specs)]
    outcomes = sorted(run_batch(work, workers=jobs, progress=progress,
                                desc="synthetic cohort"), key=lambda o: o.job.tag)
    failed = [o.problem for o in outcomes if not o.ok]
    if failed:
        first = failed[0]
        raise WorkbenchError(f"{len(failed)} of {len(specs)} patients could not be generated; "
                             f"first: {first['message']}", patient=first["patient_id"],
                             step=first["step"], path=first["file"])
    rows = [o.value for o in outcomes]
    return (pd.DataFrame([r["manifest"] for r in rows])[MANIFEST_COLUMNS],
            pd.DataFrame([r["truth"] for r in rows]))


def _summary(truth: pd.DataFrame, *, n: int, seed: int, jobs: int, settings: SynthSettings,
             calib, seconds: float) -> dict:
    pcr = truth["pcr"].to_numpy()
    realised = (float(roc_auc_score(pcr, truth["true_probability"]))
                if 0 < pcr.sum() < len(pcr) else None)
    by_subtype = {s: (float(truth.loc[truth["subtype"] == s, "pcr"].mean())
                      if (truth["subtype"] == s).any() else None) for s in SUBTYPES}
    counts = {s: int((truth["subtype"] == s).sum()) for s in SUBTYPES}
    voxels = (truth["size_x"] * truth["size_y"] * truth["size_z"]
              if "size_x" in truth else None)
    return {
        "n": int(n),
        "seed": int(seed),
        "jobs": int(jobs),
        "settings": settings.as_dict(),
        "pcr_rate": float(pcr.mean()),
        "pcr_rate_by_subtype": by_subtype,
        "subtype_mix": {s: counts[s] / n for s in SUBTYPES},
        "subtype_counts": counts,
        "oracle_auc_realised": realised,
        "oracle_auc_population": float(calib.population_auc),
        "expected_pcr_rate": float(calib.expected_pcr_rate),
        "expected_pcr_rate_by_subtype": dict(zip(SUBTYPES, calib.expected_rate_by_subtype,
                                                 strict=True)),
        "intercepts": dict(zip(SUBTYPES, calib.intercepts, strict=True)),
        "voxels_per_phase": (None if voxels is None else
                             {"mean": float(voxels.mean()), "max": int(voxels.max())}),
        "generation_seconds": round(float(seconds), 2),
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    return {
        "workbench": workbench.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "SimpleITK": sitk.Version_VersionString(),
        "python": platform.python_version(),
    }
