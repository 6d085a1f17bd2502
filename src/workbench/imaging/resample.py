"""Resampling onto an isotropic grid, keeping origin and direction."""

from __future__ import annotations

import SimpleITK as sitk

from workbench.errors import PreprocessError
from workbench.imaging.steps import as_float32, require_choice, step_context

INTERPOLATORS = {
    "bspline": sitk.sitkBSpline,
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
}


def resample_isotropic(image: sitk.Image, spacing: float = 1.0, interpolator: str = "bspline",
                       default_value: float = 0.0) -> sitk.Image:
    """Resample onto an isotropic grid with the same origin and direction.

    The number of voxels per axis is ``round(size * old_spacing / spacing)``, so the physical
    extent is kept to within one output voxel. ``"bspline"`` and ``"linear"`` give float32
    (B-spline is the image default); ``"nearest"`` keeps the pixel type, so a binary uint8
    mask stays binary uint8.
    """
    require_choice("interpolator", interpolator, tuple(INTERPOLATORS))
    if not spacing > 0:
        raise PreprocessError(f"target spacing must be > 0 mm, got {spacing!r}", step="resample")
    src = image if interpolator == "nearest" else as_float32(image)
    new_spacing = (float(spacing),) * image.GetDimension()
    size = [max(1, int(round(n * s / spacing)))
            for n, s in zip(image.GetSize(), image.GetSpacing(), strict=True)]
    with step_context("resample", None):
        return sitk.Resample(src, size, sitk.Transform(), INTERPOLATORS[interpolator],
                             image.GetOrigin(), new_spacing, image.GetDirection(),
                             float(default_value), src.GetPixelID())
