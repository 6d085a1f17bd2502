"""Typed run configuration, validated from YAML before any work starts.

A config file is plain YAML; every section is optional except where noted and defaults are the
study's settings. Unknown keys and bad values fail at load time with a message that names the
file, the dotted key, the value received and the allowed values::

    configs/demo.yaml: selection.alpha: value 2.0 is invalid: Input should be less than 1
    configs/demo.yaml: protocol.kinds.0: 'honst' is not allowed; allowed values: 'honest', 'paper'
    configs/demo.yaml: cohort.pth: unknown key; allowed keys here: format, path, phases, ...

Load once at the entry point with :func:`load_config` and pass the typed object (or its
sections) down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import ConfigError
from workbench.names import (
    CLASSIFIER_NAMES,
    CLINICAL_ONLY_FORMATS,
    CODED_CLINICAL_COLUMNS,
    CONTROL_KINDS,
    FEATURE_SET_NAMES,
    FEATURE_SETS,
    NETWORK_NAMES,
    PROTOCOL_NAMES,
    RUN_COHORT_FORMATS,
    STRATEGY_NAMES,
    SYNTHETIC_SITES,
)

# Field types built from the one copy of each registry (workbench.names): a Literal over a
# registry's names, so an unknown value is refused with the list of allowed ones.
CohortFormat = Literal[RUN_COHORT_FORMATS]  # type: ignore[valid-type]
NetworkName = Literal[NETWORK_NAMES]  # type: ignore[valid-type]
ClassifierName = Literal[CLASSIFIER_NAMES]  # type: ignore[valid-type]
FeatureSetName = Literal[FEATURE_SET_NAMES]  # type: ignore[valid-type]
ProtocolName = Literal[PROTOCOL_NAMES]  # type: ignore[valid-type]
CodedColumn = Literal[CODED_CLINICAL_COLUMNS]  # type: ignore[valid-type]
StrategyName = Literal[STRATEGY_NAMES]  # type: ignore[valid-type]
ControlKind = Literal[CONTROL_KINDS]  # type: ignore[valid-type]
SiteName = Literal[SYNTHETIC_SITES]  # type: ignore[valid-type]

Probability = Annotated[float, Field(gt=0, lt=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Section):
    n: Annotated[int, Field(ge=4, le=5000)] = 163
    seed: int = 0
    sites: dict[SiteName, Annotated[int, Field(ge=2, le=5000)]] | None = Field(None, description=(
        "a multi-site cohort instead of n development patients: patients per site, e.g. "
        "{development: 100, second_scanner: 100} (same case mix and pCR law, another "
        "scanner); the manifest gets a site column"))


class CohortConfig(_Section):
    format: CohortFormat = "synthetic"
    path: str | None = Field(None, description=(
        "Manifest CSV, dataset root or output folder (synthetic); relative to the config "
        "file. For ispy1_clinical the default is the workbook shipped with the package "
        "(workbench data path ispy1_clinical)."))
    phases: tuple[str, ...] = ("pre", "early", "late")
    synthetic: SyntheticConfig = SyntheticConfig()
    coding: dict[CodedColumn, dict[str, str]] = Field(default_factory=dict, description=(
        "per-column value mapping applied before the accepted spellings, e.g. "
        "{laterality: {'1': left, '2': right}}; a value that neither maps nor is an accepted "
        "spelling is an error naming the column, value and patient"))

    @model_validator(mode="after")
    def _path_needed(self) -> CohortConfig:
        if self.format not in ("synthetic", *CLINICAL_ONLY_FORMATS) and not self.path:
            raise ValueError(f"cohort.path is required when cohort.format is '{self.format}'")
        if len(set(self.phases)) != len(self.phases) or not self.phases:
            raise ValueError(f"cohort.phases must be distinct and non-empty, got {self.phases}")
        return self


class PreprocessingConfig(_Section):
    n4: bool = True
    n4_mode: Literal["per_phase", "shared"] = "shared"
    n4_shrink_factor: Annotated[int, Field(ge=1, le=8)] = 6
    spacing_mm: Annotated[float, Field(gt=0, le=5)] = 1.0
    image_interpolator: Literal["bspline", "linear"] = "bspline"
    zscore_region: Literal["body", "all"] = "body"


class RadiomicsConfig(_Section):
    phases: tuple[str, ...] = ("pre", "early")
    params: str = "radiomics/paper.yaml"


class KineticConfig(_Section):
    enabled: bool = True
    pe_threshold: Annotated[float, Field(gt=0, le=5)] = 0.7
    ser_washout: Annotated[float, Field(gt=0, le=5)] = 1.1


class DeepConfig(_Section):
    networks: tuple[NetworkName, ...] = NETWORK_NAMES
    weights: str = Field("imagenet", description="imagenet | random | path to weight files")
    require_pretrained: bool = False
    channels: Literal["phases", "grey"] = "phases"
    margin: Annotated[float, Field(ge=0, le=2)] = 0.2
    image_size: Annotated[int, Field(ge=32, le=1024)] = 224
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 32
    fine_tune: bool = False


class LassoConfig(_Section):
    model: Literal["logistic", "linear"] = "logistic"
    n_alphas: Annotated[int, Field(ge=2, le=1000)] = 100
    alpha_min: Annotated[float, Field(gt=0)] = 1e-4
    alpha_max: Annotated[float, Field(gt=0)] = 1.0
    cv_folds: Annotated[int, Field(ge=2, le=50)] = 10
    max_iter: Annotated[int, Field(ge=100)] = 100_000
    tol: Annotated[float, Field(gt=0, lt=1)] = 1e-6

    @model_validator(mode="after")
    def _range(self) -> LassoConfig:
        if self.alpha_min >= self.alpha_max:
            raise ValueError(f"selection.lasso.alpha_min ({self.alpha_min}) must be below "
                             f"alpha_max ({self.alpha_max})")
        return self


class SelectionConfig(_Section):
    variance_threshold: Annotated[float, Field(ge=0)] = 1e-8
    alpha: Probability = 0.05
    lasso: LassoConfig = LassoConfig()
    robust_icc: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description=(
        "keep only radiomics features whose ICC(3,1) under the robustness section's "
        "perturbations is at least this (e.g. 0.75), before every strategy's selection; "
        "label-free, so fitted once on all patients (needs robustness.enabled)"))


class ProtocolConfig(_Section):
    kinds: tuple[ProtocolName, ...] = PROTOCOL_NAMES
    test_size: Probability = 0.3
    cv_folds: Annotated[int, Field(ge=2, le=20)] = 5
    repeats: Annotated[int, Field(ge=1, le=100)] = 1
    threshold: Literal["fixed", "youden"] = "fixed"
    fixed_threshold: Probability = 0.5
    class_balance: Literal["none", "balanced"] = Field("none", description=(
        "none (default): classifiers fit the data as they are, so probabilities estimate "
        "the cohort's pCR risk; balanced: the study's class weights (or oversampling), "
        "which shifts every probability towards 0.5 for the minority class and miscalibrates "
        "them (the study's setting, in configs/paper.yaml)"))
    recalibration: Literal["none", "platt", "isotonic"] = Field("none", description=(
        "recalibrate each classifier's probabilities inside the fold (5-fold internal "
        "CalibratedClassifierCV on the fitting patients only)"))


class StrategiesConfig(_Section):
    """Modelling strategies beside the study's chain (:mod:`workbench.selection`)."""

    names: tuple[StrategyName, ...] = Field(("study",), description=(
        "study: the study's chain (signatures -> classifiers); cluster, stability, "
        "elasticnet, prespecified: one penalised model each, clinical unpenalised"))
    feature_sets: tuple[FeatureSetName, ...] | None = Field(None, description=(
        "feature sets the non-study strategies run on (default: the run's feature_sets)"))
    repeats: Annotated[int, Field(ge=1, le=100, description=(
        "repeats of protocol.cv_folds-fold CV for the non-study strategies (repeated CV is "
        "reported beside the single test split)"))] = 5
    cluster_threshold: Annotated[float, Field(gt=0, le=1, description=(
        "|rank correlation| at which features are merged into one cluster, in (0, 1]"))] = 0.8
    inner_cv: Annotated[int, Field(ge=2, le=20)] = 5
    scoring: Literal["deviance", "auc"] = "deviance"
    n_alphas: Annotated[int, Field(ge=2, le=200)] = 20
    # 0.1 (near-ridge) made each fit on the 10,000-column fusion set 3x slower (50 s)
    elasticnet_l1_ratios: tuple[Annotated[float, Field(gt=0, le=1)], ...] = (0.5, 0.9)
    stability_threshold: Annotated[float, Field(gt=0.5, le=1)] = 0.75
    stability_expected_false: Annotated[float, Field(gt=0)] = 1.0
    stability_subsamples: Annotated[int, Field(ge=2, le=1000)] = 50
    unpenalised: tuple[str, ...] = Field(("clin__*",), description=(
        "clinical columns (names or patterns) that enter the strategies' models unpenalised; "
        "other clin__ columns are penalised with the imaging features. Name established "
        "predictors: sparse dummies left unpenalised overfit"))
    prespecified: tuple[str, ...] = Field((), description=(
        "feature names or shell patterns (rad__early_original_shape_*) for the prespecified "
        "strategy: a knowledge-driven list, written before looking at the labels"))

    @model_validator(mode="after")
    def _consistent(self) -> StrategiesConfig:
        if len(set(self.names)) != len(self.names) or not self.names:
            raise ValueError(f"strategies.names must be distinct and non-empty, got "
                             f"{list(self.names)}")
        if "prespecified" in self.names and not self.prespecified:
            raise ValueError("strategies.prespecified must list features when "
                             "strategies.names includes 'prespecified'")
        if not self.elasticnet_l1_ratios:
            raise ValueError("strategies.elasticnet_l1_ratios must not be empty")
        return self


class AuditConfig(_Section):
    permutations: Annotated[int, Field(ge=0, le=1000)] = 20
    feature_set: FeatureSetName = "radiomics"
    classifier: ClassifierName = "lr"
    strategies: tuple[StrategyName, ...] = Field(("study",), description=(
        "strategies audited on permuted labels: study (honest and paper, with the "
        "classifier above) and each non-study strategy (honest; it has no paper variant)"))


class ControlsConfig(_Section):
    """Image negative controls (:mod:`workbench.imaging.controls`, ``workbench controls``)."""

    enabled: bool = Field(False, description="run the controls stage in `workbench run`")
    kinds: tuple[ControlKind, ...] = Field(CONTROL_KINDS, description=(
        "shuffled: ROI voxels permuted; random: ROI refilled from its own histogram; moved: "
        "the ROI moved to non-tumour body tissue; random_shape: a random ROI of the same "
        "volume grown from the tumour centre"))
    phases: tuple[str, ...] = Field(("early",), description=(
        "radiomics phases derived and extracted for each control (the real images are "
        "modelled on the same phases, so real and controls compare like with like)"))
    classifier: ClassifierName = "lr"
    seed: int = 0

    @model_validator(mode="after")
    def _distinct(self) -> ControlsConfig:
        for name in ("kinds", "phases"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"controls.{name} must be distinct and non-empty, got "
                                 f"{list(values)}")
        return self


class PerturbationConfig(_Section):
    """One perturbed copy of every sampled patient (applied in this order: rotation and
    translation, noise, mask operation; :mod:`workbench.imaging.perturb`)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_+.-]*$", max_length=40)]
    rotate_deg: Annotated[float, Field(ge=-30, le=30)] = 0.0
    translate_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    noise_sd: Annotated[float, Field(ge=0, le=2)] = 0.0
    mask: Literal["none", "erode", "dilate", "resegment"] = "none"


#: The default perturbation set (see :mod:`workbench.imaging.perturb`): three chains of a
#: small rotation or shift, noise at 5 % of the body SD and a one-voxel volume change or an
#: intensity re-segmentation.
DEFAULT_PERTURBATIONS = (
    PerturbationConfig(name="rot-4_erode", rotate_deg=-4, translate_mm=(0.5, 0, 0),
                       noise_sd=0.05, mask="erode"),
    PerturbationConfig(name="rot+4_dilate", rotate_deg=4, translate_mm=(0, 0.5, 0),
                       noise_sd=0.05, mask="dilate"),
    PerturbationConfig(name="shift_reseg", translate_mm=(0, 0, 0.5), noise_sd=0.05,
                       mask="resegment"),
)


class RobustnessConfig(_Section):
    """Perturbation robustness: ICC(3,1) of every radiomics feature (``workbench
    robustness``)."""

    enabled: bool = Field(False, description="run the robustness stage in `workbench run`")
    patients: Annotated[int, Field(ge=5, le=5000, description=(
        "patients perturbed (a seeded, label-free sample; all when fewer)"))] = 40
    seed: int = 0
    perturbations: tuple[PerturbationConfig, ...] = DEFAULT_PERTURBATIONS
    thresholds: tuple[Annotated[float, Field(ge=0, le=1)], ...] = (0.75, 0.9)

    @model_validator(mode="after")
    def _names(self) -> RobustnessConfig:
        names = [p.name for p in self.perturbations]
        if not names or len(set(names)) != len(names) or "original" in names:
            raise ValueError(f"robustness.perturbations need distinct names other than "
                             f"'original', at least one; got {names}")
        return self


class HarmonisationConfig(_Section):
    """ComBat harmonisation of the image feature blocks, fitted inside every fold."""

    method: Literal["none", "combat"] = "none"
    batch: str = Field("site", description="cohort column naming each patient's site/scanner")
    covariates: tuple[str, ...] = Field(("clin__age", "clin__subtype_*"), description=(
        "clinical design columns (names or patterns) whose effects ComBat protects"))
    compare: bool = Field(True, description=(
        "also run the comparison stage: audit feature set with and without ComBat, ComBat "
        "fitted on the whole cohort (the leak) and a null audit with ComBat"))


class LimitsConfig(_Section):
    """Safety limits on the inputs: they refuse an input, never change a result (so no cache
    key holds them)."""

    max_voxels: Annotated[int, Field(ge=1, description=(
        "largest image accepted, in voxels, checked from each file's header before its pixels "
        "are read (cohort QC and preprocessing): 512**3 by default, as "
        "workbench.imaging.header.DEFAULT_MAX_VOXELS, whose docstring says why"))] = 512**3


class RunConfig(_Section):
    """The whole run: one object, loaded once (see :func:`load_config`)."""

    version: Literal[1] = 1
    name: str = "run"
    description: str = ""
    seed: int = 42
    jobs: Annotated[int, Field(ge=1, le=256)] = 2
    itk_threads: Annotated[int, Field(ge=1, le=256, description=(
        "SimpleITK threads per patient in preprocessing and feature extraction, whatever "
        "jobs / scheduler / CPU count: N4 results depend on it, so it is fixed and part of "
        "every cache key"))] = 1
    cohort: CohortConfig = CohortConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    radiomics: RadiomicsConfig = RadiomicsConfig()
    kinetic: KineticConfig = KineticConfig()
    deep: DeepConfig = DeepConfig()
    selection: SelectionConfig = SelectionConfig()
    feature_sets: tuple[FeatureSetName, ...] = FEATURE_SET_NAMES
    classifiers: tuple[ClassifierName, ...] = CLASSIFIER_NAMES
    protocol: ProtocolConfig = ProtocolConfig()
    strategies: StrategiesConfig = StrategiesConfig()
    audit: AuditConfig = AuditConfig()
    controls: ControlsConfig = ControlsConfig()
    robustness: RobustnessConfig = RobustnessConfig()
    harmonisation: HarmonisationConfig = HarmonisationConfig()
    limits: LimitsConfig = LimitsConfig()
    source: str | None = Field(None, exclude=True, description="file the config came from")

    @model_validator(mode="after")
    def _phases_consistent(self) -> RunConfig:
        missing = [p for p in self.radiomics.phases if p not in self.cohort.phases]
        if missing:
            raise ValueError(f"radiomics.phases {missing} are not among cohort.phases "
                             f"{list(self.cohort.phases)}")
        if "prespecified" in self.audit.strategies and not self.strategies.prespecified:
            raise ValueError("audit.strategies includes 'prespecified' but "
                             "strategies.prespecified lists no feature")
        if self.cohort.format in CLINICAL_ONLY_FORMATS:
            imaging = [fs for fs in self.feature_sets if FEATURE_SETS[fs].blocks]
            if imaging:
                raise ValueError(f"cohort.format '{self.cohort.format}' has no images, but "
                                 f"feature_sets {imaging} need image features; use "
                                 "feature_sets: [clinical]")
            if self.audit.permutations and FEATURE_SETS[self.audit.feature_set].blocks:
                raise ValueError(f"cohort.format '{self.cohort.format}' has no images, but "
                                 f"audit.feature_set '{self.audit.feature_set}' needs image "
                                 "features; use audit.feature_set: clinical or "
                                 "audit.permutations: 0")
        missing = [p for p in self.controls.phases if p not in self.radiomics.phases]
        if self.controls.enabled and missing:
            raise ValueError(f"controls.phases {missing} are not among radiomics.phases "
                             f"{list(self.radiomics.phases)}")
        if self.selection.robust_icc is not None and not self.robustness.enabled:
            raise ValueError("selection.robust_icc needs robustness.enabled: true (the ICC "
                             "table comes from the robustness stage)")
        if self.cohort.format in CLINICAL_ONLY_FORMATS and (
                self.controls.enabled or self.robustness.enabled):
            raise ValueError(f"cohort.format '{self.cohort.format}' has no images: "
                             "controls.enabled and robustness.enabled need images")
        for field in ("feature_sets", "classifiers"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{field} lists a name twice: {list(values)}")
        return self

    def resolve_path(self, value: str | None) -> Path | None:
        """A path from the config, relative to the config file's folder."""
        if value is None:
            return None
        p = Path(value).expanduser()
        if p.is_absolute() or self.source is None:
            return p
        return (Path(self.source).parent / p).resolve()


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return list(current.model_fields) if current is not None else []


def _format_error(err: dict, source: str, model: type[BaseModel]) -> str:
    loc = tuple(err.get("loc", ()))
    key = ".".join(str(p) for p in loc) or "(top level)"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = [k for k in _allowed_keys(model, loc) if k != "source"]
        return f"{source}: {key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return (f"{source}: {key}: {err.get('input')!r} is not allowed; "
                f"allowed values: {expected}")
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    if "input" in err and not isinstance(err["input"], dict):
        return f"{source}: {key}: value {err['input']!r} is invalid: {msg}"
    return f"{source}: {key}: {msg}"


def parse_config(data: dict[str, Any] | None, *, source: str = "<config>") -> RunConfig:
    """Validate a config mapping; raise :class:`ConfigError` listing every problem."""
    data = dict(data or {})
    if "source" in data:
        raise ConfigError(f"{source}: source: unknown key (reserved)", step="config",
                          path=source)
    try:
        return RunConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        lines = [_format_error(e, source, RunConfig) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines),
                          step="config", path=source) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config.

    Raises
    ------
    ConfigError
        On a missing file, invalid YAML, an unknown key or a bad value.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config file not found", step="config", path=p)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", step="config", path=p) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"a config file must hold a mapping at the top, got "
                          f"{type(data).__name__}", step="config", path=p)
    return parse_config(data, source=str(p))
