from pathlib import Path

import pytest

from workbench.config import RunConfig, load_config, parse_config
from workbench.errors import ConfigError
from workbench.names import (
    CLASSIFIER_NAMES,
    FEATURE_SET_NAMES,
    NETWORK_NAMES,
    PROTOCOL_NAMES,
    RUN_COHORT_FORMATS,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["paper.yaml", "demo.yaml", "demo_lr.yaml",
                                  "learning_curve.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.source.endswith(name)
    assert set(cfg.classifiers) <= set(CLASSIFIER_NAMES)


def test_paper_config_holds_the_study_settings():
    cfg = load_config(REPO / "configs" / "paper.yaml")
    assert cfg.protocol.class_balance == "balanced"  # the study's weights; our default: none
    assert cfg.radiomics.phases == ("pre", "early")
    assert cfg.selection.variance_threshold == 1e-8 and cfg.selection.alpha == 0.05
    lasso = cfg.selection.lasso
    assert (lasso.n_alphas, lasso.alpha_min, lasso.alpha_max, lasso.cv_folds) == (100, 1e-4, 1.0, 10)
    assert (lasso.max_iter, lasso.tol) == (100_000, 1e-6)
    assert len(cfg.classifiers) == 10
    assert (cfg.protocol.test_size, cfg.protocol.cv_folds) == (0.3, 5)
    assert len(cfg.deep.networks) == 5


def test_twelve_feature_sets_are_known():
    assert len(FEATURE_SET_NAMES) == 12


def test_defaults_are_the_registries():
    cfg = RunConfig()
    assert cfg.classifiers == CLASSIFIER_NAMES and cfg.feature_sets == FEATURE_SET_NAMES
    assert cfg.deep.networks == NETWORK_NAMES and cfg.protocol.kinds == PROTOCOL_NAMES


@pytest.mark.parametrize(("data", "key", "names"), [
    ({"cohort": {"format": "dicom", "path": "x"}}, "cohort.format", RUN_COHORT_FORMATS),
    ({"deep": {"networks": ["vgg16"]}}, "deep.networks.0", NETWORK_NAMES),
    ({"feature_sets": ["everything"]}, "feature_sets.0", FEATURE_SET_NAMES),
    ({"audit": {"classifier": "svm"}}, "audit.classifier", CLASSIFIER_NAMES),
    ({"protocol": {"kinds": ["honst"]}}, "protocol.kinds.0", PROTOCOL_NAMES),
])
def test_registry_values_are_checked_against_the_registry(data, key, names):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    text = str(info.value)
    assert f"{key}: " in text and "is not allowed; allowed values: " in text
    assert all(repr(name) in text for name in names)


def _error(data, tmp_path) -> str:
    import yaml

    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(f)
    text = str(info.value)
    assert str(f) in text  # names the file
    return text


def test_unknown_key_names_key_allowed_keys_and_file(tmp_path):
    text = _error({"cohort": {"format": "synthetic", "pth": "x"}}, tmp_path)
    assert "cohort.pth: unknown key" in text
    assert "format, path, phases, synthetic" in text


def test_unknown_top_level_key(tmp_path):
    text = _error({"clasifiers": ["lr"]}, tmp_path)
    assert "clasifiers: unknown key" in text and "classifiers" in text


def test_bad_value_names_allowed_values(tmp_path):
    text = _error({"classifiers": ["lr", "random_forest"]}, tmp_path)
    assert "classifiers.1" in text and "'random_forest'" in text and "'rf'" in text


def test_out_of_range_value(tmp_path):
    text = _error({"selection": {"alpha": 1.5}}, tmp_path)
    assert "selection.alpha" in text and "1.5" in text


def test_every_error_is_reported_at_once(tmp_path):
    text = _error({"seed": "x", "protocol": {"kinds": ["honst"]}}, tmp_path)
    assert "seed" in text and "protocol.kinds.0" in text


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="alpha_min"):
        parse_config({"selection": {"lasso": {"alpha_min": 2, "alpha_max": 1}}})
    with pytest.raises(ConfigError, match="radiomics.phases"):
        parse_config({"radiomics": {"phases": ["pre", "t5"]}})
    with pytest.raises(ConfigError, match="cohort.path is required"):
        parse_config({"cohort": {"format": "ispy1"}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_relative_paths_resolve_against_the_config_file():
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert cfg.resolve_path(cfg.cohort.path) == (REPO / "data" / "raw" / "synthetic").resolve()
