"""IBSI-1 conformance of our PyRadiomics layer on the IBSI digital phantom.

:func:`run_ibsi` extracts the phantom under the four PyRadiomics settings that reproduce an
IBSI aggregation (:data:`SETTINGS`, see :func:`pyradiomics_settings`), compares every
reference value PyRadiomics can reproduce, once with raw PyRadiomics values and once through
the IBSI naming layer (:func:`~workbench.features.ibsi_naming.to_ibsi`), and returns an
:class:`IbsiReport`; :func:`format_report` prints it. The number of compared rows comes from
the reference CSV (rows of the digital phantom with a reference value, a PyRadiomics key
and one of the four settings). Without arguments it uses the phantom and reference values
shipped with the package (:mod:`workbench.data`).

Match rule (IBSI-1 README): ``|x - value| <= tolerance + half a unit in the 3rd significant
digit of value``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import SimpleITK as sitk

from workbench import data
from workbench.errors import ImageError, WorkbenchError
from workbench.features.ibsi_naming import FAMILY_NAMES, to_ibsi
from workbench.hashing import sha256_file
from workbench.provenance import package_versions

__all__ = [
    "DEPRECATED_ENABLED", "SETTINGS", "IbsiReport", "extract_phantom", "format_report",
    "half_unit", "is_match", "load_reference", "pyradiomics_params", "pyradiomics_settings",
    "run_ibsi", "to_ibsi",
]

logger = logging.getLogger(__name__)

DATASET = "digital_phantom"
SETTINGS: tuple[str, ...] = ("3D", "3D_merged", "2.5D", "2.5D_merged")
"""PyRadiomics settings that reproduce an IBSI aggregation (README ``pyradiomics_setting``)."""

# IBSI digital-phantom processing: no interpolation or resampling (no resampledPixelSpacing),
# no re-segmentation (no resegmentRange), no discretisation (bins of width 1 from the ROI
# minimum keep grey levels 1, 3, 4, 6), GLCM symmetric at Chebyshev distance 1, NGTDM and
# NGLDM (PyRadiomics GLDM) at distance 1, NGLDM alpha 0.
_BASE_SETTINGS: dict[str, Any] = {
    "label": 1,
    "binWidth": 1,
    "normalize": False,
    "distances": [1],
    "symmetricalGLCM": True,
    "gldm_a": 0,
    "voxelArrayShift": 0,  # IBSI energy / RMS use the intensities as they are
    "additionalInfo": True,  # voxel counts for the IBSI layer, versions for provenance
}
_SETTING_EXTRAS: dict[str, dict[str, Any]] = {
    "3D": {},  # IBSI DHQ4 (3D volume), ITBB (3D, averaged), KOBO (3D)
    "3D_merged": {"weightingNorm": "no_weighting"},  # IAZD: directions merged
    "2.5D": {"force2D": True, "force2Ddimension": 0},  # JJUI / 62GR: (x,y) slices merged
    "2.5D_merged": {"force2D": True, "force2Ddimension": 0,
                    "weightingNorm": "no_weighting"},  # ZW7Z: slices and directions merged
}
# Feature classes each setting needs: merging directions only changes GLCM and GLRLM; the
# 2.5D NGLDM normalised grey level non-uniformity is PyRadiomics firstorder Uniformity.
_CLASSES: dict[str, tuple[str, ...]] = {
    "3D": ("shape", "firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm"),
    "3D_merged": ("glcm", "glrlm"),
    "2.5D": ("firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm"),
    "2.5D_merged": ("glcm", "glrlm"),
}
# Deprecated in PyRadiomics yet IBSI features: they must be enabled by name.
DEPRECATED_ENABLED: dict[str, tuple[str, ...]] = {
    "shape": ("Compactness1", "Compactness2", "SphericalDisproportion"),
}

_REQUIRED_COLUMNS = ("dataset", "family", "ibsi_name", "ibsi_code", "aggregation",
                     "aggregation_code", "value", "tolerance", "pyradiomics_feature",
                     "pyradiomics_setting")
_ROW_COLUMNS = ["family", "ibsi_name", "ibsi_code", "aggregation", "aggregation_code",
                "setting", "pyradiomics_feature", "reference", "tolerance", "raw_value",
                "ibsi_value", "matched_raw", "matched"]


def _check_setting(setting: str) -> None:
    if setting not in _SETTING_EXTRAS:
        raise WorkbenchError(f"unknown PyRadiomics IBSI setting {setting!r}; allowed: "
                             f"{', '.join(SETTINGS)}", step="ibsi")


def pyradiomics_settings(setting: str) -> dict[str, Any]:
    """PyRadiomics extractor settings reproducing one IBSI aggregation on the digital phantom.

    Parameters
    ----------
    setting
        One of :data:`SETTINGS`: ``"3D"`` (IBSI DHQ4 / ITBB / KOBO), ``"3D_merged"`` (IAZD),
        ``"2.5D"`` (JJUI / 62GR) or ``"2.5D_merged"`` (ZW7Z).

    Returns
    -------
    dict
        Keyword settings for ``RadiomicsFeatureExtractor(**settings)`` (a fresh copy).
    """
    _check_setting(setting)
    return copy.deepcopy({**_BASE_SETTINGS, **_SETTING_EXTRAS[setting]})


def pyradiomics_params(setting: str) -> dict[str, Any]:
    """Full PyRadiomics parameter dictionary (``setting``, ``imageType``, ``featureClass``).

    Enables, for the classes the aggregation needs, every non-deprecated feature plus the
    deprecated ones IBSI defines (:data:`DEPRECATED_ENABLED`). Pass it to
    ``RadiomicsFeatureExtractor(params)``; PyRadiomics validates it against its schema.
    """
    from radiomics import getFeatureClasses  # heavy import, only when extracting

    _check_setting(setting)
    classes = getFeatureClasses()
    feature_class = {}
    for name in _CLASSES[setting]:
        current = [f for f, deprecated in classes[name].getFeatureNames().items()
                   if not deprecated]
        feature_class[name] = sorted(current) + list(DEPRECATED_ENABLED.get(name, ()))
    return {"setting": pyradiomics_settings(setting), "imageType": {"Original": {}},
            "featureClass": feature_class}


def extract_phantom(phantom_dir: str | Path, setting: str) -> dict[str, Any]:
    """Raw PyRadiomics result for ``phantom_dir/{image,mask}.nii.gz`` under ``setting``."""
    from radiomics import featureextractor, setVerbosity

    setVerbosity(logging.ERROR)  # PyRadiomics' own stderr handler would log every class
    logging.getLogger("radiomics").setLevel(logging.WARNING)
    image, mask = _phantom_paths(phantom_dir)
    try:
        img, msk = sitk.ReadImage(str(image)), sitk.ReadImage(str(mask))
    except RuntimeError as exc:
        raise ImageError(f"cannot read the IBSI phantom: {exc}", step="ibsi",
                         path=phantom_dir) from exc
    extractor = featureextractor.RadiomicsFeatureExtractor(pyradiomics_params(setting))
    logger.info("IBSI phantom: extracting PyRadiomics setting %s", setting)
    with _expected_warnings_silenced():
        return dict(extractor.execute(img, msk))


class _ExpectedWarnings(logging.Filter):
    """Drops the PyRadiomics warnings these settings trigger on purpose (the deprecated
    features IBSI needs, the symmetric-GLCM Sum Average notice); others pass."""

    _deprecated = {f for names in DEPRECATED_ENABLED.values() for f in names}

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg.startswith("Feature ") and msg.endswith(" is deprecated, use with caution!"):
            return msg.split(" ")[1] not in self._deprecated
        return not msg.startswith("GLCM is symmetrical, therefore Sum Average")


@contextmanager
def _expected_warnings_silenced() -> Iterator[None]:
    loggers = [logging.getLogger(f"radiomics.{name}") for name in ("shape", "glcm")]
    flt = _ExpectedWarnings()
    for lg in loggers:
        lg.addFilter(flt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(flt)


def _phantom_paths(phantom_dir: str | Path) -> tuple[Path, Path]:
    folder = Path(phantom_dir)
    paths = folder / "image.nii.gz", folder / "mask.nii.gz"
    for p in paths:
        if not p.is_file():
            raise ImageError("IBSI digital phantom file missing; expected image.nii.gz and "
                             "mask.nii.gz in the folder given as --phantom (or digital_phantom/ "
                             "under --data)", step="ibsi", path=p)
    return paths


def half_unit(value: float) -> float:
    """Half a unit in the 3rd significant digit of ``value`` as published (0 for 0)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    exponent = int(f"{abs(value):.2e}".split("e")[1])  # the exponent of the 3-digit form
    return 0.5 * 10.0 ** (exponent - 2)


def is_match(x: float, value: float, tolerance: float) -> bool:
    """README match rule: ``|x - value| <= tolerance + half_unit(value)``; NaN never matches."""
    if x is None or not math.isfinite(x):
        return False
    bound = tolerance + half_unit(value)
    # a relative 1e-9 slack so a value exactly on the rounding boundary is not lost to float noise
    return abs(x - value) <= bound * (1 + 1e-9)


def load_reference(reference_csv: str | Path) -> pd.DataFrame:
    """Digital-phantom rows PyRadiomics can reproduce: a reference value, a PyRadiomics key and
    one of :data:`SETTINGS`. Keeps the CSV's order and columns."""
    path = Path(reference_csv)
    if not path.is_file():
        raise WorkbenchError("IBSI reference values not found; pass the IBSI-1 "
                             "reference_values.csv as --reference (or a --data folder "
                             "holding it)", step="ibsi", path=path)
    try:
        ref = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"cannot read the IBSI reference values: {exc}", step="ibsi",
                             path=path) from exc
    missing = [c for c in _REQUIRED_COLUMNS if c not in ref.columns]
    if missing:
        raise WorkbenchError(f"reference CSV lacks columns {missing}; expected the IBSI-1 "
                             "reference_values.csv described in its README", step="ibsi",
                             path=path)
    keep = ((ref["dataset"] == DATASET) & ref["value"].notna()
            & ref["pyradiomics_feature"].notna() & ref["pyradiomics_setting"].isin(SETTINGS))
    out = ref.loc[keep].reset_index(drop=True)
    if out.empty:
        raise WorkbenchError(f"no {DATASET} row with a reference value and a PyRadiomics "
                             "setting in the reference CSV", step="ibsi", path=path)
    return out


@dataclass
class IbsiReport:
    """Result of :func:`run_ibsi`.

    Attributes
    ----------
    rows
        One row per compared reference value: family, ibsi_name, ibsi_code, aggregation,
        aggregation_code, setting, pyradiomics_feature, reference, tolerance, raw_value,
        ibsi_value, matched_raw, matched.
    per_family
        family, matched_raw, matched, total (IBSI manual order).
    provenance
        Inputs (paths, sha256), library versions and the PyRadiomics settings used.
    """

    rows: pd.DataFrame
    per_family: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Number of compared reference values (N)."""
        return len(self.rows)

    @property
    def matched(self) -> int:
        """Reference values matched through the IBSI naming layer (M)."""
        return int(self.rows["matched"].sum())

    @property
    def matched_raw(self) -> int:
        """Reference values matched by plain PyRadiomics values."""
        return int(self.rows["matched_raw"].sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, per-family counts, rows and provenance."""
        rows = self.rows.astype(object).where(self.rows.notna(), None)
        return {
            "summary": {"dataset": DATASET, "total": self.total, "matched": self.matched,
                        "matched_raw": self.matched_raw},
            "per_family": self.per_family.to_dict(orient="records"),
            "rows": rows.to_dict(orient="records"),
            "provenance": self.provenance,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_csv(self, path: str | Path) -> None:
        """Write :attr:`rows` as CSV."""
        self.rows.to_csv(path, index=False)


def run_ibsi(phantom_dir: str | Path | None = None,
             reference_csv: str | Path | None = None) -> IbsiReport:
    """Compute the IBSI digital phantom with PyRadiomics and compare to the IBSI-1 references.

    Parameters
    ----------
    phantom_dir
        Folder holding ``image.nii.gz`` and ``mask.nii.gz`` (the IBSI-1 digital phantom);
        default: the phantom shipped with the package (:func:`workbench.data.ibsi1_dir`).
    reference_csv
        The IBSI-1 ``reference_values.csv`` (columns as in its README); default: the copy
        shipped with the package (:func:`workbench.data.ibsi1_reference_values`).

    Returns
    -------
    IbsiReport
        Raw and IBSI-layer values and matches for every comparable reference row.
    """
    if phantom_dir is None or reference_csv is None:
        if phantom_dir is None:
            phantom_dir = data.ibsi1_dir() / "digital_phantom"
        if reference_csv is None:
            reference_csv = data.ibsi1_reference_values()
    ref = load_reference(reference_csv)
    _phantom_paths(phantom_dir)
    settings = [s for s in SETTINGS if s in set(ref["pyradiomics_setting"])]
    raw: dict[str, dict[str, Any]] = {s: extract_phantom(phantom_dir, s) for s in settings}
    ibsi = {s: to_ibsi(raw[s]) for s in settings}

    records = []
    for r in ref.itertuples(index=False):
        raw_value = _as_float(raw[r.pyradiomics_setting].get(r.pyradiomics_feature))
        ibsi_value = _as_float(ibsi[r.pyradiomics_setting].get(r.ibsi_code))
        value, tol = float(r.value), float(r.tolerance) if pd.notna(r.tolerance) else 0.0
        records.append({
            "family": r.family, "ibsi_name": r.ibsi_name, "ibsi_code": r.ibsi_code,
            "aggregation": r.aggregation if isinstance(r.aggregation, str) else "",
            "aggregation_code": r.aggregation_code, "setting": r.pyradiomics_setting,
            "pyradiomics_feature": r.pyradiomics_feature, "reference": value,
            "tolerance": tol, "raw_value": raw_value, "ibsi_value": ibsi_value,
            "matched_raw": is_match(raw_value, value, tol),
            "matched": is_match(ibsi_value, value, tol),
        })
    rows = pd.DataFrame.from_records(records, columns=_ROW_COLUMNS)
    report = IbsiReport(rows=rows, per_family=_per_family(rows),
                        provenance=_provenance(phantom_dir, reference_csv, settings, raw))
    logger.info("IBSI digital phantom: %d/%d matched (raw PyRadiomics %d/%d)",
                report.matched, report.total, report.matched_raw, report.total)
    return report


def _as_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _per_family(rows: pd.DataFrame) -> pd.DataFrame:
    order = {f: i for i, f in enumerate(FAMILY_NAMES)}
    per = (rows.groupby("family", sort=False)
           .agg(matched_raw=("matched_raw", "sum"), matched=("matched", "sum"),
                total=("matched", "size"))
           .reset_index())
    per = per.sort_values("family", key=lambda s: s.map(order).fillna(len(order)))
    return per.astype({"matched_raw": int, "matched": int, "total": int}).reset_index(drop=True)


def _provenance(phantom_dir: str | Path, reference_csv: str | Path, settings: list[str],
                raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    image, mask = _phantom_paths(phantom_dir)
    first = raw[settings[0]] if settings else {}
    return {
        "inputs": {str(p): sha256_file(p) for p in (image, mask, Path(reference_csv))},
        "versions": package_versions(("pyradiomics-bhklab", "numpy", "SimpleITK", "pandas")),
        "pyradiomics_version": str(first.get("diagnostics_Versions_PyRadiomics", "")),
        "settings": {s: pyradiomics_params(s) for s in settings},
        "roi_voxels": _as_float(first.get("diagnostics_Mask-original_VoxelNum")),
    }


def format_report(report: IbsiReport) -> str:
    """Per-family table, the rows the IBSI layer changed or still misses, and as last line
    ``IBSI digital phantom: M/N matched`` (M through the IBSI naming layer)."""
    lines = [f"IBSI-1 digital phantom vs PyRadiomics "
             f"{report.provenance.get('pyradiomics_version') or ''}".rstrip(),
             f"{'family':<7} {'IBSI family':<26} {'PyRadiomics':>11} {'IBSI layer':>10}"]
    for r in report.per_family.itertuples(index=False):
        lines.append(f"{r.family:<7} {FAMILY_NAMES.get(r.family, r.family):<26} "
                     f"{f'{r.matched_raw}/{r.total}':>11} {f'{r.matched}/{r.total}':>10}")
    lines.append(f"{'all':<7} {'':<26} {f'{report.matched_raw}/{report.total}':>11} "
                 f"{f'{report.matched}/{report.total}':>10}")
    rows = report.rows
    changed = rows[(rows["raw_value"] != rows["ibsi_value"]) | ~rows["matched"]]
    if len(changed):
        lines.append("IBSI layer changes (raw -> IBSI; reference):")
        for r in changed.itertuples(index=False):
            flag = "ok" if r.matched else "MISMATCH"
            lines.append(f"  {r.family:<5} {r.ibsi_name} [{r.setting}]: {_fmt(r.raw_value)} -> "
                         f"{_fmt(r.ibsi_value)}; {_fmt(r.reference)} +/- {_fmt(r.tolerance)} "
                         f"{flag}")
    lines.append(f"IBSI digital phantom: {report.matched}/{report.total} matched")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.4g}"
