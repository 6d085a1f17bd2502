"""Tumour shape and kinetic-parameter maps of the synthetic cohort.

Shape: a star-shaped surface ``r(u) = e(u) * (1 + L(u)) * (1 + S(u))`` over directions
``u`` on the sphere, where ``e`` is the radius of an anisotropic ellipsoid (axes
``1 : b : c``, randomly rotated about the cranio-caudal axis with small tilts), ``L`` a
random real spherical-harmonic expansion of degrees 2-6 (lobulation, RMS amplitude grows
with the latent irregularity) and ``S`` a sum of narrow von Mises bumps (spicules, count and
length grow with irregularity). The surface is tabulated on a 2-degree (theta, phi) grid
and scaled so that its maximum Feret diameter equals the latent longest diameter.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.special import expit, lpmv

from workbench.cohort.synth_anatomy import Grid, smooth_field

N_THETA, N_PHI = 90, 180
EDGE_MM = 1.0  # partial-volume ramp of the tumour boundary
LOBULATION_DEGREES = range(2, 7)


@functools.lru_cache(maxsize=1)
def _sphere() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polar angle, azimuth and unit vectors of the (theta, phi) table (read-only)."""
    theta = (np.arange(N_THETA) + 0.5) * np.pi / N_THETA
    phi = np.arange(N_PHI) * 2 * np.pi / N_PHI
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    u = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1)
    for array in (th, ph, u):
        array.flags.writeable = False
    return th, ph, u


def _real_sph_harm(degree: int, order: int, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Orthonormal real spherical harmonic ``Y_lm`` (``theta`` polar, ``phi`` azimuth)."""
    am = abs(order)
    norm = math.sqrt((2 * degree + 1) / (4 * math.pi)
                     * math.factorial(degree - am) / math.factorial(degree + am))
    legendre = lpmv(am, degree, np.cos(theta))
    if order == 0:
        return norm * legendre
    trig = np.cos(am * phi) if order > 0 else np.sin(am * phi)
    return math.sqrt(2) * norm * legendre * trig


@functools.lru_cache(maxsize=1)
def _harmonic_basis() -> dict[int, np.ndarray]:
    """``Y_lm`` on the table for degrees 2-6: ``{l: array (2l+1, N_THETA, N_PHI)}``."""
    th, ph, _ = _sphere()
    return {deg: np.stack([_real_sph_harm(deg, m, th, ph) for m in range(-deg, deg + 1)])
            for deg in LOBULATION_DEGREES}


def max_feret(points: np.ndarray) -> float:
    """Largest distance between two of ``points`` (N x 3, mm), via their convex hull."""
    pts = np.asarray(points, dtype=float)
    if len(pts) < 2:
        return 0.0
    try:
        pts = pts[ConvexHull(pts).vertices]
    except Exception:  # noqa: BLE001 - degenerate (flat) point sets: use all points
        pass
    sq = (pts**2).sum(axis=1)
    best = 0.0
    for start in range(0, len(pts), 1024):  # |a-b|^2 = |a|^2 + |b|^2 - 2ab, in chunks
        chunk = pts[start:start + 1024]
        d2 = sq[start:start + 1024, None] + sq[None, :] - 2.0 * chunk @ pts.T
        best = max(best, float(d2.max()))
    return math.sqrt(max(best, 0.0))


@dataclasses.dataclass(frozen=True)
class TumourShape:
    """Tabulated tumour surface: ``radius_mm[theta, phi]`` in the tumour frame.

    ``rotation`` maps tumour-frame vectors to patient ``(x, y, z)``.
    """

    radius_mm: np.ndarray
    rotation: np.ndarray
    axis_ratios: tuple[float, float, float]
    lobulation: float
    n_spicules: int
    spiculation: float

    def surface_points(self) -> np.ndarray:
        """Surface points relative to the centre, patient frame (N x 3, mm)."""
        _, _, u = _sphere()
        return (self.radius_mm[..., None] * u).reshape(-1, 3) @ self.rotation.T

    def extent_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest ``(x, y, z)`` of the surface relative to the centre."""
        pts = self.surface_points()
        return pts.min(axis=0), pts.max(axis=0)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    psi = rng.uniform(0, 2 * np.pi)
    tilt_x, tilt_y = np.deg2rad(rng.uniform(-15, 15, 2))
    rz = np.array([[np.cos(psi), -np.sin(psi), 0], [np.sin(psi), np.cos(psi), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(tilt_x), -np.sin(tilt_x)],
                   [0, np.sin(tilt_x), np.cos(tilt_x)]])
    ry = np.array([[np.cos(tilt_y), 0, np.sin(tilt_y)], [0, 1, 0],
                   [-np.sin(tilt_y), 0, np.cos(tilt_y)]])
    return rz @ rx @ ry


def random_shape(rng: np.random.Generator, longest_diameter_mm: float,
                 irregularity: float) -> TumourShape:
    """Draw a perturbed-ellipsoid surface whose maximum Feret diameter is the given one."""
    th, ph, u = _sphere()
    b = rng.uniform(0.65, 0.95)
    c = b * rng.uniform(0.65, 0.95)
    ellipsoid = 1.0 / np.sqrt(u[..., 0] ** 2 + (u[..., 1] / b) ** 2 + (u[..., 2] / c) ** 2)

    area = np.sin(th)  # quadrature weights for the RMS over the sphere
    lobes = np.zeros_like(th)
    for degree, basis in _harmonic_basis().items():
        coefs = rng.normal(0.0, 1.0 / degree, 2 * degree + 1)
        lobes += np.tensordot(coefs, basis, axes=1)
    lobulation = 0.03 + 0.15 * irregularity
    lobes *= lobulation / math.sqrt(float((lobes**2 * area).sum() / area.sum()))

    n_spicules = int(rng.poisson(30.0 * min(max((irregularity - 0.3) / 0.7, 0.0), 1.0)))
    spiculation = 0.6 * irregularity
    spikes = np.zeros_like(th)
    if n_spicules:
        dirs = rng.normal(size=(n_spicules, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        width = np.deg2rad(rng.uniform(3.0, 7.0, n_spicules))
        length = spiculation * rng.uniform(0.3, 1.0, n_spicules)
        cosang = u.reshape(-1, 3) @ dirs.T
        spikes = (length * np.exp((cosang - 1.0) / width**2)).sum(axis=1).reshape(th.shape)

    radius = ellipsoid * np.clip(1.0 + lobes, 0.4, None) * (1.0 + spikes)
    rotation = _rotation(rng)
    sub = (radius[::2, ::2, None] * u[::2, ::2]).reshape(-1, 3)
    radius = radius * (longest_diameter_mm / max_feret(sub))
    return TumourShape(radius, rotation, (1.0, float(b), float(c)), float(lobulation),
                       n_spicules, float(spiculation))


@dataclasses.dataclass
class TumourVoxels:
    """The tumour on the patient grid, restricted to its bounding box ``box``.

    ``fraction``: partial-volume tumour fraction; ``rho``: normalised radius
    ``|v| / r(u)`` (0 at the centre, 1 on the surface).
    """

    box: tuple[slice, slice, slice]
    fraction: np.ndarray
    rho: np.ndarray


def voxelize(shape: TumourShape, centre_mm: np.ndarray, grid: Grid,
             allowed: np.ndarray) -> TumourVoxels:
    """Rasterise ``shape`` centred at ``centre_mm`` (x, y, z from the first voxel)."""
    lo, hi = shape.extent_mm()
    spacing = np.asarray(grid.spacing)
    first = np.floor((centre_mm + lo - 2 * EDGE_MM) / spacing).astype(int)
    last = np.ceil((centre_mm + hi + 2 * EDGE_MM) / spacing).astype(int)
    size_xyz = np.asarray(grid.shape[::-1])
    first, last = np.clip(first, 0, size_xyz - 1), np.clip(last, 0, size_xyz - 1)
    box = tuple(slice(int(first[a]), int(last[a]) + 1) for a in (2, 1, 0))
    axes = [(np.arange(box[k].start, box[k].stop) * spacing[a] - centre_mm[a])
            for k, a in ((0, 2), (1, 1), (2, 0))]
    dz, dy, dx = np.meshgrid(*axes, indexing="ij")
    v = np.stack([dx, dy, dz], axis=-1) @ shape.rotation  # to the tumour frame
    r = np.linalg.norm(v, axis=-1)
    safe = np.maximum(r, 1e-9)
    theta = np.arccos(np.clip(v[..., 2] / safe, -1, 1))
    phi = np.mod(np.arctan2(v[..., 1], v[..., 0]), 2 * np.pi)
    table = np.concatenate([shape.radius_mm, shape.radius_mm[:, :1]], axis=1)  # wrap phi
    coords = np.stack([theta / np.pi * N_THETA - 0.5, phi / (2 * np.pi) * N_PHI])
    radius = ndimage.map_coordinates(table, coords.reshape(2, -1), order=1, mode="nearest")
    radius = radius.reshape(r.shape)
    fraction = np.clip(0.5 + (radius - r) / EDGE_MM, 0.0, 1.0) * allowed[box]
    return TumourVoxels(box, fraction.astype(np.float32), (r / radius).astype(np.float32))


def tumour_maps(rng: np.random.Generator, vox: TumourVoxels, grid: Grid, *, ktrans_mean: float,
                ve_mean: float, heterogeneity: float, necrosis_fraction: float,
                rim_enhancement: float) -> dict[str, np.ndarray]:
    """Per-voxel ``ktrans`` (/min), ``ve`` and necrotic weight ``necrosis`` in the box.

    Viable tumour Ktrans is a lognormal smooth field (correlation ~4 mm, coefficient of
    variation = ``heterogeneity``) times a rim profile ``1 + rim * clip((rho-0.5)/0.5)^2``,
    rescaled so its fraction-weighted mean over the viable tumour is ``ktrans_mean``. ve
    varies half as much. The necrotic core is ``rho < necrosis_fraction^(1/3)``, its border
    perturbed by a smooth field, so its volume fraction is close to ``necrosis_fraction``.
    """
    shape = vox.fraction.shape
    zyx = (grid.spacing[2], grid.spacing[1], grid.spacing[0])
    g_k = smooth_field(rng, shape, zyx, corr_mm=4.0)
    g_v = smooth_field(rng, shape, zyx, corr_mm=6.0)
    g_n = smooth_field(rng, shape, zyx, corr_mm=8.0)
    sigma = math.sqrt(math.log1p(heterogeneity**2))
    lognormal = np.exp(np.float32(sigma) * g_k - np.float32(sigma**2 / 2))
    rim = 1.0 + rim_enhancement * np.clip((vox.rho - 0.5) / 0.5, 0.0, 1.0) ** 2
    if necrosis_fraction > 0:
        core = necrosis_fraction ** (1 / 3) * (1.0 + 0.12 * g_n)
        necrosis = expit((core - vox.rho) / 0.04).astype(np.float32)
    else:
        necrosis = np.zeros(shape, np.float32)
    raw = lognormal * rim
    weight = vox.fraction * (1.0 - necrosis)
    mean_raw = float((raw * weight).sum() / max(float(weight.sum()), 1e-9))
    ktrans = (ktrans_mean / max(mean_raw, 1e-9)) * raw
    sigma_v = sigma / 2
    ve = np.clip(ve_mean * np.exp(np.float32(sigma_v) * g_v - np.float32(sigma_v**2 / 2)),
                 0.05, 0.9)
    return {"ktrans": ktrans.astype(np.float32), "ve": ve.astype(np.float32),
            "necrosis": necrosis}
