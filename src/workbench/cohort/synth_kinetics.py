"""Contrast kinetics and MR signal for the synthetic cohort.

* **Parker population AIF** (Parker et al., MRM 2006;56:993-1000): blood concentration
  ``Cb(t) = sum_n A_n/(s_n sqrt(2 pi)) exp(-(t-T_n)^2 / (2 s_n^2)) + a exp(-b t) /
  (1 + exp(-s (t - tau)))`` (t in minutes, mM), plasma ``Cp = Cb / (1 - Hct)``.
* **Standard Tofts model**: ``Ct(T) = Ktrans * integral_0^T Cp(t) exp(-kep (T - t)) dt``
  with ``kep = Ktrans / ve``. The integral is tabulated once per time point on a fine
  log-``kep`` grid, so a voxel costs one interpolation.
* **Spoiled gradient echo** (SPGR, full nonlinear equation, no linear approximation):
  ``S = M0 sin(a) (1 - E1) / (1 - cos(a) E1)``, ``E1 = exp(-TR R1)``, with
  ``R1 = 1/T1_0 + r1 Ct`` (fast-exchange, relaxivity ``r1`` in /mM/s); T2* ignored.
* **Rician noise**: the magnitude of the signal plus complex Gaussian noise,
  ``|S + sigma (n1 + i n2)|``, so air shows the Rayleigh floor ``sigma sqrt(pi/2)``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

# Parker et al. 2006, population-averaged AIF (times in minutes, concentrations in mM).
PARKER_AIF = {
    "A1": 0.809, "A2": 0.330, "T1": 0.17046, "T2": 0.365, "sigma1": 0.0563,
    "sigma2": 0.132, "alpha": 1.050, "beta": 0.1685, "s": 38.078, "tau": 0.483,
}
_LOG_KEP = np.linspace(np.log(1e-4), np.log(50.0), 512)  # kep grid, /min
_DT_MIN = 0.002


@dataclasses.dataclass(frozen=True)
class Tissue:
    """Native relaxation, proton density and kinetic parameters of one tissue (1.5 T)."""

    t1_ms: float
    m0: float
    ktrans_per_min: float = 0.0
    ve: float = 0.0


# Literature-order values at 1.5 T (fat short T1, fibroglandular ~1.3 s, tumour ~1.1 s).
TISSUES: dict[str, Tissue] = {
    "fat": Tissue(t1_ms=300.0, m0=0.90),
    "fibroglandular": Tissue(t1_ms=1260.0, m0=0.80, ve=0.30),   # Ktrans = per-patient BPE
    "tumour": Tissue(t1_ms=1100.0, m0=0.85),                     # Ktrans, ve = per-voxel maps
    "necrosis": Tissue(t1_ms=1800.0, m0=0.90, ktrans_per_min=0.003, ve=0.60),
    "muscle": Tissue(t1_ms=1000.0, m0=0.75, ktrans_per_min=0.05, ve=0.12),
    "skin": Tissue(t1_ms=900.0, m0=0.70, ktrans_per_min=0.04, ve=0.30),
    "lung": Tissue(t1_ms=1200.0, m0=0.04),
}


def parker_blood_aif(t_min: np.ndarray) -> np.ndarray:
    """Parker population AIF: whole-blood gadolinium concentration (mM) at ``t_min``."""
    p = PARKER_AIF
    t = np.asarray(t_min, dtype=float)
    gauss = sum(p[f"A{n}"] / (p[f"sigma{n}"] * np.sqrt(2 * np.pi))
                * np.exp(-((t - p[f"T{n}"]) ** 2) / (2 * p[f"sigma{n}"] ** 2)) for n in (1, 2))
    tail = p["alpha"] * np.exp(-p["beta"] * t) / (1 + np.exp(-p["s"] * (t - p["tau"])))
    return np.where(t >= 0, gauss + tail, 0.0)


@functools.lru_cache(maxsize=64)
def _tofts_table(time_min: float, hematocrit: float) -> np.ndarray:
    """``integral_0^T Cp(t) exp(-kep (T - t)) dt`` on the :data:`_LOG_KEP` grid (mM min)."""
    t = np.arange(0.0, time_min + _DT_MIN / 2, _DT_MIN)
    cp = parker_blood_aif(t) / (1.0 - hematocrit)
    kep = np.exp(_LOG_KEP)[:, None]
    return np.trapezoid(cp[None, :] * np.exp(-kep * (t[-1] - t[None, :])), t, axis=1)


def tofts_concentration(ktrans: np.ndarray | float, ve: np.ndarray | float, time_min: float,
                        hematocrit: float = 0.42) -> np.ndarray:
    """Tissue concentration (mM) at ``time_min`` after injection, standard Tofts model.

    ``ktrans`` in /min, ``ve`` dimensionless (``ve <= 0`` or ``ktrans <= 0`` gives 0).
    """
    ktrans = np.asarray(ktrans, dtype=float)
    ve = np.asarray(ve, dtype=float)
    safe_ve = np.where(ve > 0, ve, 1.0)
    kep = np.where((ktrans > 0) & (ve > 0), ktrans / safe_ve, np.exp(_LOG_KEP[0]))
    table = _tofts_table(round(float(time_min), 6), round(float(hematocrit), 6))
    integral = np.interp(np.log(kep), _LOG_KEP, table)
    return np.where((ktrans > 0) & (ve > 0), ktrans * integral, 0.0)


def spgr_signal(m0: np.ndarray | float, r1_per_s: np.ndarray | float, tr_ms: float,
                flip_deg: float) -> np.ndarray:
    """Spoiled gradient echo steady-state signal for longitudinal rate ``r1_per_s``."""
    alpha = np.deg2rad(flip_deg)
    e1 = np.exp(-(tr_ms / 1000.0) * np.asarray(r1_per_s, dtype=np.float32))
    return (np.asarray(m0, dtype=np.float32) * np.float32(np.sin(alpha)) * (1 - e1)
            / (1 - np.float32(np.cos(alpha)) * e1))


def tissue_signal(tissue: Tissue, concentration: np.ndarray | float, *, tr_ms: float,
                  flip_deg: float, r1_per_mm_s: float, m0: float | None = None) -> np.ndarray:
    """SPGR signal of a tissue holding ``concentration`` mM of contrast agent."""
    r1 = 1000.0 / tissue.t1_ms + r1_per_mm_s * np.asarray(concentration, dtype=np.float32)
    return spgr_signal(tissue.m0 if m0 is None else m0, r1, tr_ms, flip_deg)


def add_rician_noise(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of standard deviation ``sigma``."""
    real = signal + np.float32(sigma) * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = np.float32(sigma) * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.sqrt(real * real + imag * imag)
