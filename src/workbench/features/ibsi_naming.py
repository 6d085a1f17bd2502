"""IBSI naming layer for PyRadiomics output: IBSI names, codes and the three value corrections.

PyRadiomics keys (``original_<class>_<Feature>``) are mapped to the Image Biomarker
Standardisation Initiative (IBSI-1) feature they reproduce: family, name and permanent
4-character code. One PyRadiomics key can stand for several IBSI features (``firstorder_Mean``
is both the intensity-statistics mean and the intensity-histogram mean when bins of width 1
leave the grey levels unchanged); each IBSI code comes from exactly one key.

The table is data transcribed from the IBSI-1 reference values (``reference_values.csv``,
column ``pyradiomics_feature``; CC BY 4.0, IBSI reference manual) so that it is available
without that file; :func:`naming_from_reference` rebuilds it from the CSV and a test checks
that both agree.

:func:`to_ibsi` turns one PyRadiomics result into IBSI values keyed by IBSI code, applying
the three known convention differences (see :data:`CORRECTIONS`). Raw PyRadiomics values are
never modified in place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from workbench.errors import WorkbenchError

PREFIX = "original_"
"""IBSI-1 benchmarks features of the unfiltered image only, i.e. PyRadiomics ``original_`` keys."""

VOXEL_COUNT_KEY = "diagnostics_Mask-original_VoxelNum"
RESEGMENTED_VOXEL_COUNT_KEY = "diagnostics_Mask-resegmented_VoxelNum"

FAMILY_NAMES: dict[str, str] = {
    "morph": "Morphology",
    "loc": "Local intensity",
    "stat": "Intensity statistics",
    "ih": "Intensity histogram",
    "ivh": "Intensity-volume histogram",
    "cm": "GLCM",
    "rlm": "GLRLM",
    "szm": "GLSZM",
    "dzm": "GLDZM",
    "ngt": "NGTDM",
    "ngl": "NGLDM (PyRadiomics GLDM)",
}
"""IBSI family short names (the CSV's ``family``) in manual order, with a display title."""


@dataclass(frozen=True)
class IbsiFeature:
    """One IBSI-1 feature: family short name, name as titled in the manual, permanent code."""

    family: str
    ibsi_name: str
    ibsi_code: str


# (PyRadiomics key without "original_", IBSI family, IBSI code, IBSI name), from the reference
# CSV (dataset digital_phantom, rows with a pyradiomics_feature), in the manual's order.
_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("shape_MeshVolume", "morph", "RNU0", "Volume (mesh)"),
    ("shape_VoxelVolume", "morph", "YEKZ", "Volume (voxel counting)"),
    ("shape_SurfaceArea", "morph", "C0JK", "Surface area (mesh)"),
    ("shape_SurfaceVolumeRatio", "morph", "2PR5", "Surface to volume ratio"),
    ("shape_Compactness1", "morph", "SKGS", "Compactness 1"),
    ("shape_Compactness2", "morph", "BQWJ", "Compactness 2"),
    ("shape_SphericalDisproportion", "morph", "KRCK", "Spherical disproportion"),
    ("shape_Sphericity", "morph", "QCFX", "Sphericity"),
    ("shape_Maximum3DDiameter", "morph", "L0JK", "Maximum 3D diameter"),
    ("shape_MajorAxisLength", "morph", "TDIC", "Major axis length"),
    ("shape_MinorAxisLength", "morph", "P9VJ", "Minor axis length"),
    ("shape_LeastAxisLength", "morph", "7J51", "Least axis length"),
    ("shape_Elongation", "morph", "Q3CK", "Elongation"),
    ("shape_Flatness", "morph", "N17B", "Flatness"),
    ("firstorder_Mean", "stat", "Q4LE", "Mean intensity"),
    ("firstorder_Variance", "stat", "ECT3", "Intensity variance"),
    ("firstorder_Skewness", "stat", "KE2A", "Intensity skewness"),
    ("firstorder_Kurtosis", "stat", "IPH6", "(Excess) intensity kurtosis"),
    ("firstorder_Median", "stat", "Y12H", "Median intensity"),
    ("firstorder_Minimum", "stat", "1GSF", "Minimum intensity"),
    ("firstorder_10Percentile", "stat", "QG58", "10th intensity percentile"),
    ("firstorder_90Percentile", "stat", "8DWT", "90th intensity percentile"),
    ("firstorder_Maximum", "stat", "84IY", "Maximum intensity"),
    ("firstorder_InterquartileRange", "stat", "SALO", "Intensity interquartile range"),
    ("firstorder_Range", "stat", "2OJQ", "Intensity range"),
    ("firstorder_MeanAbsoluteDeviation", "stat", "4FUA", "Intensity-based mean absolute deviation"),
    ("firstorder_RobustMeanAbsoluteDeviation", "stat", "1128",
     "Intensity-based robust mean absolute deviation"),
    ("firstorder_Energy", "stat", "N8CA", "Intensity-based energy"),
    ("firstorder_RootMeanSquared", "stat", "5ZWQ", "Root mean square intensity"),
    ("firstorder_Mean", "ih", "X6K6", "Mean discretised intensity"),
    ("firstorder_Variance", "ih", "CH89", "Discretised intensity variance"),
    ("firstorder_Skewness", "ih", "88K1", "Discretised intensity skewness"),
    ("firstorder_Kurtosis", "ih", "C3I7", "(Excess) discretised intensity kurtosis"),
    ("firstorder_Median", "ih", "WIFQ", "Median discretised intensity"),
    ("firstorder_Minimum", "ih", "1PR8", "Minimum discretised intensity"),
    ("firstorder_10Percentile", "ih", "GPMT", "10th discretised intensity percentile"),
    ("firstorder_90Percentile", "ih", "OZ0C", "90th discretised intensity percentile"),
    ("firstorder_Maximum", "ih", "3NCY", "Maximum discretised intensity"),
    ("firstorder_InterquartileRange", "ih", "WR0O", "Discretised intensity interquartile range"),
    ("firstorder_Range", "ih", "5Z3W", "Discretised intensity range"),
    ("firstorder_MeanAbsoluteDeviation", "ih", "D2ZX",
     "Intensity histogram mean absolute deviation"),
    ("firstorder_RobustMeanAbsoluteDeviation", "ih", "WRZB",
     "Intensity histogram robust mean absolute deviation"),
    ("firstorder_Entropy", "ih", "TLU2", "Discretised intensity entropy"),
    ("firstorder_Uniformity", "ih", "BJ5W", "Discretised intensity uniformity"),
    ("glcm_MaximumProbability", "cm", "GYBY", "Joint maximum"),
    ("glcm_JointAverage", "cm", "60VM", "Joint average"),
    ("glcm_SumSquares", "cm", "UR99", "Joint variance"),
    ("glcm_JointEntropy", "cm", "TU9B", "Joint entropy"),
    ("glcm_DifferenceAverage", "cm", "TF7R", "Difference average"),
    ("glcm_DifferenceVariance", "cm", "D3YU", "Difference variance"),
    ("glcm_DifferenceEntropy", "cm", "NTRS", "Difference entropy"),
    ("glcm_SumAverage", "cm", "ZGXS", "Sum average"),
    ("glcm_ClusterTendency", "cm", "OEEB", "Sum variance"),
    ("glcm_SumEntropy", "cm", "P6QZ", "Sum entropy"),
    ("glcm_JointEnergy", "cm", "8ZQL", "Angular second moment"),
    ("glcm_Contrast", "cm", "ACUI", "Contrast"),
    ("glcm_DifferenceAverage", "cm", "8S9J", "Dissimilarity"),
    ("glcm_Id", "cm", "IB1Z", "Inverse difference"),
    ("glcm_Idn", "cm", "NDRX", "Normalised inverse difference"),
    ("glcm_Idm", "cm", "WF0Z", "Inverse difference moment"),
    ("glcm_Idmn", "cm", "1QCO", "Normalised inverse difference moment"),
    ("glcm_InverseVariance", "cm", "E8JP", "Inverse variance"),
    ("glcm_Correlation", "cm", "NI2N", "Correlation"),
    ("glcm_Autocorrelation", "cm", "QWB0", "Autocorrelation"),
    ("glcm_ClusterTendency", "cm", "DG8W", "Cluster tendency"),
    ("glcm_ClusterShade", "cm", "7NFM", "Cluster shade"),
    ("glcm_ClusterProminence", "cm", "AE86", "Cluster prominence"),
    ("glcm_Imc1", "cm", "R8DG", "Information correlation 1"),
    ("glcm_Imc2", "cm", "JN9H", "Information correlation 2"),
    ("glrlm_ShortRunEmphasis", "rlm", "22OV", "Short runs emphasis"),
    ("glrlm_LongRunEmphasis", "rlm", "W4KF", "Long runs emphasis"),
    ("glrlm_LowGrayLevelRunEmphasis", "rlm", "V3SW", "Low grey level run emphasis"),
    ("glrlm_HighGrayLevelRunEmphasis", "rlm", "G3QZ", "High grey level run emphasis"),
    ("glrlm_ShortRunLowGrayLevelEmphasis", "rlm", "HTZT", "Short run low grey level emphasis"),
    ("glrlm_ShortRunHighGrayLevelEmphasis", "rlm", "GD3A", "Short run high grey level emphasis"),
    ("glrlm_LongRunLowGrayLevelEmphasis", "rlm", "IVPO", "Long run low grey level emphasis"),
    ("glrlm_LongRunHighGrayLevelEmphasis", "rlm", "3KUM", "Long run high grey level emphasis"),
    ("glrlm_GrayLevelNonUniformity", "rlm", "R5YN", "Grey level non-uniformity"),
    ("glrlm_GrayLevelNonUniformityNormalized", "rlm", "OVBL",
     "Normalised grey level non-uniformity"),
    ("glrlm_RunLengthNonUniformity", "rlm", "W92Y", "Run length non-uniformity"),
    ("glrlm_RunLengthNonUniformityNormalized", "rlm", "IC23",
     "Normalised run length non-uniformity"),
    ("glrlm_RunPercentage", "rlm", "9ZK5", "Run percentage"),
    ("glrlm_GrayLevelVariance", "rlm", "8CE5", "Grey level variance"),
    ("glrlm_RunVariance", "rlm", "SXLW", "Run length variance"),
    ("glrlm_RunEntropy", "rlm", "HJ9O", "Run entropy"),
    ("glszm_SmallAreaEmphasis", "szm", "5QRC", "Small zone emphasis"),
    ("glszm_LargeAreaEmphasis", "szm", "48P8", "Large zone emphasis"),
    ("glszm_LowGrayLevelZoneEmphasis", "szm", "XMSY", "Low grey level zone emphasis"),
    ("glszm_HighGrayLevelZoneEmphasis", "szm", "5GN9", "High grey level zone emphasis"),
    ("glszm_SmallAreaLowGrayLevelEmphasis", "szm", "5RAI", "Small zone low grey level emphasis"),
    ("glszm_SmallAreaHighGrayLevelEmphasis", "szm", "HW1V", "Small zone high grey level emphasis"),
    ("glszm_LargeAreaLowGrayLevelEmphasis", "szm", "YH51", "Large zone low grey level emphasis"),
    ("glszm_LargeAreaHighGrayLevelEmphasis", "szm", "J17V", "Large zone high grey level emphasis"),
    ("glszm_GrayLevelNonUniformity", "szm", "JNSA", "Grey level non-uniformity"),
    ("glszm_GrayLevelNonUniformityNormalized", "szm", "Y1RO",
     "Normalised grey level non-uniformity"),
    ("glszm_SizeZoneNonUniformity", "szm", "4JP3", "Zone size non-uniformity"),
    ("glszm_SizeZoneNonUniformityNormalized", "szm", "VB3A", "Normalised zone size non-uniformity"),
    ("glszm_ZonePercentage", "szm", "P30P", "Zone percentage"),
    ("glszm_GrayLevelVariance", "szm", "BYLV", "Grey level variance"),
    ("glszm_ZoneVariance", "szm", "3NSA", "Zone size variance"),
    ("glszm_ZoneEntropy", "szm", "GU8N", "Zone size entropy"),
    ("ngtdm_Coarseness", "ngt", "QCDE", "Coarseness"),
    ("ngtdm_Contrast", "ngt", "65HE", "Contrast"),
    ("ngtdm_Busyness", "ngt", "NQ30", "Busyness"),
    ("ngtdm_Complexity", "ngt", "HDEZ", "Complexity"),
    ("ngtdm_Strength", "ngt", "1X9X", "Strength"),
    ("gldm_SmallDependenceEmphasis", "ngl", "SODN", "Low dependence emphasis"),
    ("gldm_LargeDependenceEmphasis", "ngl", "IMOQ", "High dependence emphasis"),
    ("gldm_LowGrayLevelEmphasis", "ngl", "TL9H", "Low grey level count emphasis"),
    ("gldm_HighGrayLevelEmphasis", "ngl", "OAE7", "High grey level count emphasis"),
    ("gldm_SmallDependenceLowGrayLevelEmphasis", "ngl", "EQ3F",
     "Low dependence low grey level emphasis"),
    ("gldm_SmallDependenceHighGrayLevelEmphasis", "ngl", "JA6D",
     "Low dependence high grey level emphasis"),
    ("gldm_LargeDependenceLowGrayLevelEmphasis", "ngl", "NBZI",
     "High dependence low grey level emphasis"),
    ("gldm_LargeDependenceHighGrayLevelEmphasis", "ngl", "9QMG",
     "High dependence high grey level emphasis"),
    ("gldm_GrayLevelNonUniformity", "ngl", "FP8K", "Grey level non-uniformity"),
    ("firstorder_Uniformity", "ngl", "5SPA", "Normalised grey level non-uniformity"),
    ("gldm_DependenceNonUniformity", "ngl", "Z87G", "Dependence count non-uniformity"),
    ("gldm_DependenceNonUniformityNormalized", "ngl", "OKJI",
     "Normalised dependence count non-uniformity"),
    ("gldm_DependencePercentage", "ngl", "6XV8", "Dependence count percentage"),
    ("gldm_GrayLevelVariance", "ngl", "1PFV", "Grey level variance"),
    ("gldm_DependenceVariance", "ngl", "DNX2", "Dependence count variance"),
    ("gldm_DependenceEntropy", "ngl", "FCBV", "Dependence count entropy"),
)



def _by_key() -> dict[str, tuple[IbsiFeature, ...]]:
    out: dict[str, tuple[IbsiFeature, ...]] = {}
    for key, family, code, name in _TABLE:
        out[PREFIX + key] = out.get(PREFIX + key, ()) + (IbsiFeature(family, name, code),)
    return out


PYRADIOMICS_TO_IBSI: dict[str, tuple[IbsiFeature, ...]] = _by_key()
"""PyRadiomics key -> the IBSI feature(s) it reproduces."""

IBSI_BY_CODE: dict[str, IbsiFeature] = {
    f.ibsi_code: f for feats in PYRADIOMICS_TO_IBSI.values() for f in feats
}
"""IBSI code -> feature, for every code reachable from PyRadiomics."""

CODE_TO_PYRADIOMICS: dict[str, str] = {
    f.ibsi_code: key for key, feats in PYRADIOMICS_TO_IBSI.items() for f in feats
}
"""IBSI code -> the PyRadiomics key that provides its value."""

KURTOSIS = PREFIX + "firstorder_Kurtosis"
AXIS_LENGTHS = tuple(PREFIX + f"shape_{a}AxisLength" for a in ("Major", "Minor", "Least"))
DEPENDENCE_PERCENTAGE = PREFIX + "gldm_DependencePercentage"
_DEPENDENCE_NU = PREFIX + "gldm_DependenceNonUniformity"
_DEPENDENCE_NU_NORM = PREFIX + "gldm_DependenceNonUniformityNormalized"

CORRECTIONS: dict[str, str] = {
    KURTOSIS: "PyRadiomics reports Pearson kurtosis; IBSI defines excess kurtosis: subtract 3.",
    **{key: "PyRadiomics takes PCA eigenvalues of the population (1/N) covariance of the voxel "
            "centres; IBSI's match a sample (1/(N-1)) covariance: multiply by sqrt(N/(N-1)), "
            "N = voxels in the morphological mask." for key in AXIS_LENGTHS},
    DEPENDENCE_PERCENTAGE: "Deprecated in PyRadiomics (no value). IBSI: N_s/N_v, neighbourhoods "
                           "over intensity-mask voxels; N_s = DependenceNonUniformity / "
                           "DependenceNonUniformityNormalized (the GLDM's total count).",
}
"""PyRadiomics key -> why :func:`apply_ibsi_corrections` changes (or supplies) its value."""


def naming_table() -> pd.DataFrame:
    """The naming layer as a table: one row per IBSI feature reachable from PyRadiomics.

    Returns
    -------
    pandas.DataFrame
        Columns ``pyradiomics_feature``, ``family``, ``ibsi_name``, ``ibsi_code``.
    """
    return pd.DataFrame(
        [(CODE_TO_PYRADIOMICS[code], f.family, f.ibsi_name, code)
         for code, f in IBSI_BY_CODE.items()],
        columns=["pyradiomics_feature", "family", "ibsi_name", "ibsi_code"],
    )


def naming_from_reference(reference_csv: str | Path) -> pd.DataFrame:
    """Build the naming table from an IBSI-1 ``reference_values.csv`` (same columns as
    :func:`naming_table`), one row per distinct (PyRadiomics key, IBSI feature) pair."""
    path = Path(reference_csv)
    try:
        ref = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise WorkbenchError(f"cannot read the IBSI reference values: {exc}", step="ibsi",
                             path=path) from exc
    cols = ["pyradiomics_feature", "family", "ibsi_name", "ibsi_code"]
    missing = [c for c in cols if c not in ref.columns]
    if missing:
        raise WorkbenchError(f"reference CSV lacks columns {missing}; expected the IBSI-1 "
                             "reference_values.csv described in its README", step="ibsi",
                             path=path)
    return (ref.loc[ref["pyradiomics_feature"].notna(), cols]
            .drop_duplicates().reset_index(drop=True))


def _voxel_count(raw: Mapping[str, object], keys: tuple[str, ...], n_voxels: int | None,
                 why: str) -> int:
    if n_voxels is not None:
        return int(n_voxels)
    for key in keys:
        if key in raw:
            return int(raw[key])  # type: ignore[arg-type]
    raise WorkbenchError(
        f"cannot {why}: the number of ROI voxels is unknown (no {keys[-1]!r} in the "
        "PyRadiomics result). Extract with setting additionalInfo=True or pass n_voxels.",
        step="ibsi")


def apply_ibsi_corrections(raw: Mapping[str, object], *,
                           n_voxels: int | None = None) -> dict[str, float]:
    """Copy of the numeric PyRadiomics features with IBSI conventions applied.

    Keys stay PyRadiomics keys; see :data:`CORRECTIONS` for what changes. Features the
    corrections do not touch keep their raw value. ``diagnostics_*`` entries are dropped.

    Parameters
    ----------
    raw
        One PyRadiomics result (``RadiomicsFeatureExtractor.execute``), unchanged.
    n_voxels
        Voxels in the ROI. Default: read from the result's diagnostics
        (``additionalInfo=True``; for the dependence percentage the re-segmented mask's count
        when present, else the original mask's).

    Returns
    -------
    dict
        PyRadiomics key -> value in the IBSI convention, plus
        ``original_gldm_DependencePercentage`` when the GLDM was computed.
    """
    out = {k: float(v) for k, v in raw.items()  # type: ignore[arg-type]
           if not k.startswith("diagnostics_")}
    if KURTOSIS in out:
        out[KURTOSIS] = out[KURTOSIS] - 3.0
    present = [k for k in AXIS_LENGTHS if k in out]
    if present:
        n = _voxel_count(raw, (VOXEL_COUNT_KEY,), n_voxels, "rescale PCA axis lengths")
        scale = math.sqrt(n / (n - 1)) if n > 1 else math.nan
        for key in present:
            out[key] = out[key] * scale
    if _DEPENDENCE_NU in out and _DEPENDENCE_NU_NORM in out:
        n_v = _voxel_count(raw, (RESEGMENTED_VOXEL_COUNT_KEY, VOXEL_COUNT_KEY), n_voxels,
                           "compute the dependence count percentage")
        norm = out[_DEPENDENCE_NU_NORM]
        # N_s is a count of neighbourhoods: round away the floating-point noise of the ratio.
        n_s = round(out[_DEPENDENCE_NU] / norm) if norm > 0 else math.nan
        out[DEPENDENCE_PERCENTAGE] = n_s / n_v if n_v > 0 else math.nan
    return out


def to_ibsi(raw: Mapping[str, object], *, n_voxels: int | None = None) -> dict[str, float]:
    """IBSI values of one PyRadiomics result, keyed by IBSI code.

    Every IBSI feature reachable from a key present in ``raw`` gets the corrected value of
    that key (:func:`apply_ibsi_corrections`). The values belong to the aggregation of the
    extraction (e.g. ``force2D`` gives IBSI 2.5D texture values); look codes up in
    :data:`IBSI_BY_CODE` for names and families.

    Parameters
    ----------
    raw
        One PyRadiomics result; not modified.
    n_voxels
        Voxels in the ROI, if the result lacks PyRadiomics diagnostics.

    Returns
    -------
    dict
        IBSI code -> value.
    """
    corrected = apply_ibsi_corrections(raw, n_voxels=n_voxels)
    return {code: corrected[key] for code, key in CODE_TO_PYRADIOMICS.items()
            if key in corrected}
