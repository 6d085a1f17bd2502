"""Geometry checks: every phase and the mask of a patient must share one grid."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

from workbench.errors import GeometryError, ImageError
from workbench.imaging.header import format_numbers, format_size

SPACING_TOL = 1e-3  # relative
ORIGIN_TOL_MM = 1e-2  # absolute, in mm; scaled by spacing below
DIRECTION_TOL = 1e-4


def describe(image: sitk.Image) -> dict:
    """Size, spacing, origin and direction of an image as plain Python values."""
    return {
        "size": tuple(int(s) for s in image.GetSize()),
        "spacing": tuple(float(s) for s in image.GetSpacing()),
        "origin": tuple(float(s) for s in image.GetOrigin()),
        "direction": tuple(float(s) for s in image.GetDirection()),
    }


def geometry_mismatch(reference: sitk.Image, other: sitk.Image) -> str | None:
    """Describe how ``other``'s grid differs from ``reference``'s, or ``None`` if it matches.

    Tolerances: spacing within 0.1 % relative, origin within 10 % of the smallest voxel
    side (at least 0.01 mm), direction cosines within 1e-4.
    """
    a, b = describe(reference), describe(other)
    if a["size"] != b["size"]:
        return f"size {format_size(b['size'])} != {format_size(a['size'])}"
    sa, sb = np.array(a["spacing"]), np.array(b["spacing"])
    if not np.allclose(sa, sb, rtol=SPACING_TOL, atol=0):
        return f"spacing {format_numbers(sb, 4)} != {format_numbers(sa, 4)}"
    origin_tol = max(ORIGIN_TOL_MM, 0.1 * float(sa.min()))
    if np.abs(np.array(a["origin"]) - np.array(b["origin"])).max() > origin_tol:
        return f"origin {format_numbers(b['origin'], 3)} != {format_numbers(a['origin'], 3)}"
    if np.abs(np.array(a["direction"]) - np.array(b["direction"])).max() > DIRECTION_TOL:
        return "direction cosines differ"
    return None


def grid_mismatches(images: Mapping[str, sitk.Image], *, patient: str | None = None,
                    reference: str | None = None,
                    paths: Mapping[str, object] | None = None) -> list[GeometryError]:
    """One :class:`GeometryError` per image not on the reference's grid (default: the first
    image), naming that image and, from ``paths`` (name -> file), its file."""
    if not images:
        return []
    ref_name = reference or next(iter(images))
    ref = images[ref_name]
    found = []
    for name, image in images.items():
        if name == ref_name:
            continue
        why = geometry_mismatch(ref, image)
        if why is not None:
            found.append(GeometryError(f"{name} does not match {ref_name} grid: {why}; "
                                       "resample it onto the phase grid or fix the export",
                                       patient=patient, step="geometry",
                                       path=(paths or {}).get(name)))
    return found


def check_same_grid(images: Mapping[str, sitk.Image], *, patient: str | None = None,
                    reference: str | None = None,
                    paths: Mapping[str, object] | None = None) -> None:
    """Raise :class:`GeometryError` for the first image not on the reference's grid (see
    :func:`grid_mismatches`)."""
    found = grid_mismatches(images, patient=patient, reference=reference, paths=paths)
    if found:
        raise found[0]


def check_mask(mask: sitk.Image, *, patient: str | None = None, path: str | None = None) -> int:
    """Check a tumour mask is binary and non-empty; return its voxel count.

    Raises
    ------
    ImageError
        On an empty mask or values other than 0 and 1 (labels maps must be binarised
        explicitly, so that nobody trains on the wrong label by accident).
    """
    arr = sitk.GetArrayViewFromImage(mask)
    values = np.unique(arr)
    if not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise ImageError(f"mask is not binary (values {shown}); expected 0 = background, "
                         "1 = tumour", patient=patient, step="mask", path=path)
    count = int((arr == 1).sum())
    if count == 0:
        raise ImageError("mask is empty (no tumour voxel)", patient=patient, step="mask",
                         path=path)
    return count


MASK_SPACES = ("grid", "physical")


def align_mask(mask: sitk.Image, reference: sitk.Image, *, mask_space: str = "grid",
               patient: str | None = None, path: str | None = None) -> sitk.Image:
    """Return the mask on the reference image's grid.

    ``mask_space="grid"`` (the default) requires the mask to share the reference grid and
    raises :class:`GeometryError` otherwise. ``"physical"`` is for masks drawn on another grid
    of the same scan (e.g. the I-SPY1 STV masks, released on 1 mm resampled images): the mask is
    resampled into the reference grid by nearest neighbour in physical space, and the result
    must keep at least half of the tumour volume (else the two do not overlap: an error).
    """
    if mask_space not in MASK_SPACES:
        raise GeometryError(f"mask_space must be one of {MASK_SPACES}, got {mask_space!r}",
                            patient=patient, step="geometry", path=path)
    why = geometry_mismatch(reference, mask)
    if why is None:
        return mask
    if mask_space == "grid":
        raise GeometryError(f"tumour mask does not match the image grid: {why}; fix the "
                            "export, or mark the cohort's masks as mask_space='physical'",
                            patient=patient, step="geometry", path=path)
    before = float((sitk.GetArrayViewFromImage(mask) == 1).sum()) * float(
        np.prod(mask.GetSpacing()))
    out = sitk.Resample(sitk.Cast(mask, sitk.sitkUInt8), reference, sitk.Transform(),
                        sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    after = float((sitk.GetArrayViewFromImage(out) == 1).sum()) * float(
        np.prod(reference.GetSpacing()))
    if before > 0 and after < 0.5 * before:
        raise GeometryError(f"tumour mask lies mostly outside the image in physical space "
                            f"({after / 1000:.2f} of {before / 1000:.2f} ml kept after "
                            "resampling onto the image grid); check origin/direction",
                            patient=patient, step="geometry", path=path)
    return out
