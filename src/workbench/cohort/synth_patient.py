"""One synthetic patient: latent draw, layout, anatomy, tumour, kinetics, signal, noise.

See :mod:`workbench.cohort.synthetic` for the model; this module only assembles it.
:func:`synthesize_patient` builds a patient with images, :func:`clinical_patient` the same
patient's table rows without them (same latent and label streams, so the same clinical
values and pCR label).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from threadpoolctl import threadpool_limits

from workbench.cohort.synth_anatomy import (
    TISSUE_LABELS,
    BreastLayout,
    Grid,
    bias_field,
    breast_anatomy,
    smooth_field,
)
from workbench.cohort.synth_kinetics import (
    TISSUES,
    add_rician_noise,
    tissue_signal,
    tofts_concentration,
)
from workbench.cohort.synth_latent import sample_latent, true_probability
from workbench.cohort.synth_settings import SynthSettings
from workbench.cohort.synth_tumour import max_feret, random_shape, tumour_maps, voxelize

PHASES = ("pre", "early", "late")
INT16_MAX = 32767


@dataclasses.dataclass
class SyntheticPatient:
    """Arrays (``[z, y, x]``), grid and table rows of one synthetic patient."""

    patient_id: str
    grid: Grid
    phases: dict[str, np.ndarray]      # int16
    mask: np.ndarray                   # uint8 0/1
    labels: np.ndarray                 # uint8, TISSUE_LABELS
    clinical: dict
    truth: dict

    def images(self) -> dict:
        """SimpleITK images ``pre``, ``early``, ``late``, ``mask``, ``tissue_labels``."""
        arrays = dict(self.phases, mask=self.mask, tissue_labels=self.labels)
        out = {}
        for name, array in arrays.items():
            image = sitk.GetImageFromArray(array)
            image.SetSpacing(self.grid.spacing)
            image.SetOrigin(self.grid.origin)
            image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
            out[name] = image
        return out


def patient_id(index: int, prefix: str = "SYN") -> str:
    """Identifier of the ``index``-th (0-based) synthetic patient: ``SYN0001``..."""
    return f"{prefix}{index + 1:04d}"


def _streams(seed: int, index: int) -> tuple[np.random.Generator, ...]:
    """Latent, label and image streams of patient ``index``."""
    root = np.random.SeedSequence(seed, spawn_key=(index,))
    return tuple(np.random.Generator(np.random.PCG64(s)) for s in root.spawn(3))


def _measurement_stream(seed: int, index: int) -> np.random.Generator:
    """Fourth child of the patient's seed (``mri_ld_mm`` noise of an image-less patient);
    independent of :func:`_streams`, whose three children it leaves untouched."""
    child = np.random.SeedSequence(seed, spawn_key=(index, 3))
    return np.random.Generator(np.random.PCG64(child))


def _outcome(latent_rng: np.random.Generator, label_rng: np.random.Generator,
             settings: SynthSettings) -> tuple[dict, float, int]:
    """One latent patient, its true P(pCR) and its drawn pCR label (both paths share it)."""
    latent = {k: v[0] for k, v in sample_latent(latent_rng, 1, settings).items()}
    prob = float(true_probability({k: np.asarray([v]) for k, v in latent.items()},
                                  settings)[0])
    return latent, prob, int(label_rng.random() < prob)


def _clinical_row(pid: str, pcr: int, latent: dict, mri_ld: float) -> dict:
    """The manifest's patient, label and clinical columns."""
    return {
        "patient_id": pid, "pcr": pcr, "age": round(float(latent["age"]), 1),
        "race": latent["race"], "er": latent["er"], "pgr": latent["pgr"], "hr": latent["hr"],
        "her2": latent["her2"], "hr_her2": latent["hr_her2"],
        "laterality": latent["laterality"], "mri_ld_mm": mri_ld,
    }


def _latent_truth(pid: str, prob: float, pcr: int, latent: dict) -> dict:
    """Truth columns both paths share: the true probability, label and every latent."""
    return {
        "patient_id": pid, "true_probability": prob, "pcr": pcr,
        "subtype": latent["hr_her2"],
        "age": float(latent["age"]),
        "ktrans_mean": float(latent["ktrans_mean"]), "ve_mean": float(latent["ve_mean"]),
        "heterogeneity": float(latent["heterogeneity"]),
        "necrosis_fraction": float(latent["necrosis_fraction"]),
        "rim_enhancement": float(latent["rim_enhancement"]),
        "irregularity": float(latent["irregularity"]),
        "longest_diameter_mm": float(latent["longest_diameter_mm"]),
    }


def clinical_patient(seed: int, index: int, settings: SynthSettings | None = None, *,
                     prefix: str = "SYN") -> tuple[dict, dict]:
    """Patient ``index`` without images: its manifest row and its truth row.

    The latent and label streams are those of :func:`synthesize_patient`, so the clinical
    values and the pCR label are the imaging patient's, except ``mri_ld_mm``: with no mask
    to measure, it is the latent longest diameter plus N(0, 2 mm) measurement noise (from a
    fourth, separate stream), rounded to the millimetre (at least 1 mm).
    """
    s = settings or SynthSettings()
    latent_rng, label_rng, _ = _streams(seed, index)
    latent, prob, pcr = _outcome(latent_rng, label_rng, s)
    ld = float(latent["longest_diameter_mm"])
    mri_ld = float(max(round(ld + _measurement_stream(seed, index).normal(0.0, 2.0)), 1.0))
    pid = patient_id(index, prefix)
    truth = _latent_truth(pid, prob, pcr, latent)
    truth["mri_ld_mm"] = mri_ld
    return _clinical_row(pid, pcr, latent, mri_ld), truth


FIT = 0.8  # tumour points stay at q <= FIT inside the dome, room for the outline wobble


def _layout(rng: np.random.Generator, settings: SynthSettings, shape, laterality: str,
            spacing_xy: float, spacing_z: float) -> tuple[Grid, BreastLayout, np.ndarray, dict]:
    """Slab, breast and field of view placed around the tumour; returns its centre too.

    The breast dome (half-axes ``radius_x``, ``radius_y``, ``radius_z``) is drawn from
    typical prone-breast sizes, then enlarged just enough that every tumour surface point
    lies well inside it; the field of view then holds the breast with air margins.
    """
    lo, hi = shape.extent_mm()
    pts = shape.surface_points()[::3]
    # slab: the tumour plus margins, its centre wiggled within the slack
    z_extent = hi[2] - lo[2]
    n_z = int(math.ceil(max(z_extent + 2 * settings.slab_margin_mm, settings.min_slab_mm)
                        / spacing_z))
    slack = n_z * spacing_z - z_extent
    wiggle = max(slack / 2 - settings.slab_margin_mm / 2, 0.0)
    centre_z = -lo[2] + slack / 2 + rng.uniform(-1, 1) * wiggle
    radius_z = max(rng.uniform(80.0, 120.0), n_z * spacing_z)
    breast_z = centre_z + rng.uniform(-0.2, 0.2) * radius_z
    room = FIT * np.clip(1 - ((centre_z + pts[:, 2] - breast_z) / radius_z) ** 2, 0.05, 1)
    reach = np.sqrt(room)  # per point, the usable fraction of the dome's half-axes
    # depth of the tumour centre in front of the chest wall (y grows posteriorly)
    depth_min = float(np.max(pts[:, 1])) + 3.0
    radius_y = max(rng.uniform(55.0, 90.0),  # prone, pendant breast
                   float(np.max((depth_min - pts[:, 1]) / (0.9 * reach))) * 1.05)
    depth_max = float(np.min(0.9 * reach * radius_y + pts[:, 1]))
    depth = rng.uniform(depth_min, max(depth_min, depth_max))
    # half-width: each point needs (x / Rx)^2 <= room - (d / Ry)^2
    spare = np.sqrt(np.maximum(room - ((depth - pts[:, 1]) / radius_y) ** 2, 0.01))
    radius_x = max(rng.uniform(55.0, 72.0), float(np.max(np.abs(pts[:, 0]) / spare)) + 3.0)
    half = radius_x * spare
    offset_x = rng.uniform(float(np.max(-half - pts[:, 0])), float(np.min(half - pts[:, 0])))

    air_x, air_y = rng.uniform(8.0, 15.0), rng.uniform(6.0, 14.0)
    posterior = rng.uniform(22.0, 32.0)
    fov = max(rng.uniform(*settings.fov_mm), 2 * radius_x + 2 * air_x,
              air_y + radius_y + posterior)
    # voxel budget: very large tumours get a tighter field of view that crops the breast
    budget_fov = math.sqrt(settings.max_voxels / n_z) * spacing_xy
    tumour_fov = max(hi[0] - lo[0], hi[1] - lo[1]) + 10.0
    fov = min(fov, settings.fov_max_mm, max(budget_fov, tumour_fov))
    # spare anterior-posterior room goes partly to air in front, partly to the thorax
    air_y += rng.uniform(0.3, 0.7) * max(fov - (air_y + radius_y + posterior), 0.0)
    n_xy = int(round(fov / spacing_xy))
    width = n_xy * spacing_xy
    centre_x = width / 2 + rng.uniform(-3.0, 3.0)
    # keep the whole tumour at least 4 mm inside a cropped field of view
    tumour_x = centre_x + offset_x + np.array([lo[0], hi[0]])
    centre_x += max(0.0, 4.0 - tumour_x[0]) - max(0.0, tumour_x[1] - (width - 4.0))
    air_y -= max(0.0, air_y + radius_y - depth + hi[1] - (width - 4.0))
    chest_wall = air_y + radius_y
    layout = BreastLayout(
        centre_x=centre_x, chest_wall_y=chest_wall, radius_x=radius_x, radius_y=radius_y,
        radius_z=radius_z, centre_z=breast_z,
        rib_radius=rng.uniform(120.0, 200.0), tilt=rng.uniform(0.05, 0.3),
        laterality=laterality, subcutaneous_mm=rng.uniform(4.0, 10.0),
        muscle_mm=rng.uniform(8.0, 14.0), skin_mm=rng.uniform(1.5, 2.5))
    x0 = -width - rng.uniform(0.0, 30.0) if laterality == "right" else rng.uniform(0.0, 30.0)
    origin = (round(x0, 3), round(-rng.uniform(90.0, 140.0), 3),
              round(rng.uniform(-120.0, 20.0), 3))
    grid = Grid((n_z, n_xy, n_xy), (spacing_xy, spacing_xy, spacing_z), origin)
    centre = np.array([centre_x + offset_x, chest_wall - depth, centre_z])
    info = {"fov_mm": fov, "breast_radius_x_mm": radius_x, "breast_radius_y_mm": radius_y,
            "tumour_depth_mm": depth}
    return grid, layout, centre, info


def synthesize_patient(seed: int, index: int, settings: SynthSettings | None = None, *,
                       prefix: str = "SYN") -> SyntheticPatient:
    """Build patient ``index`` (0-based) of the cohort with ``seed``, in memory.

    ``prefix`` starts its ID (:func:`patient_id`). BLAS runs single-threaded here: a
    threaded matrix product may sum in a different order, and the arrays must be
    bit-identical whatever the machine or ``jobs``.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _synthesize(seed, index, settings or SynthSettings(), prefix)


def _synthesize(seed: int, index: int, settings: SynthSettings, prefix: str
                ) -> SyntheticPatient:
    s = settings
    latent_rng, label_rng, rng = _streams(seed, index)
    latent, prob, pcr = _outcome(latent_rng, label_rng, s)

    # acquisition
    spacing_xy = round(float(rng.uniform(*s.inplane_spacing_mm)), 4)
    spacing_z = round(float(rng.uniform(*s.slice_thickness_mm)), 4)
    times = {"early": s.early_time_min + rng.uniform(-1, 1) * s.timing_jitter_min,
             "late": s.late_time_min + rng.uniform(-1, 1) * s.timing_jitter_min}
    density = rng.uniform(*s.fgt_fraction)
    bpe = rng.uniform(*s.bpe_ktrans_per_min)
    bias_amp = rng.uniform(*s.bias_amplitude)
    noise_frac = rng.uniform(*s.noise_fraction)
    fgt_level = rng.uniform(250.0, 600.0)

    shape = random_shape(rng, float(latent["longest_diameter_mm"]), float(latent["irregularity"]))
    grid, layout, centre, info = _layout(rng, s, shape, str(latent["laterality"]),
                                         spacing_xy, spacing_z)
    anat = breast_anatomy(rng, grid, layout, density=density)
    vox = voxelize(shape, centre, grid, anat["tumour_allowed"])
    maps = tumour_maps(rng, vox, grid, ktrans_mean=float(latent["ktrans_mean"]),
                       ve_mean=float(latent["ve_mean"]),
                       heterogeneity=float(latent["heterogeneity"]),
                       necrosis_fraction=float(latent["necrosis_fraction"]),
                       rim_enhancement=float(latent["rim_enhancement"]))
    zyx = (grid.spacing[2], grid.spacing[1], grid.spacing[0])
    bpe_map = bpe * np.exp(0.5 * smooth_field(rng, grid.shape, zyx, corr_mm=20.0) - 0.125)
    bias = bias_field(rng, grid, anat["body"], bias_amp)

    sig = {"tr_ms": s.tr_ms, "flip_deg": s.flip_deg, "r1_per_mm_s": s.r1_per_mm_s}
    fgt_pre = float(tissue_signal(TISSUES["fibroglandular"], 0.0, **sig))
    gain = fgt_level / fgt_pre
    sigma = noise_frac * fgt_level
    box, f_t = vox.box, vox.fraction
    phases: dict[str, np.ndarray] = {}
    for phase in PHASES:
        t = times.get(phase)

        def conc(ktrans, ve, t=t):
            return 0.0 if t is None else tofts_concentration(ktrans, ve, t, s.hematocrit)

        signal = np.zeros(grid.shape, np.float32)
        for name in ("muscle", "skin", "lung", "fat"):
            tissue = TISSUES[name]
            m0 = tissue.m0 * (s.fat_suppression_residual if name == "fat" else 1.0)
            value = float(tissue_signal(tissue, conc(tissue.ktrans_per_min, tissue.ve), m0=m0,
                                        **sig))
            signal += np.float32(value) * anat[name]
        fgt = TISSUES["fibroglandular"]
        signal += anat["fibroglandular"] * tissue_signal(fgt, conc(bpe_map, fgt.ve), **sig)
        nec = TISSUES["necrosis"]
        viable = tissue_signal(TISSUES["tumour"], conc(maps["ktrans"], maps["ve"]), **sig)
        necrotic = float(tissue_signal(nec, conc(nec.ktrans_per_min, nec.ve), **sig))
        tumour = (1 - maps["necrosis"]) * viable + maps["necrosis"] * np.float32(necrotic)
        signal[box] = (1 - f_t) * signal[box] + f_t * tumour
        signal *= np.float32(gain) * bias
        noisy = add_rician_noise(rng, signal, sigma)
        phases[phase] = np.clip(np.rint(noisy), 0, INT16_MAX).astype(np.int16)

    mask = np.zeros(grid.shape, np.uint8)
    mask[box] = f_t >= 0.5
    labels = _labels(anat, mask, box, maps["necrosis"])
    measured_ld, volume_ml = _measure(mask, grid)
    mri_ld = float(max(round(measured_ld + rng.normal(0.0, 2.0)), 1.0))

    in_mask = mask[box].astype(bool)
    weights = f_t[in_mask]
    nec_real = float((maps["necrosis"][in_mask] * weights).sum() / max(weights.sum(), 1e-9))
    pre = phases["pre"][box][in_mask].astype(float)
    early = phases["early"][box][in_mask].astype(float)
    enhancement = float((early.mean() - pre.mean()) / max(pre.mean(), 1e-9))

    pid = patient_id(index, prefix)
    clinical = _clinical_row(pid, pcr, latent, mri_ld)
    truth = _latent_truth(pid, prob, pcr, latent)
    truth.update({
        "measured_ld_mm": measured_ld, "mri_ld_mm": mri_ld, "volume_ml": volume_ml,
        "necrosis_fraction_realised": nec_real,
        "enhancement_early_mean": enhancement,
        "lobulation": shape.lobulation, "n_spicules": shape.n_spicules,
        "spiculation": shape.spiculation,
        "axis_ratio_b": shape.axis_ratios[1], "axis_ratio_c": shape.axis_ratios[2],
        "spacing_x": grid.spacing[0], "spacing_y": grid.spacing[1],
        "spacing_z": grid.spacing[2],
        "size_x": grid.shape[2], "size_y": grid.shape[1], "size_z": grid.shape[0],
        "origin_x": grid.origin[0], "origin_y": grid.origin[1], "origin_z": grid.origin[2],
        "fov_mm": info["fov_mm"], "tumour_depth_mm": info["tumour_depth_mm"],
        "breast_density": density, "bpe_ktrans": bpe, "bias_amplitude": bias_amp,
        "noise_sigma": sigma, "fgt_pre_level": fgt_level,
        "early_time_min": times["early"], "late_time_min": times["late"],
    })
    return SyntheticPatient(pid, grid, phases, mask, labels, clinical, truth)


def _labels(anat: dict, mask: np.ndarray, box, necrosis: np.ndarray) -> np.ndarray:
    """Dominant tissue per voxel (:data:`TISSUE_LABELS`), tumour and necrosis on top."""
    names = ("fat", "fibroglandular", "skin", "muscle", "lung")
    stack = np.stack([anat[n] for n in names])
    labels = np.where(stack.max(axis=0) >= 0.5,
                      np.asarray([TISSUE_LABELS[n] for n in names], np.uint8)[stack.argmax(0)],
                      TISSUE_LABELS["air"]).astype(np.uint8)
    labels[mask.astype(bool)] = TISSUE_LABELS["tumour"]
    sub = labels[box]
    sub[(mask[box] > 0) & (necrosis >= 0.5)] = TISSUE_LABELS["necrosis"]
    return labels


def _measure(mask: np.ndarray, grid: Grid) -> tuple[float, float]:
    """Maximum 3-D Feret diameter (mm) and volume (ml) of a binary mask."""
    m = mask.astype(bool)
    volume = float(m.sum()) * float(np.prod(grid.spacing)) / 1000.0
    if not m.any():
        return 0.0, volume
    edge = m & ~ndimage.binary_erosion(m)
    zyx = np.argwhere(edge)
    points = zyx[:, ::-1] * np.asarray(grid.spacing)
    return max_feret(points), volume
