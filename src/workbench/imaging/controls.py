"""Image negative controls: does a radiomics signature read the tumour, or would it score the
same on images whose tumour content was destroyed?

In the spirit of READII (Kazmierski et al.), reimplemented in a few lines of numpy rather than
depending on the ``readii`` package (it pulls med-imagetools, orcestra-downloader, aiohttp and
a pandas upgrade). Every control works on one patient's preprocessed phases (dict phase ->
float32 image on one grid) and tumour mask (uint8, label 1), returns ``(images, mask)`` with
the input geometry, and never modifies its inputs.

======================  ====================================  =================================
control                 destroys                              keeps
======================  ====================================  =================================
``shuffled``            spatial arrangement inside the ROI    ROI histogram of every phase, each
                        (texture)                             voxel's enhancement curve (one
                                                              permutation for all phases),
                                                              mask, everything outside the ROI
``random``              arrangement and kinetics: each phase  each phase's ROI intensity
                        is resampled independently            distribution (approximately),
                                                              mask, everything outside the ROI
``moved``               tumour content: the same mask shape   shape features exactly; images
                        is translated onto non-tumour body    unchanged
                        tissue
``random_shape``        tumour shape: a random connected      voxel count (volume), images;
                        region of the same voxel count grown  partly the tumour voxels
                        from the tumour centre
======================  ====================================  =================================

How to read a signature's score on a control (the AUC of a model trained and tested on it):

- ``shuffled`` / ``random`` leave the mask, hence every shape feature, unchanged: a shape-driven
  signature keeps its AUC there. Texture features should fall to ~0.5 on both; first-order
  features survive ``shuffled`` (same histogram) and roughly survive ``random``; kinetic
  (curve-based) features survive ``shuffled`` but not ``random``.
- ``moved`` analyses healthy tissue through the tumour's outline: shape features are identical,
  intensity and texture features describe non-tumour tissue. Keeping the AUC here means the
  signature reads shape, volume or patient-level image properties (scanner, fat, parenchyma),
  not the tumour.
- ``random_shape`` keeps volume and location but changes the outline: it tests whether the
  tumour's *shape* matters, not its location. Its voxels overlap the tumour partly (it grows
  from the tumour centre), so intensity features change only partly.

A signature that scores about the same on a control as on the real images carries no tumour
information of the kind that control destroys.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, signal

from workbench import names
from workbench.errors import ConfigError, WorkbenchError
from workbench.imaging.body import body_mask
from workbench.imaging.steps import require_choice, require_same_grid, step_context
from workbench.names import check_registry

STEP = "control"
BORDER = 6  # PyRadiomics' padDistance 5 + 1: the cropped ROI box never leaves the image
MARGIN = 2  # voxels between the tumour and a moved ROI, so partial-volume edges stay out
MOVE_TRIES = 200  # random translations tried before the exhaustive search
# Fraction of the current boundary added per growth round: small enough that the shape is
# statistically that of one-voxel-at-a-time (Eden) growth, large enough that a 240k-voxel
# region takes a few hundred vectorised rounds instead of 240k Python steps.
GROWTH_FRACTION = 0.02

Images = dict[str, sitk.Image]


class ControlError(WorkbenchError):
    """A negative control cannot be built for one patient (e.g. no room to move the ROI)."""


def _to_image(arr: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(arr)
    image.CopyInformation(like)
    return image


def _tumour(images: Mapping[str, sitk.Image], mask: sitk.Image,
            patient: str | None) -> np.ndarray:
    """The mask as a bool array [z, y, x], after checking phases and mask share its grid."""
    if not images:
        raise ControlError("no phases given", patient=patient, step=STEP)
    for name, image in images.items():
        require_same_grid(mask, image, f"phase {name!r}", STEP, patient)
    arr = sitk.GetArrayFromImage(mask)
    labels = np.unique(arr)
    if not set(labels.tolist()) <= {0, 1}:
        raise ControlError(f"tumour mask must hold labels 0 and 1 only, found {labels[:10]}",
                           patient=patient, step=STEP)
    tumour = arr == 1
    if not tumour.any():
        raise ControlError("tumour mask is empty", patient=patient, step=STEP)
    return tumour


def _interior(shape: tuple[int, ...], border: int) -> np.ndarray:
    """Voxels at least ``border`` voxels from every face (index >= border, <= n-1-border)."""
    if not isinstance(border, int | np.integer) or border < 1:
        raise ConfigError(f"border must be an integer >= 1 (voxels), got {border!r}")
    inside = np.zeros(shape, dtype=bool)
    inside[tuple(slice(border, n - border) for n in shape)] = True
    return inside


def _free_body(body: sitk.Image, mask: sitk.Image, border: int,
               patient: str | None) -> np.ndarray:
    """Body voxels in the image interior: where a control ROI may lie."""
    require_same_grid(mask, body, "body mask", STEP, patient)
    return (sitk.GetArrayFromImage(body) > 0) & _interior(mask.GetSize()[::-1], border)


def shuffled_roi(images: Mapping[str, sitk.Image], mask: sitk.Image, rng: np.random.Generator,
                 *, patient: str | None = None) -> tuple[Images, sitk.Image]:
    """Permute the ROI voxels, with one permutation shared by every phase.

    Each voxel's enhancement curve moves as a whole: the spatial arrangement inside the ROI is
    destroyed, each phase's ROI histogram and the per-voxel kinetics are kept. Voxels outside
    the ROI and the mask are unchanged.

    Parameters
    ----------
    images
        Phase name -> image, all on the mask's grid.
    mask
        Tumour mask (uint8, labels 0/1).
    rng
        Source of the permutation.
    patient
        Named in errors.

    Returns
    -------
    (images, mask)
        New images (same pixel type and geometry) and a copy of the mask.
    """
    flat = np.flatnonzero(_tumour(images, mask, patient))
    source = flat[rng.permutation(flat.size)]
    out = {}
    for name, image in images.items():
        arr = sitk.GetArrayFromImage(image)  # a copy: the input stays untouched
        values = arr.reshape(-1)
        values[flat] = values[source]
        out[name] = _to_image(arr, image)
    return out, sitk.Image(mask)


def random_roi(images: Mapping[str, sitk.Image], mask: sitk.Image, rng: np.random.Generator,
               *, patient: str | None = None) -> tuple[Images, sitk.Image]:
    """Replace every ROI voxel by an independent draw from that phase's ROI intensities.

    Draws sample the phase's ROI values with replacement, independently per phase (phases in
    sorted name order, so the result does not depend on the dict's order): arrangement and
    per-voxel kinetics are destroyed, each phase's ROI distribution is kept approximately.
    Voxels outside the ROI and the mask are unchanged. Parameters and returns as
    :func:`shuffled_roi`.
    """
    flat = np.flatnonzero(_tumour(images, mask, patient))
    out = {}
    for name in sorted(images):
        arr = sitk.GetArrayFromImage(images[name])
        values = arr.reshape(-1)
        roi = values[flat]
        values[flat] = roi[rng.integers(0, roi.size, size=roi.size)]
        out[name] = _to_image(arr, images[name])
    return {name: out[name] for name in images}, sitk.Image(mask)


def _dilate(tumour: np.ndarray, margin: int) -> np.ndarray:
    """``tumour`` grown by a Euclidean ball of ``margin`` voxels (on its padded box only)."""
    if margin <= 0:
        return tumour.copy()
    ball = np.linalg.norm(np.indices((2 * margin + 1,) * 3) - margin, axis=0) <= margin
    coords = np.argwhere(tumour)
    lo, hi = np.maximum(coords.min(0) - margin, 0), coords.max(0) + margin + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grown = np.zeros_like(tumour)
    grown[box] = ndimage.binary_dilation(tumour[box], structure=ball)
    return grown


def moved_roi(images: Mapping[str, sitk.Image], mask: sitk.Image, rng: np.random.Generator,
              body: sitk.Image, *, margin: int = MARGIN, border: int = BORDER,
              tries: int = MOVE_TRIES,
              patient: str | None = None) -> tuple[Images, sitk.Image]:
    """Translate the tumour mask onto non-tumour body tissue; images unchanged.

    The moved ROI has the tumour's exact shape and voxel count, lies entirely inside ``body``,
    keeps ``border`` voxels from every image face, and does not touch the tumour dilated by
    ``margin`` voxels. ``tries`` translations drawn uniformly within the image are tested
    first (rejection sampling: the accepted one is uniform over the valid translations); if
    none fits, every integer translation is tested at once (an FFT correlation of the
    forbidden voxels with the mask) and one valid translation is drawn uniformly.

    Parameters
    ----------
    images, mask, rng, patient
        As :func:`shuffled_roi`.
    body
        Body mask (uint8) on the mask's grid, e.g. :func:`workbench.imaging.body.body_mask`
        of the pre-contrast phase.
    margin
        Voxels kept between the moved ROI and the tumour.
    border
        Minimum distance, in voxels, from every image face (>= 1).
    tries
        Random translations tried before the exhaustive search.

    Raises
    ------
    ControlError
        No translation fits: the tumour is larger than the free body tissue.
    """
    tumour = _tumour(images, mask, patient)
    allowed = _free_body(body, mask, border, patient) & ~_dilate(tumour, margin)
    coords = np.argwhere(tumour)
    lo, hi = coords.min(0), coords.max(0)
    shape = np.array(tumour.shape)
    t_lo, t_hi = border - lo, shape - 1 - border - hi  # translations keeping the box inside
    why = (f"no translation puts the {coords.shape[0]}-voxel tumour inside the body, "
           f"{margin} voxels clear of itself and {border} voxels from the image faces: the "
           "tumour is larger than the free body tissue")
    if (t_lo > t_hi).any():
        raise ControlError(why + f" (tumour box {(hi - lo + 1).tolist()} [z, y, x] voxels, "
                           f"image {shape.tolist()})", patient=patient, step=STEP)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    flat = coords @ strides
    allowed_flat = allowed.reshape(-1)
    probe = flat[rng.choice(flat.size, size=min(flat.size, 256), replace=False)]
    shift = None
    for _ in range(tries):
        t = rng.integers(t_lo, t_hi + 1)
        offset = int(t @ strides)
        # a few hundred voxels reject most misses before the full check
        if allowed_flat[probe + offset].all() and allowed_flat[flat + offset].all():
            shift = t
            break
    if shift is None:
        box = tumour[tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))]
        # number of forbidden voxels under the mask's box placed at each corner position
        hits = signal.fftconvolve((~allowed).astype(np.float64), box[::-1, ::-1, ::-1],
                                  mode="valid")
        corners = np.argwhere(hits < 0.5)
        if corners.size == 0:
            raise ControlError(why, patient=patient, step=STEP)
        shift = corners[rng.integers(corners.shape[0])] - lo
    moved = np.zeros(tumour.shape, dtype=np.uint8)
    moved.reshape(-1)[flat + int(shift @ strides)] = 1
    return {name: sitk.Image(image) for name, image in images.items()}, _to_image(moved, mask)


def _seed_voxel(tumour: np.ndarray, allowed: np.ndarray, patient: str | None) -> np.ndarray:
    """The tumour's centroid voxel, or the allowed tumour voxel nearest to it."""
    coords = np.argwhere(tumour)
    centroid = coords.mean(0)
    voxel = np.rint(centroid).astype(int)
    if allowed[tuple(voxel)]:
        return voxel
    usable = coords[allowed[tuple(coords.T)]]
    if usable.size == 0:
        raise ControlError("no tumour voxel lies inside the body interior; cannot grow a "
                           "random shape from it", patient=patient, step=STEP)
    return usable[np.argmin(((usable - centroid) ** 2).sum(1))]


def _grow(allowed: np.ndarray, start: np.ndarray, n: int, rng: np.random.Generator,
          patient: str | None) -> np.ndarray:
    """Flat indices of a 6-connected region of ``n`` voxels grown from ``start``.

    Batched Eden growth: each round adds a uniformly random ``GROWTH_FRACTION`` of the
    current boundary (at least one voxel). ``allowed`` must be False on the image faces, so
    flat-index neighbours never wrap across rows.
    """
    nz, ny, nx = allowed.shape
    steps = np.array([-ny * nx, ny * nx, -nx, nx, -1, 1])
    state = np.where(allowed, 0, 3).astype(np.uint8).reshape(-1)  # 0 free 1 boundary 2 in 3 no
    first = int(np.ravel_multi_index(tuple(start), allowed.shape))
    state[first] = 2
    parts, count = [np.array([first])], 1
    boundary = first + steps
    boundary = boundary[state[boundary] == 0]
    state[boundary] = 1
    while count < n:
        if boundary.size == 0:
            raise ControlError(f"the body region connected to the tumour centre holds only "
                               f"{count} voxels; the tumour has {n}", patient=patient, step=STEP)
        k = min(max(1, math.ceil(GROWTH_FRACTION * boundary.size)), n - count)
        pick = rng.choice(boundary.size, size=k, replace=False)
        added = boundary[pick]
        keep = np.ones(boundary.size, dtype=bool)
        keep[pick] = False
        state[added] = 2
        parts.append(added)
        count += k
        new = (added[:, None] + steps).reshape(-1)
        new = np.unique(new[state[new] == 0])
        state[new] = 1
        boundary = np.concatenate([boundary[keep], new])
    return np.concatenate(parts)


def random_shape_roi(images: Mapping[str, sitk.Image], mask: sitk.Image,
                     rng: np.random.Generator, body: sitk.Image, *, border: int = BORDER,
                     patient: str | None = None) -> tuple[Images, sitk.Image]:
    """A random connected ROI of the tumour's voxel count, grown from its centre; images unchanged.

    Random-priority region growing from the tumour's centroid voxel (batched Eden growth, see
    :data:`GROWTH_FRACTION`): each step adds a random voxel of the current 6-connected
    boundary, restricted to ``body`` and to voxels ``border`` voxels from every face. The
    result overlaps the tumour partly, since it starts at the tumour centre: it tests
    whether the tumour's *shape* matters, not its location.

    Parameters
    ----------
    images, mask, rng, patient
        As :func:`shuffled_roi`.
    body, border
        As :func:`moved_roi`.

    Raises
    ------
    ControlError
        The body region connected to the tumour centre is smaller than the tumour.
    """
    tumour = _tumour(images, mask, patient)
    allowed = _free_body(body, mask, border, patient)
    region = _grow(allowed, _seed_voxel(tumour, allowed, patient), int(tumour.sum()), rng,
                   patient)
    shaped = np.zeros(tumour.shape, dtype=np.uint8)
    shaped.reshape(-1)[region] = 1
    return {name: sitk.Image(image) for name, image in images.items()}, _to_image(shaped, mask)


CONTROL_KINDS: dict[str, Callable[..., tuple[Images, sitk.Image]]] = {
    "shuffled": shuffled_roi,
    "random": random_roi,
    "moved": moved_roi,
    "random_shape": random_shape_roi,
}
NEEDS_BODY = frozenset({"moved", "random_shape"})
check_registry("workbench.imaging.controls.CONTROL_KINDS", CONTROL_KINDS, names.CONTROL_KINDS)


def derive_control(kind: str, images: Mapping[str, sitk.Image], mask: sitk.Image, *,
                   seed: int, patient: str | None = None, reference_phase: str = "pre",
                   body: sitk.Image | None = None) -> tuple[Images, sitk.Image]:
    """Build one negative control of one patient, reproducibly.

    Parameters
    ----------
    kind
        One of :data:`CONTROL_KINDS`: ``"shuffled"``, ``"random"``, ``"moved"``,
        ``"random_shape"``.
    images, mask
        As :func:`shuffled_roi`.
    seed
        Run seed; the generator is ``default_rng([seed, crc32(kind)])``, so each kind draws its
        own stream and a patient's control does not depend on which other kinds are built.
        Pass a per-patient seed to decorrelate patients.
    patient
        Named in errors.
    reference_phase
        Phase whose :func:`~workbench.imaging.body.body_mask` bounds ``moved`` and
        ``random_shape`` (ignored when ``body`` is given or the kind needs no body).
    body
        A body mask already computed for this patient (saves recomputing it per kind).

    Returns
    -------
    (images, mask)
        The control, on the input grid.

    Raises
    ------
    ConfigError
        Unknown ``kind``.
    WorkbenchError
        The control cannot be built (a :class:`ControlError` when the ROI cannot be placed);
        the message names the patient and the kind.
    """
    require_choice("kind", kind, list(CONTROL_KINDS))
    rng = np.random.default_rng([int(seed), zlib.crc32(kind.encode())])
    try:
        with step_context(STEP, patient):
            if kind not in NEEDS_BODY:
                return CONTROL_KINDS[kind](images, mask, rng, patient=patient)
            if body is None:
                if reference_phase not in images:
                    raise ControlError(f"reference phase {reference_phase!r} not among the "
                                       f"phases {sorted(images)}", patient=patient, step=STEP)
                body = body_mask(images[reference_phase], patient=patient)
            return CONTROL_KINDS[kind](images, mask, rng, body, patient=patient)
    except WorkbenchError as exc:
        # keep the class (GeometryError, PreprocessError...) when it takes the common arguments
        cls = type(exc) if type(exc).__init__ is WorkbenchError.__init__ else ControlError
        raise cls(f"{kind} control: {exc.message}",
                  patient=patient if patient is not None else exc.patient,
                  step=exc.step or STEP, path=exc.path) from exc
