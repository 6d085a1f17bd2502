"""The body mask of a breast MR image: everything that is not air.

N4 fits the bias field inside it, and the z-score statistics are pooled inside it.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from workbench.errors import PreprocessError
from workbench.imaging.steps import as_float32, step_context


def body_mask(image: sitk.Image, *, patient: str | None = None) -> sitk.Image:
    """Binary (uint8) mask of the body: everything that is not air.

    Otsu threshold of a lightly Gaussian-smoothed copy (smoothing keeps low-signal air noise
    from crossing the threshold; more smoothing would pull the edge inwards), the largest
    connected component, a small closing, then holes filled slice by slice (dark fat or cysts
    inside the breast belong to the body; a 3D fill would miss holes that touch the
    field-of-view edge).
    """
    with step_context("body mask", patient):
        img = as_float32(image)
        arr = sitk.GetArrayViewFromImage(img)
        if not np.isfinite(arr).all():
            raise PreprocessError("image has NaN or infinite voxels", patient=patient,
                                  step="body mask")
        if float(arr.max()) <= float(arr.min()):
            raise PreprocessError("image is constant; cannot separate body from air",
                                  patient=patient, step="body mask")
        sigma = min(image.GetSpacing())  # one voxel: tames air noise, keeps the skin line
        smooth = sitk.SmoothingRecursiveGaussian(img, sigma)
        fg = sitk.OtsuThreshold(smooth, 0, 1, 256)
        cc = sitk.RelabelComponent(sitk.ConnectedComponent(fg), sortByObjectSize=True)
        largest = sitk.Cast(cc == 1, sitk.sitkUInt8)
        largest = sitk.BinaryMorphologicalClosing(largest, [1, 1, 1], sitk.sitkBall, 1)
        solid = sitk.GetArrayFromImage(largest).astype(bool)  # [z, y, x]
        for k in range(solid.shape[0]):
            solid[k] = ndimage.binary_fill_holes(solid[k])
        mask = sitk.GetImageFromArray(solid.astype(np.uint8))
        mask.CopyInformation(image)
    if not solid.any():
        raise PreprocessError("body mask is empty", patient=patient, step="body mask")
    return mask
