"""Image figures: a patient's phases on the largest tumour slice, and the CNN input crops.

Both read files the run directory points to (the cohort's or the preprocessing stage's
``image_<phase>`` / ``mask`` paths; ``features/crops/<patient>.png``) and draw them with
their physical size, so a 0.7 × 0.7 × 2.2 mm acquisition and its 1 mm resampling compare at
the same scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import holoviews as hv
import numpy as np

from workbench.plots._common import PALETTE, PlotInputError

__all__ = ["crop_strips", "tumour_slice"]


def tumour_slice(row: Mapping[str, object], phases: Sequence[str], *, title: str = "",
                 width: int = 300) -> hv.Layout:
    """Each phase on the axial slice with the largest tumour cross-section, outline in red.

    Parameters
    ----------
    row
        One patient of a cohort table or of ``preprocessed.parquet``: ``patient_id``,
        ``image_<phase>`` for each phase and ``mask``.
    phases
        Phases to draw, in order.
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
        When ``row`` lacks a phase or the mask path.
    workbench.errors.WorkbenchError
        When an image cannot be read or the mask is empty (names the patient and the file).
    """
    import SimpleITK as sitk
    from scipy import ndimage

    from workbench.features.deep_input import axial_axis, select_slice
    from workbench.imaging.io import read_image

    pid = str(row.get("patient_id", "?"))
    needed = [f"image_{p}" for p in phases] + ["mask"]
    missing = [c for c in needed if not isinstance(row.get(c), str | Path) or not row.get(c)]
    if missing:
        raise PlotInputError(f"patient {pid}: no path in {missing}", step="tumour slice")
    mask_img = read_image(str(row["mask"]), patient=pid, what="tumour mask")
    axis = axial_axis(mask_img.GetDirection())
    choice = select_slice(sitk.GetArrayFromImage(mask_img), axis, patient=pid)
    roi = np.take(choice.roi, choice.index, axis=axis)
    dy, dx = (s for a, s in enumerate(mask_img.GetSpacing()[::-1]) if a != axis)
    height, width_mm = roi.shape[0] * dy, roi.shape[1] * dx
    bounds = (0.0, 0.0, width_mm, height)
    edge_rows, edge_cols = np.nonzero(roi & ~ndimage.binary_erosion(roi))
    outline = hv.Points((edge_cols * dx + dx / 2, height - edge_rows * dy - dy / 2),
                        ["x (mm)", "y (mm)"]).opts(color=PALETTE[1], size=1.5)
    panels = []
    for phase in phases:
        img = read_image(str(row[f"image_{phase}"]), patient=pid, what=f"phase '{phase}'",
                         pixel_type=sitk.sitkFloat32)
        plane = np.take(sitk.GetArrayFromImage(img), choice.index, axis=axis)
        name = f"{title} {phase}".strip()
        # a value dimension of its own: HoloViews shares colour ranges between panels
        # whose dimensions are named alike, which would map z-scores onto raw grey levels
        level = hv.Dimension(f"{pid} {name}".replace(" ", "_"), label=f"{name} intensity")
        image = hv.Image(plane, bounds=bounds, kdims=["x (mm)", "y (mm)"], vdims=[level]).opts(
            cmap="gray", title=f"{pid} — {name} (slice {choice.index})", width=width,
            height=max(120, int(width * height / width_mm)), colorbar=False,
            tools=["hover"])
        panels.append(image * outline)
    return hv.Layout(panels).cols(len(panels))


def crop_strips(paths: Sequence[str | Path], *, width: int = 640) -> hv.Layout:
    """The QC strips the deep-feature stage wrote (``features/crops/<patient>.png``): the
    composite the CNN sees, then each phase in grey with the tumour outline.

    Raises
    ------
    PlotInputError
        When no path is given or a file does not exist.
    """
    if not paths:
        raise PlotInputError("no crop image to show", step="crop strips")
    absent = [str(p) for p in paths if not Path(p).is_file()]
    if absent:
        raise PlotInputError(f"crop images not found: {absent}; the deep-feature stage "
                             "writes them under features/crops/", step="crop strips")
    panels = []
    for p in map(Path, paths):
        rgb = hv.RGB.load_image(str(p))
        (left, bottom, right, top) = rgb.bounds.lbrt()
        panels.append(rgb.opts(title=f"{p.stem} — CNN input and phases", xaxis=None,
                               yaxis=None, width=width,
                               height=max(60, int(width * (top - bottom) / (right - left)))))
    return hv.Layout(panels).cols(1)
