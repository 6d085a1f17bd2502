"""The PyRadiomics parameter file as a validated schema (``configs/radiomics/*.yaml``).

:func:`load_params` reads a parameter file and fails with the file, the key and the value
received; it also refuses a binning that cannot work on z-scored images (exactly one of
``binWidth`` / ``binCount``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from workbench.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["SHAPE_CLASSES", "TEXTURE_ONLY_SETTINGS", "RadiomicsParams", "Settings", "load_params"]

SHAPE_CLASSES = ("shape", "shape2D")
#: Settings that only change intensity-based classes: not part of the shape key.
TEXTURE_ONLY_SETTINGS = frozenset({
    "binWidth", "binCount", "distances", "symmetricalGLCM", "weightingNorm", "gldm_a",
    "voxelArrayShift", "wavelet", "start_level", "level", "sigma", "gradientUseSpacing",
    "normalize", "normalizeScale", "removeOutliers", "lbp2DRadius", "lbp2DSamples",
    "lbp2DMethod", "lbp3DLevels", "lbp3DIcosphereRadius", "lbp3DIcosphereSubdivision"})

Pos = Annotated[float, Field(gt=0)]
PosInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
ImageTypeName = Literal["Original", "Wavelet", "LoG", "Square", "SquareRoot", "Logarithm",
                        "Exponential", "Gradient", "LBP2D", "LBP3D"]
FeatureClassName = Literal["shape", "shape2D", "firstorder", "glcm", "glrlm", "glszm", "gldm",
                           "ngtdm"]


# --------------------------------------------------------------------------- parameter schema
class Settings(BaseModel):
    """PyRadiomics ``setting`` keys (its ``paramSchema.yaml``); ``None`` = PyRadiomics default."""

    model_config = ConfigDict(extra="forbid")
    minimumROIDimensions: Annotated[int, Field(ge=1, le=3)] | None = None
    minimumROISize: PosInt | None = None
    geometryTolerance: Pos | None = None
    correctMask: bool | None = None
    additionalInfo: bool | None = None
    label: PosInt | None = None
    label_channel: NonNegInt | None = None
    binWidth: Pos | None = None
    binCount: PosInt | None = None
    normalize: bool | None = None
    normalizeScale: Pos | None = None
    removeOutliers: Pos | None = None
    resampledPixelSpacing: list[Annotated[float, Field(ge=0)]] | None = None
    interpolator: str | int | None = None
    padDistance: NonNegInt | None = None
    distances: list[PosInt] | None = None
    force2D: bool | None = None
    force2Ddimension: Annotated[int, Field(ge=0, le=2)] | None = None
    resegmentRange: list[float] | None = None
    resegmentMode: Literal["absolute", "relative", "sigma"] | None = None
    resegmentShape: bool | None = None
    preCrop: bool | None = None
    sigma: list[Pos] | None = None
    start_level: NonNegInt | None = None
    level: PosInt | None = None
    wavelet: str | None = None
    gradientUseSpacing: bool | None = None
    lbp2DRadius: Pos | None = None
    lbp2DSamples: PosInt | None = None
    lbp2DMethod: Literal["default", "ror", "uniform", "var"] | None = None
    lbp3DLevels: PosInt | None = None
    lbp3DIcosphereRadius: Pos | None = None
    lbp3DIcosphereSubdivision: NonNegInt | None = None
    voxelArrayShift: int | None = None
    symmetricalGLCM: bool | None = None
    weightingNorm: Literal["euclidean", "manhattan", "infinity", "no_weighting"] | None = None
    gldm_a: NonNegInt | None = None

    @field_validator("resampledPixelSpacing")
    @classmethod
    def _three_spacings(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) != 3:  # PyRadiomics: 0 keeps that axis' spacing
            raise ValueError(f"needs 3 spacings in mm (x, y, z; 0 keeps an axis), got {value}")
        return value

    @field_validator("wavelet")
    @classmethod
    def _known_wavelet(cls, value: str | None) -> str | None:
        import pywt

        if value is not None and value not in pywt.wavelist():
            raise ValueError(f"wavelet {value!r} is not a PyWavelets wavelet (e.g. 'coif1')")
        return value


class Checks(BaseModel):
    """Our checks before PyRadiomics runs (not PyRadiomics settings)."""

    model_config = ConfigDict(extra="forbid")
    mask_on_border: Literal["error", "warn"] = "error"


class RadiomicsParams(BaseModel):
    """A versioned radiomics parameter file (see ``configs/radiomics/paper.yaml``)."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    description: str = ""
    checks: Checks = Checks()
    setting: Settings
    imageType: Annotated[dict[ImageTypeName, Settings | None], Field(min_length=1)]
    featureClass: Annotated[dict[FeatureClassName, list[str] | None], Field(min_length=1)]

    @field_validator("featureClass")
    @classmethod
    def _known_features(cls, value: dict) -> dict:
        from radiomics import getFeatureClasses

        classes = getFeatureClasses()
        for name, features in value.items():
            unknown = sorted(set(features or ()) - set(classes[name].getFeatureNames()))
            if unknown:
                raise ValueError(f"unknown {name} features {unknown}")
        return value

    @model_validator(mode="after")
    def _log_has_sigma(self) -> RadiomicsParams:
        log_settings = self.imageType.get("LoG", False)
        if log_settings is not False and not (self.setting.sigma or (
                log_settings is not None and log_settings.sigma)):
            raise ValueError("imageType.LoG needs sigma (setting.sigma or imageType.LoG.sigma, "
                             "in mm): without it PyRadiomics silently computes no LoG image")
        return self

    def pyradiomics(self, part: Literal["all", "shape", "texture"] = "all") -> dict[str, Any]:
        """The PyRadiomics parameter dictionary of ``part`` (``None`` values left out)."""
        setting = self.setting.model_dump(exclude_none=True)
        image_types = {k: (v.model_dump(exclude_none=True) if v else {})
                       for k, v in self.imageType.items()}
        classes = dict(self.featureClass)
        if part == "shape":
            setting = {k: v for k, v in setting.items() if k not in TEXTURE_ONLY_SETTINGS}
            image_types = {"Original": {}}
            classes = {k: v for k, v in classes.items() if k in SHAPE_CLASSES}
        elif part == "texture":
            classes = {k: v for k, v in classes.items() if k not in SHAPE_CLASSES}
        return {"setting": setting, "imageType": image_types, "featureClass": classes}


def load_params(path: str | Path) -> RadiomicsParams:
    """Read and validate a radiomics parameter YAML.

    Raises
    ------
    ConfigError
        Naming the file and every offending key (unknown keys included).
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read radiomics parameter file ({exc.strerror})",
                          step="radiomics params", path=p) from exc
    except yaml.YAMLError as exc:  # one line: where and what, not PyYAML's excerpt
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"not valid YAML{where}: {what}", step="radiomics params",
                          path=p) from exc
    if not isinstance(data, dict):
        raise ConfigError("a radiomics parameter file must be a mapping with keys version, "
                          "setting, imageType, featureClass", step="radiomics params", path=p)
    try:
        params = RadiomicsParams.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc), step="radiomics params", path=p) from None
    s = params.setting
    if (s.binWidth is None) == (s.binCount is None):
        raise ConfigError("set exactly one of setting.binWidth / setting.binCount: PyRadiomics' "
                          "default binWidth 25 puts a z-scored tumour into a single bin",
                          step="radiomics params", path=p)
    if s.binWidth is not None and s.binWidth > 1:
        log.warning("binWidth %s in %s is coarse for z-scored images (tumours span a few "
                    "units): expect few bins", s.binWidth, p)
    return params


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        elif err["type"] == "missing":
            parts.append(f"missing key '{key}'")
        elif not key:  # a check across keys: its message names them
            parts.append(err["msg"].removeprefix("Value error, "))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"key '{key}': {msg} (got {err.get('input')!r})")
    return "invalid radiomics parameter file: " + "; ".join(parts)


