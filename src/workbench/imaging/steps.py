"""What the pure image ops share: the step context that names a failure, float32 casting,
and the checks of choices and grids, each error naming the patient and the step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import SimpleITK as sitk

from workbench.errors import ConfigError, GeometryError, PreprocessError, WorkbenchError
from workbench.imaging.geometry import geometry_mismatch


def require_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    """Refuse ``value`` unless it is one of ``allowed``, naming the parameter."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")


@contextlib.contextmanager
def step_context(step: str, patient: str | None, path: str | None = None) -> Iterator[None]:
    """Turn an unexpected error (ITK's RuntimeError...) inside ``step`` into PreprocessError."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [""])
        detail = next((line for line in text if "rror" in line), text[0]).strip()[:300]
        raise PreprocessError(f"{type(exc).__name__}: {detail}", patient=patient, step=step,
                              path=path) from exc


def as_float32(image: sitk.Image) -> sitk.Image:
    """``image`` cast to float32 (itself when it already is)."""
    if image.GetPixelID() == sitk.sitkFloat32:
        return image
    return sitk.Cast(image, sitk.sitkFloat32)


def require_same_grid(ref: sitk.Image, other: sitk.Image, what: str, step: str,
                      patient: str | None) -> None:
    """Raise :class:`GeometryError` in ``step`` when ``other`` is not on ``ref``'s grid."""
    why = geometry_mismatch(ref, other)
    if why is not None:
        raise GeometryError(f"{what} is not on the image grid: {why}", patient=patient, step=step)

