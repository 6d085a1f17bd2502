"""Grid, breast anatomy, smooth random fields and bias field of the synthetic cohort.

Arrays are indexed ``[z, y, x]`` (SimpleITK's ``GetArrayFromImage`` order); physical axes
are LPS with an identity direction: ``x`` towards the patient's left, ``y`` posterior,
``z`` superior. Lengths are in mm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

TISSUE_LABELS = {"air": 0, "fat": 1, "fibroglandular": 2, "skin": 3, "muscle": 4, "lung": 5,
                 "tumour": 6, "necrosis": 7}


@dataclasses.dataclass(frozen=True)
class Grid:
    """A voxel grid: ``shape`` is ``(nz, ny, nx)``; spacing and origin are ``(x, y, z)``."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable ``z, y, x`` voxel-centre coordinates in mm from the first voxel."""
        nz, ny, nx = self.shape
        sx, sy, sz = self.spacing
        z = (np.arange(nz, dtype=np.float32) * np.float32(sz))[:, None, None]
        y = (np.arange(ny, dtype=np.float32) * np.float32(sy))[None, :, None]
        x = (np.arange(nx, dtype=np.float32) * np.float32(sx))[None, None, :]
        return z, y, x

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))


def _smoothing_matrix(n: int, step_mm: float, sigma_mm: float) -> np.ndarray:
    """Rows: Gaussian weights of coarse nodes for each voxel, unit sum of squares."""
    x = np.arange(n) * step_mm
    h = 1.5 * sigma_mm  # node spacing 1.5 kernel widths: stationary to ~2 %, 3x fewer nodes
    nodes = np.arange(-3 * sigma_mm, x[-1] + 3 * sigma_mm + h, h)
    w = np.exp(-((x[:, None] - nodes[None, :]) ** 2) / (2 * sigma_mm**2))
    return (w / np.sqrt((w**2).sum(axis=1, keepdims=True))).astype(np.float32)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int, int],
                 spacing_zyx: tuple[float, float, float], corr_mm: float) -> np.ndarray:
    """Stationary Gaussian random field, zero mean and unit variance at every voxel.

    White noise on a coarse node lattice (node spacing ``0.75 corr_mm``) is spread with a
    separable Gaussian kernel of width ``corr_mm / 2`` (rows normalised to unit variance);
    separability makes this three small matrix products instead of a 3-D convolution. The
    correlation between two voxels ``d`` mm apart is about ``exp(-(d / corr_mm)^2)``.
    """
    sigma = corr_mm / 2.0
    mats = [_smoothing_matrix(n, s, sigma) for n, s in zip(shape, spacing_zyx, strict=True)]
    noise = rng.standard_normal(tuple(m.shape[1] for m in mats), dtype=np.float32)
    out = np.tensordot(noise, mats[2], axes=([2], [1]))              # (cz, cy, nx)
    out = np.tensordot(mats[1], out, axes=([1], [1])).transpose(1, 0, 2)  # (cz, ny, nx)
    out = np.tensordot(mats[0], out, axes=([1], [0]))                # (nz, ny, nx)
    return out.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class BreastLayout:
    """Where the breast sits in the field of view (mm, relative to the first voxel).

    ``centre_x``: dome axis; ``chest_wall_y``: dome base at ``centre_x``; ``radius_x`` /
    ``radius_y`` / ``radius_z``: dome half-width, depth (anterior extent) and cranio-caudal
    semi-axis, centred at ``centre_z``; ``rib_radius``: chest-wall curvature; ``tilt``:
    posterior slope of the chest wall towards the lateral side; ``laterality``.
    """

    centre_x: float
    chest_wall_y: float
    radius_x: float
    radius_y: float
    radius_z: float
    centre_z: float
    rib_radius: float
    tilt: float
    laterality: str
    subcutaneous_mm: float
    muscle_mm: float
    skin_mm: float


def chest_wall_y(layout: BreastLayout, x: np.ndarray) -> np.ndarray:
    """Anterior surface of the pectoral muscle at lateral position ``x``."""
    lateral = (x - layout.centre_x) if layout.laterality == "left" else (layout.centre_x - x)
    return (layout.chest_wall_y + (x - layout.centre_x) ** 2 / (2 * layout.rib_radius)
            + layout.tilt * lateral)


def breast_anatomy(rng: np.random.Generator, grid: Grid, layout: BreastLayout, *,
                   density: float) -> dict[str, np.ndarray]:
    """Tissue fractions (float32 in [0, 1]) of air-free body tissues on ``grid``.

    Returns ``fat``, ``fibroglandular``, ``skin``, ``muscle``, ``lung`` fractions,
    ``body`` (bool, inside the patient) and ``tumour_allowed`` (bool: breast, subcutaneous
    fat or muscle; not lung). Fibroglandular tissue is a two-scale smooth random field
    (correlations ~8 and ~3 mm) plus a central "cone" weight, soft-thresholded so that
    ``density`` of the breast dome is fibroglandular.
    """
    z, y, x = grid.axes_mm()
    zyx_spacing = (grid.spacing[2], grid.spacing[1], grid.spacing[0])
    shrink = np.sqrt(np.clip(1 - ((z - layout.centre_z) / layout.radius_z) ** 2, 0.05, 1))
    # a very smooth random modulation keeps the breast outline from being a perfect ellipse
    outline = 1.0 + np.float32(0.07) * smooth_field(rng, grid.shape, zyx_spacing, corr_mm=50.0)
    q = (((x - layout.centre_x) / (layout.radius_x * shrink)) ** 2
         + ((layout.chest_wall_y - y) / (layout.radius_y * shrink)) ** 2) * outline
    cw = chest_wall_y(layout, x)
    anterior = y <= cw
    dome = (q <= 1.0) & anterior
    subcut = anterior & (y >= cw - layout.subcutaneous_mm)
    muscle = (~anterior) & (y <= cw + layout.muscle_mm)
    lung = (~anterior) & ~muscle
    body = dome | subcut | ~anterior
    body = np.broadcast_to(body, grid.shape)

    # Skin: the anterior body surface, found by in-plane erosion (slab ends are cut, not skin).
    n_erode = max(1, int(round(layout.skin_mm / grid.spacing[0])))
    inner = ndimage.binary_erosion(body, structure=np.ones((1, 3, 3), bool),
                                   iterations=n_erode, border_value=1)
    skin = body & ~inner & np.broadcast_to(anterior, grid.shape)

    # Fibroglandular tissue: random texture + central cone weight, soft-thresholded.
    texture = (np.float32(0.85) * smooth_field(rng, grid.shape, zyx_spacing, corr_mm=8.0)
               + np.float32(0.5) * smooth_field(rng, grid.shape, zyx_spacing, corr_mm=3.0))
    cone = 1.0 - np.sqrt(np.clip(q, 0, 1))
    score = texture + np.float32(2.0) * cone
    inside = dome & ~skin
    if np.any(inside):
        thresh = np.quantile(score[inside], 1.0 - density)
    else:  # pragma: no cover - the layout always holds a dome
        thresh = np.inf
    fgt = (1.0 / (1.0 + np.exp(-(score - thresh) / np.float32(0.2)))).astype(np.float32)
    fgt *= inside

    f_skin = skin.astype(np.float32)
    f_muscle = (np.broadcast_to(muscle, grid.shape) & ~skin).astype(np.float32)
    f_lung = np.broadcast_to(lung, grid.shape).astype(np.float32)
    soft = (body & np.broadcast_to(anterior, grid.shape) & ~skin).astype(np.float32)
    f_fat = soft - fgt
    return {
        "fat": f_fat, "fibroglandular": fgt, "skin": f_skin, "muscle": f_muscle,
        "lung": f_lung, "body": body, "tumour_allowed": body & ~np.broadcast_to(lung, grid.shape),
    }


def bias_field(rng: np.random.Generator, grid: Grid, body: np.ndarray,
               amplitude: float) -> np.ndarray:
    """Smooth multiplicative receive-coil bias, ``max / min = 1 + amplitude`` over the body.

    ``exp(log(1 + amplitude) * q)`` with ``q`` a very smooth random field (correlation
    ~120 mm, i.e. a few low-order undulations across the field of view) rescaled to
    ``[-0.5, 0.5]`` over the body. The field is always drawn, so ``amplitude = 0`` leaves
    every other random draw of the patient unchanged.
    """
    zyx_spacing = (grid.spacing[2], grid.spacing[1], grid.spacing[0])
    field = smooth_field(rng, grid.shape, zyx_spacing, corr_mm=120.0)
    inside = field[body] if np.any(body) else field
    lo, hi = float(inside.min()), float(inside.max())
    q = (field - lo) / max(hi - lo, 1e-6) - 0.5
    return np.exp(np.float32(np.log1p(amplitude)) * q).astype(np.float32)
