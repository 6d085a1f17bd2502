"""Cohort tables and the loaders that build them from each data source.

Every loader returns a validated :class:`CohortTable` (see :mod:`workbench.cohort.table` for
the columns). :data:`LOADERS` maps a format name to its loader; loaders are imported only when
called, so importing this package stays cheap. :func:`load_cohort` picks one by name.

==================  ===========================================  ==============================
format              source                                       loader
==================  ===========================================  ==============================
``manifest``        CSV: patients, labels, clinical data, paths  :mod:`.loaders.manifest`
``ispy1``           I-SPY1 TCIA DICOM + STV masks + workbook     :mod:`.loaders.ispy1`
``ispy1_clinical``  I-SPY1 clinical/outcome workbook alone       :mod:`.loaders.ispy1_workbook`
``mama_mia``        MAMA-MIA release (NIfTI, expert masks)       :mod:`.loaders.mama_mia`
``breastdcedl``     BreastDCEDL (NIfTI I-SPY1/I-SPY2/Duke)       :mod:`.loaders.breastdcedl`
==================  ===========================================  ==============================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from workbench.cohort.table import CohortTable, Problem, validate_cohort
from workbench.errors import ConfigError
from workbench.names import COHORT_FORMATS, check_registry

__all__ = ["CohortTable", "LOADERS", "Problem", "load_cohort", "validate_cohort"]


def _lazy(target: str) -> Callable[..., CohortTable]:
    """A loader that imports ``module:function`` on first call."""
    module_name, function_name = target.split(":")

    def loader(*args, **kwargs) -> CohortTable:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise ConfigError(f"cohort loader {target} is not available in this installation",
                              step="load") from exc
        return getattr(module, function_name)(*args, **kwargs)

    loader.__name__ = loader.__qualname__ = function_name
    loader.__doc__ = f"Lazily imported :func:`{module_name}.{function_name}`."
    loader.target = target  # type: ignore[attr-defined]
    return loader


LOADERS: dict[str, Callable[..., CohortTable]] = {
    "manifest": _lazy("workbench.cohort.loaders.manifest:load_manifest"),
    "ispy1": _lazy("workbench.cohort.loaders.ispy1:load_ispy1"),
    "ispy1_clinical": _lazy("workbench.cohort.loaders.ispy1_workbook:load_ispy1_clinical"),
    "mama_mia": _lazy("workbench.cohort.loaders.mama_mia:load_mama_mia"),
    "breastdcedl": _lazy("workbench.cohort.loaders.breastdcedl:load_breastdcedl"),
}
check_registry("workbench.cohort.LOADERS", LOADERS, COHORT_FORMATS)  # names: workbench.names

_HINTS = {  # a file that gives a layout away -> its format, for error messages only
    "clinical_and_imaging_info.xlsx": "mama_mia",
    "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx": "ispy1",
    "BreastDCEDL_metadata.csv": "breastdcedl",
}


def load_cohort(path: str | Path, fmt: str = "auto", **kwargs) -> CohortTable:
    """Load a cohort with the loader registered for ``fmt``.

    Parameters
    ----------
    path
        What the loader reads: a manifest CSV, or a dataset root folder.
    fmt
        A key of :data:`LOADERS`, or ``"auto"``: a ``.csv`` file, or a folder holding
        ``manifest.csv``, is a manifest; anything else needs ``fmt``.
    **kwargs
        Passed to the loader (``phases=``, ``clinical=``, ``masks=``...). Every loader takes
        ``coding=``, the run config's ``cohort.coding`` (:mod:`workbench.cohort.coding`).

    Raises
    ------
    ConfigError
        For an unknown ``fmt``, or ``"auto"`` on a path that is not a manifest.
    """
    p = Path(path)
    if fmt == "auto":
        if p.suffix.lower() == ".csv" and not p.is_dir():
            return LOADERS["manifest"](p, **kwargs)
        if p.is_dir() and (p / "manifest.csv").is_file():
            return LOADERS["manifest"](p / "manifest.csv", **kwargs)
        hint = next((f" (it looks like fmt={name!r}: it holds {marker})"
                     for marker, name in _HINTS.items() if p.is_dir() and (p / marker).exists()),
                    "")
        raise ConfigError(f"cannot tell the cohort format of {p}{hint}; pass fmt= one of "
                          f"{sorted(LOADERS)} (auto only recognises a manifest CSV or a folder "
                          "holding manifest.csv)", step="load", path=p)
    if fmt not in LOADERS:
        raise ConfigError(f"fmt must be 'auto' or one of {sorted(LOADERS)}; got {fmt!r}",
                          step="load")
    return LOADERS[fmt](p, **kwargs)
