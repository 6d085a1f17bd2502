"""The config's ``strategies`` section and ``protocol.class_balance`` / ``recalibration``:
refused values name the key, defaults are the study's, and every key reaches the stage
arguments (pipeline.settings)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from workbench.config import RunConfig, StrategiesConfig, load_config, parse_config
from workbench.errors import ConfigError
from workbench.names import STRATEGY_NAMES
from workbench.pipeline.settings import (
    protocol_settings,
    strategy_factory,
    strategy_grid,
    strategy_settings,
)
from workbench.selection import StrategySettings

REPO = Path(__file__).resolve().parents[1]


def _error(data) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="run.yaml")
    text = str(info.value)
    assert "run.yaml" in text  # names the file
    return text


@pytest.mark.parametrize("value", [0, 1.5, -0.2])
def test_cluster_threshold_outside_zero_one_is_refused(value):
    text = _error({"strategies": {"cluster_threshold": value}})
    assert f"strategies.cluster_threshold: value {value!r} is invalid" in text


def test_cluster_threshold_one_is_allowed():
    assert parse_config({"strategies": {"cluster_threshold": 1}}).strategies.cluster_threshold == 1


def test_prespecified_strategy_needs_a_feature_list():
    text = _error({"strategies": {"names": ["study", "prespecified"]}})
    assert "strategies.prespecified must list features" in text
    cfg = parse_config({"strategies": {"names": ["study", "prespecified"],
                                       "prespecified": ["rad__early_original_shape_*"]}})
    assert cfg.strategies.prespecified == ("rad__early_original_shape_*",)
    text = _error({"audit": {"strategies": ["prespecified"]}})  # the audit's too
    assert "audit.strategies includes 'prespecified'" in text


def test_unknown_strategy_lists_the_allowed_ones():
    text = _error({"strategies": {"names": ["study", "lasso"]}})
    assert "strategies.names.1: 'lasso' is not allowed; allowed values: " in text
    assert all(repr(name) in text for name in STRATEGY_NAMES)
    text = _error({"audit": {"strategies": ["clusters"]}})
    assert "audit.strategies.0: 'clusters' is not allowed" in text


def test_strategy_names_must_be_distinct_and_non_empty():
    assert "strategies.names must be distinct" in _error(
        {"strategies": {"names": ["cluster", "cluster"]}})
    assert "strategies.names must be distinct and non-empty" in _error(
        {"strategies": {"names": []}})


@pytest.mark.parametrize(("key", "value"), [
    ("stability_threshold", 0.5), ("repeats", 0), ("inner_cv", 1), ("n_alphas", 1),
    ("scoring", "roc_auc"), ("elasticnet_l1_ratios", [0.0]), ("stability_subsamples", 1),
])
def test_other_strategy_settings_are_range_checked(key, value):
    text = _error({"strategies": {key: value}})
    assert f"strategies.{key}" in text


def test_empty_elasticnet_grid_is_refused():
    assert "elasticnet_l1_ratios must not be empty" in _error(
        {"strategies": {"elasticnet_l1_ratios": []}})


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("class_balance", "weighted", ("none", "balanced")),
    ("recalibration", "beta", ("none", "platt", "isotonic")),
])
def test_protocol_balance_and_recalibration_are_named(key, value, allowed):
    text = _error({"protocol": {key: value}})
    assert f"protocol.{key}: {value!r} is not allowed; allowed values: " in text
    assert all(repr(a) in text for a in allowed)


def test_unknown_strategies_key_lists_the_allowed_keys():
    text = _error({"strategies": {"threshold": 0.8}})
    assert "strategies.threshold: unknown key" in text and "cluster_threshold" in text


def test_defaults_run_the_study_chain_uncalibrated_and_unbalanced():
    cfg = parse_config({})
    assert cfg.strategies.names == ("study",)
    assert cfg.audit.strategies == ("study",)
    assert cfg.protocol.class_balance == "none"
    assert cfg.protocol.recalibration == "none"
    assert strategy_grid(cfg) == ((), cfg.feature_sets)  # no non-study strategy runs


def test_paper_config_keeps_the_study_class_balance():
    cfg = load_config(REPO / "configs" / "paper.yaml")
    assert cfg.protocol.class_balance == "balanced"
    assert cfg.strategies.names == ("study",)


def test_every_strategies_key_reaches_the_strategy_settings():
    values = {"cluster_threshold": 0.6, "inner_cv": 4, "scoring": "auc", "n_alphas": 12,
              "elasticnet_l1_ratios": [0.2, 1.0], "stability_threshold": 0.9,
              "stability_expected_false": 2.0, "stability_subsamples": 8,
              "prespecified": ["kin__ser_*"]}
    cfg = parse_config({"strategies": {"names": ["cluster", "prespecified"], **values}})
    settings = strategy_settings(cfg)
    for key, value in values.items():
        got = getattr(settings, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key
    # no key of the section is left behind (names, feature_sets and repeats are the
    # grid's and the protocol's, below)
    passed = {f.name for f in fields(StrategySettings)}
    assert set(StrategiesConfig.model_fields) - passed == {"names", "feature_sets", "repeats"}
    pipe = strategy_factory(cfg)("cluster", 3)
    assert pipe.named_steps["clusters"].threshold == 0.6
    assert pipe.named_steps["model"].get_params()["cv"] == 4
    assert pipe.named_steps["model"].random_state == 3


def test_strategy_grid_and_repeats():
    cfg = RunConfig(feature_sets=["radiomics", "fusion"],
                    strategies={"names": ["study", "cluster", "elasticnet"], "repeats": 3})
    assert strategy_grid(cfg) == (("cluster", "elasticnet"), ("radiomics", "fusion"))
    assert protocol_settings(cfg).strategy_repeats == 3
    assert protocol_settings(cfg, repeats=1).strategy_repeats == 1  # the quick override
    own = RunConfig(strategies={"names": ["cluster"], "feature_sets": ["fusion_clinical"]})
    assert strategy_grid(own) == (("cluster",), ("fusion_clinical",))
