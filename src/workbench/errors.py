"""Exception hierarchy: every error names what failed, for whom, and where.

Messages follow one pattern: ``[patient P] step S: what went wrong (file F). What to do.``
Per-patient loops catch :class:`WorkbenchError`, record it as a problem row and continue.
"""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class for errors raised by the workbench.

    Parameters
    ----------
    message
        What went wrong and, where possible, what to do about it.
    patient
        Patient identifier the error concerns, if any.
    step
        Pipeline step (``"load"``, ``"read"``, ``"geometry"``, ``"n4"``...).
    path
        File or folder the error concerns, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        patient: str | None = None,
        step: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.message = message
        self.patient = None if patient is None else str(patient)
        self.step = step
        self.path = None if path is None else str(path)
        super().__init__(self._format())

    def _format(self) -> str:
        prefix = []
        if self.patient is not None:
            prefix.append(f"[patient {self.patient}]")
        if self.step is not None:
            prefix.append(f"step {self.step}:")
        text = " ".join(prefix + [self.message])
        if self.path is not None:
            text += f" (file {self.path})"
        return text


class ConfigError(WorkbenchError):
    """Invalid run configuration or parameter file."""


class CohortError(WorkbenchError):
    """A cohort table or clinical sheet is malformed."""


class ImageError(WorkbenchError):
    """An image or mask cannot be read or is unusable (empty, non-binary, NaN...)."""


class GeometryError(ImageError):
    """Phases and mask of one patient do not share a grid."""


class PreprocessError(WorkbenchError):
    """A preprocessing step failed for one patient."""
