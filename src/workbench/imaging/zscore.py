"""Per-patient z-score: one mean and standard deviation pooled over every DCE phase."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

from workbench.errors import PreprocessError
from workbench.imaging.steps import as_float32, require_same_grid


def pooled_stats(images: Mapping[str, sitk.Image], region_mask: sitk.Image | None = None, *,
                 patient: str | None = None) -> tuple[float, float]:
    """Mean and standard deviation pooled over every phase inside ``region_mask``."""
    if not images:
        raise PreprocessError("no phases given", patient=patient, step="zscore")
    names = list(images)
    region = None
    if region_mask is not None:
        require_same_grid(images[names[0]], region_mask, "z-score region", "zscore", patient)
        region = sitk.GetArrayViewFromImage(region_mask) > 0
        if not region.any():
            raise PreprocessError("z-score region is empty", patient=patient, step="zscore")
    n, s, ss = 0, 0.0, 0.0
    for name in names:
        require_same_grid(images[names[0]], images[name], f"phase {name!r}", "zscore", patient)
        arr = sitk.GetArrayViewFromImage(images[name])
        values = (arr[region] if region is not None else arr.ravel()).astype(np.float64)
        n, s, ss = n + values.size, s + values.sum(), ss + np.square(values).sum()
    mean = s / n
    std = math.sqrt(max(ss / n - mean * mean, 0.0))
    if not (np.isfinite(mean) and np.isfinite(std)) or std <= 1e-12 * max(1.0, abs(mean)):
        raise PreprocessError(f"cannot z-score: pooled std is {std:.3g} (constant or non-finite "
                              "image)", patient=patient, step="zscore")
    return float(mean), float(std)


def zscore_patient(images: Mapping[str, sitk.Image], region_mask: sitk.Image | None = None, *,
                   stats: tuple[float, float] | None = None,
                   patient: str | None = None) -> dict[str, sitk.Image]:
    """Z-score all phases of one patient with the same pooled statistics.

    Mean and standard deviation are pooled over every phase inside ``region_mask`` (the body;
    ``None`` = whole image), see :func:`pooled_stats`. One affine map for all phases keeps
    their ordering, so enhancement stays visible; per-phase z-scores would erase it.
    """
    mean, std = stats if stats is not None else pooled_stats(images, region_mask, patient=patient)
    out = {}
    for name, image in images.items():
        z = sitk.ShiftScale(as_float32(image), -mean, 1.0 / std)
        z.CopyInformation(image)
        out[name] = as_float32(z)
    return out
