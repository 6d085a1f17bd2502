"""Everything a run will read, checked before any work starts.

:func:`~workbench.config.load_config` validates the config's own keys and values; this module
checks what they point to, so a bad radiomics parameter file or a wrong path fails in a second
with its file and key named, not after the whole cohort was preprocessed:

* the cohort path exists and has the shape its format reads (a manifest CSV or a folder holding
  ``manifest.csv``; a dataset folder for the other formats);
* the radiomics parameter file is found, parses and has valid settings
  (:func:`~workbench.features.radiomics_params.load_params`: bin width or count > 0, known
  image types, feature classes and features, resampling spacing...);
* kinetics have the pre / early / late phases they read;
* a deep weights path exists, and ``require_pretrained`` does not ask for random weights;
* the null audit's feature set uses only blocks that the run extracts.

``workbench config check``, ``workbench run`` (:func:`~workbench.pipeline.run.run_pipeline`)
and ``workbench extract`` call :func:`require_run_inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.config import RunConfig
from workbench.errors import ConfigError
from workbench.features.radiomics_params import load_params
from workbench.names import FEATURE_SETS, NETWORK_NAMES, SYNTHETIC_FORMAT
from workbench.pipeline.settings import cohort_path, needs_images, radiomics_params_path

__all__ = ["KINETIC_PHASES", "RUN_STAGES", "check_run_inputs", "require_run_inputs"]

#: Stages whose inputs can be checked, in run order.
RUN_STAGES = ("cohort", "radiomics", "kinetic", "deep", "audit")
#: The phases the kinetic stage reads (see :func:`~workbench.features.kinetic.extract_kinetic`).
KINETIC_PHASES = ("pre", "early", "late")
_DATASET_FORMATS = ("ispy1", "mama_mia", "breastdcedl")


def check_run_inputs(cfg: RunConfig, stages: Sequence[str] = RUN_STAGES) -> list[str]:
    """Every problem with what ``stages`` of a run will read, one line each, naming the file
    and the key; an empty list when the run can start."""
    unknown = sorted(set(stages) - set(RUN_STAGES))
    if unknown:
        raise ValueError(f"stages must be among {RUN_STAGES}, got {unknown}")
    source = cfg.source or "<config>"
    problems: list[str] = []
    if "cohort" in stages:
        problems += _cohort(cfg, source)
    if not needs_images(cfg):  # a clinical-only run: no image stage will read anything
        return problems
    if "radiomics" in stages:
        problems += _radiomics(cfg, source)
    if "kinetic" in stages and cfg.kinetic.enabled:
        missing = [p for p in KINETIC_PHASES if p not in cfg.cohort.phases]
        if missing:
            problems.append(f"{source}: kinetic.enabled: kinetics read the phases "
                            f"{list(KINETIC_PHASES)}, but cohort.phases "
                            f"{list(cfg.cohort.phases)} lack {missing}; name them so or set "
                            "kinetic.enabled: false")
    if "deep" in stages and cfg.deep.networks:
        problems += _deep(cfg, source)
    if "audit" in stages and cfg.audit.permutations:
        missing = sorted(set(FEATURE_SETS[cfg.audit.feature_set].blocks) - _extracted(cfg))
        if missing:
            problems.append(f"{source}: audit.feature_set: '{cfg.audit.feature_set}' needs "
                            f"the feature blocks {missing}, which this config does not "
                            "extract; choose another set or set audit.permutations: 0")
    return problems


def require_run_inputs(cfg: RunConfig, stages: Sequence[str] = RUN_STAGES) -> None:
    """Raise :class:`ConfigError` listing every problem :func:`check_run_inputs` finds."""
    problems = check_run_inputs(cfg, stages)
    if problems:
        sep = "\n  " if len(problems) > 1 else " "
        raise ConfigError("the run cannot start:" + sep + sep.join(problems), step="config")


# --------------------------------------------------------------------------- one check each
def _cohort(cfg: RunConfig, source: str) -> list[str]:
    fmt = cfg.cohort.format
    path = cohort_path(cfg)
    if fmt == SYNTHETIC_FORMAT:  # generated into its folder when missing
        if path is not None and path.is_file():
            return [f"{source}: cohort.path: {path} is a file; the synthetic cohort is a "
                    "folder (generated there when missing)"]
        return []
    if path is None or not path.exists():
        return [f"{source}: cohort.path: {path} not found (format {fmt}; relative paths are "
                "relative to the config file)"]
    if fmt == "manifest" and path.is_dir() and not (path / "manifest.csv").is_file():
        return [f"{source}: cohort.path: the folder {path} holds no manifest.csv; give the "
                "manifest CSV itself"]
    if fmt in _DATASET_FORMATS and not path.is_dir():
        return [f"{source}: cohort.path: {path} is a file; format {fmt} reads the dataset's "
                "root folder"]
    return []


def _radiomics(cfg: RunConfig, source: str) -> list[str]:
    try:
        path = radiomics_params_path(cfg)
    except ConfigError as err:
        return [f"{source}: radiomics.params: {err.message}"]
    try:
        load_params(path)
    except ConfigError as err:
        return [f"{path}: {err.message} (radiomics.params of {source})"]
    return []


def _deep(cfg: RunConfig, source: str) -> list[str]:
    weights = cfg.deep.weights
    if weights == "random" and cfg.deep.require_pretrained:
        return [f"{source}: deep.require_pretrained: true, but deep.weights is 'random'"]
    if weights in ("imagenet", "random"):
        return []
    path = cfg.resolve_path(weights)
    if path is None or not path.exists():
        return [f"{source}: deep.weights: {path} not found (a weight file or folder, "
                "'imagenet' or 'random'; relative paths are relative to the config file)"]
    return []


def _extracted(cfg: RunConfig) -> set[str]:
    """The feature blocks a run of ``cfg`` extracts."""
    blocks = {"radiomics"}
    if cfg.kinetic.enabled:
        blocks.add("kinetic")
    return blocks | {n for n in cfg.deep.networks if n in NETWORK_NAMES}
