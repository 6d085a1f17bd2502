"""Image figures: a patient's phases on the largest tumour slice, and the CNN input crops.

Arrays in, HoloViews out: the caller reads the files (:func:`workbench.imaging.slices.\
read_tumour_slices` for the slices, :func:`workbench.imaging.slices.read_rgb_images` for the
deep-feature stage's ``features/crops/<patient>.png`` strips). Slices are drawn with their
physical size, so a 0.7 × 0.7 × 2.2 mm acquisition and its 1 mm resampling compare at the same
scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import holoviews as hv
import numpy as np
from scipy import ndimage

from workbench.plots._common import PALETTE, PlotInputError

__all__ = ["crop_strips", "tumour_slice"]

_SLICE_FIELDS = ("patient_id", "phases", "mask", "spacing", "index")


def tumour_slice(slices: Any, *, title: str = "", width: int = 300) -> hv.Layout:
    """Each phase on the axial slice with the largest tumour cross-section, outline in red.

    Parameters
    ----------
    slices
        A :class:`workbench.imaging.slices.TumourSlices` (from
        :func:`~workbench.imaging.slices.read_tumour_slices`): ``patient_id``, ``phases``
        (phase -> 2-D array, drawn in that order), ``mask`` (2-D boolean), ``spacing``
        (row, col pixel size in mm) and the slice ``index``.
    title
        Prefix of every panel title (e.g. ``"raw"``, ``"preprocessed"``).
    width
        Panel width in pixels (height follows the physical aspect ratio).

    Returns
    -------
    holoviews.Layout
        One panel per phase, axes in mm; grey levels scaled per panel.

    Raises
    ------
    PlotInputError
        When ``slices`` lacks a field, has no phase, or a phase is not on the mask's grid.
    """
    missing = [f for f in _SLICE_FIELDS if not hasattr(slices, f)]
    if missing:
        raise PlotInputError(f"tumour slices lack {missing}; read them with "
                             "workbench.imaging.slices.read_tumour_slices", step="tumour slice")
    pid = str(slices.patient_id)
    roi = np.asarray(slices.mask, dtype=bool)
    phases: Mapping[str, np.ndarray] = slices.phases
    if not phases:
        raise PlotInputError(f"patient {pid}: no phase to draw", step="tumour slice")
    wrong = [p for p, a in phases.items() if np.shape(a) != roi.shape]
    if wrong:
        raise PlotInputError(f"patient {pid}: phase(s) {wrong} are not on the mask's grid "
                             f"{roi.shape}", step="tumour slice")
    dy, dx = (float(s) for s in slices.spacing)
    height, width_mm = roi.shape[0] * dy, roi.shape[1] * dx
    bounds = (0.0, 0.0, width_mm, height)
    edge_rows, edge_cols = np.nonzero(roi & ~ndimage.binary_erosion(roi))
    outline = hv.Points((edge_cols * dx + dx / 2, height - edge_rows * dy - dy / 2),
                        ["x (mm)", "y (mm)"]).opts(color=PALETTE[1], size=1.5)
    panels = []
    for phase, plane in phases.items():
        name = f"{title} {phase}".strip()
        # a value dimension of its own: HoloViews shares colour ranges between panels
        # whose dimensions are named alike, which would map z-scores onto raw grey levels
        level = hv.Dimension(f"{pid} {name}".replace(" ", "_"), label=f"{name} intensity")
        image = hv.Image(plane, bounds=bounds, kdims=["x (mm)", "y (mm)"], vdims=[level]).opts(
            cmap="gray", title=f"{pid} — {name} (slice {slices.index})", width=width,
            height=max(120, int(width * height / width_mm)), colorbar=False,
            tools=["hover"])
        panels.append(image * outline)
    return hv.Layout(panels).cols(len(panels))


def crop_strips(strips: Mapping[str, np.ndarray], *, width: int = 640) -> hv.Layout:
    """The QC strips the deep-feature stage wrote (``features/crops/<patient>.png``): the
    composite the CNN sees, then each phase in grey with the tumour outline.

    Parameters
    ----------
    strips
        Patient id -> RGB image, ``(rows, cols, 3)`` uint8 (as decoded by
        :func:`workbench.imaging.slices.read_rgb_images`), drawn in that order.
    width
        Panel width in pixels (height follows the strip's aspect ratio).

    Raises
    ------
    PlotInputError
        When no strip is given or one is not an RGB image.
    """
    if not strips:
        raise PlotInputError("no crop image to show", step="crop strips")
    wrong = [str(k) for k, a in strips.items() if np.ndim(a) != 3 or np.shape(a)[2] not in (3, 4)]
    if wrong:
        raise PlotInputError(f"crop images of {wrong} are not RGB arrays (rows, cols, 3)",
                             step="crop strips")
    panels = []
    for name, pixels in strips.items():
        rows, cols = np.shape(pixels)[:2]
        # the bounds hv.RGB.load_image gives: unit height, width by aspect ratio
        rgb = hv.RGB(np.asarray(pixels) / 255.0,
                     bounds=(-cols / rows / 2, -0.5, cols / rows / 2, 0.5))
        panels.append(rgb.opts(title=f"{name} — CNN input and phases", xaxis=None,
                               yaxis=None, width=width,
                               height=max(60, int(width * rows / cols))))
    return hv.Layout(panels).cols(1)
