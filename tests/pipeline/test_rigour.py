"""Radiomics rigour end to end on tiny cohorts: negative controls, perturbation robustness with
the ``robust`` selection step, and in-fold ComBat on a two-site cohort with its comparison.

Radiomics here use the study's parameter file without the wavelet bands (same classes, 9x
faster); the stages do not depend on which image types are enabled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench.cli import main
from workbench.config import load_config
from workbench.pipeline import run_pipeline
from workbench.rundir import RunDir

REPO = Path(__file__).resolve().parents[2]


def _params(root: Path) -> Path:
    params = yaml.safe_load((REPO / "configs" / "radiomics" / "paper.yaml").read_text())
    params["imageType"] = {"Original": {}}
    path = root / "original_only.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _config(root: Path, extra: dict) -> Path:
    base = {"name": "rigour", "jobs": 1,
            "radiomics": {"phases": ["pre", "early"], "params": str(_params(root))},
            "kinetic": {"enabled": False}, "deep": {"networks": []},
            "feature_sets": ["clinical", "radiomics"], "classifiers": ["lr"],
            "strategies": {"names": ["study", "elasticnet"], "repeats": 1, "n_alphas": 5},
            "selection": {"lasso": {"n_alphas": 10, "cv_folds": 3}},
            "protocol": {"cv_folds": 3}, "audit": {"permutations": 0}}
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    path = root / "rigour.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


@pytest.fixture(scope="module")
def rigour_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rigour")
    path = _config(root, {
        "cohort": {"format": "synthetic", "path": "raw", "synthetic": {"n": 16, "seed": 0}},
        "controls": {"enabled": True, "kinds": ["shuffled", "moved"], "phases": ["early"]},
        "robustness": {"enabled": True, "patients": 6,
                       "perturbations": [{"name": "rot", "rotate_deg": 4, "noise_sd": 0.05,
                                          "mask": "erode"}]},
        "selection": {"robust_icc": 0.5, "lasso": {"n_alphas": 10, "cv_folds": 3}}})
    cfg = load_config(path)
    result = run_pipeline(cfg, out=root / "run", cache_dir=root / "cache", progress=False)
    return cfg, root, result


def test_controls_stage_models_real_and_controls_on_the_same_patients(rigour_run):
    cfg, root, result = rigour_run
    run = RunDir(result.run_dir)
    auc = run.read("control_auc")
    assert set(auc["control"]) == {"real", "shuffled", "moved"}
    assert set(auc["family"]) == {"first_order", "texture", "shape", "volume"}
    # volume alone: one feature, the same under every control (each keeps the voxel count)
    vol = auc[auc["family"] == "volume"]
    assert vol["features"].eq(1).all()
    assert vol[vol["control"] == "shuffled"]["note"].str.contains("same voxel count").all()
    assert auc.groupby(["control", "family"]).size().eq(2).all()  # cv and test rows
    assert auc["n"].nunique() <= 2  # every control scored on the same CV / test patients
    # shuffling moves voxels inside the same mask: shape features are the real ones, checked
    shape = auc[auc["family"] == "shape"].set_index(["control", "split"])["auc"]
    assert shape.loc["shuffled"].equals(shape.loc["real"])
    texture = auc[auc["family"] == "texture"]
    assert texture["features"].gt(50).all()
    # the families split the radiomics columns by PyRadiomics class
    first = auc[auc["family"] == "first_order"]
    assert first["features"].between(1, 18 * 2).all()
    # original-image first order is a function of the ROI histogram: a permutation keeps it
    fo = first.set_index(["control", "split"])
    assert fo.loc["shuffled", "auc"].equals(fo.loc["real", "auc"])
    assert fo.loc["shuffled", "note"].str.contains("identical").all()
    summary = run.read("controls_summary")
    assert summary["kinds"] == ["shuffled", "moved"]
    if summary["patients"] < 16:  # a tumour with no room to move: named, not dropped silently
        problems = run.read("controls_problems")
        assert len(problems) == 16 - summary["patients"]
        assert problems["step"].str.contains("control moved").all()
        assert problems["patient_id"].notna().all()
    assert any(line.startswith("negative controls") for line in result.summary)


def test_controls_rerun_is_cached_and_features_come_from_the_store(rigour_run, capsys):
    cfg, root, result = rigour_run
    assert main(["-q", "controls", "--run", str(result.run_dir), "--config",
                 str(cfg.source), "--cache", str(root / "cache")]) == 0
    out = capsys.readouterr().out
    assert "reused" in out and "shuffled" in out


def test_robustness_stage_gives_an_icc_per_feature_and_feeds_the_robust_step(rigour_run):
    cfg, root, result = rigour_run
    run = RunDir(result.run_dir)
    icc = run.read("icc")
    features = run.read("radiomics")
    assert set(icc["feature"]) == set(features.columns)
    assert icc["n_patients"].max() == 6 and icc["n_copies"].max() == 2
    finite = icc["icc"].dropna()
    assert len(finite) > 100 and finite.between(-1, 1).all()
    # shape features of an eroded mask still rank the tumours: mostly reproducible
    shape = icc[icc["feature"].str.contains("_shape_")]["icc"].dropna()
    assert shape.median() > 0.5
    counts = run.read("robust_counts")
    assert {0.75, 0.9} <= set(counts["threshold"])
    # the robust step ran before every selection: no kept radiomics feature is below 0.5
    sel = run.read("selection")
    kept = sel[(sel["block"] == "radiomics") & (sel["stage"] == "variance") & sel["kept"]]
    low = set(icc.loc[~(icc["icc"] >= 0.5), "feature"])
    assert kept.empty or not (set(kept["feature"]) & low)
    selected = run.read("robust_selected")
    assert {"protocol", "feature", "icc", "final"} <= set(selected.columns)
    assert (selected["icc"] >= 0.5).all()


def test_robust_icc_without_the_robustness_stage_is_refused(tmp_path):
    from workbench.config import parse_config
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="robustness.enabled"):
        parse_config({"selection": {"robust_icc": 0.75}})


def test_control_phases_outside_the_radiomics_phases_are_refused_only_when_used(tmp_path):
    from workbench.config import parse_config
    from workbench.errors import ConfigError, WorkbenchError
    from workbench.pipeline.controls import controls_stage

    # a config that does not run the controls is not refused for their default phases
    cfg = parse_config({"radiomics": {"phases": ["pre"]}})
    assert not cfg.controls.enabled and list(cfg.controls.phases) == ["early"]
    with pytest.raises(ConfigError, match=r"controls.phases \['early'\] are not among"):
        parse_config({"radiomics": {"phases": ["pre"]}, "controls": {"enabled": True}})
    # the standalone command checks the same before any work
    with pytest.raises(WorkbenchError, match=r"controls.phases \['early'\] are not among"):
        controls_stage(cfg, tmp_path / "run")


@pytest.fixture(scope="module")
def two_site_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_site")
    path = _config(root, {
        "cohort": {"format": "synthetic", "path": "raw",
                   # 9 pCR of 24: every training fold keeps >= 3 of each class
                   "synthetic": {"seed": 4, "sites": {"development": 12,
                                                      "second_scanner": 12}}},
        "harmonisation": {"method": "combat", "batch": "site",
                          "covariates": ["clin__age"], "compare": True},
        "audit": {"permutations": 2}})
    cfg = load_config(path)
    result = run_pipeline(cfg, out=root / "run", cache_dir=root / "cache", progress=False)
    return cfg, root, result


def test_two_site_run_harmonises_in_fold_and_compares(two_site_run):
    cfg, root, result = two_site_run
    run = RunDir(result.run_dir)
    cohort = run.read("cohort")
    assert set(cohort["site"]) == {"development", "second_scanner"}
    table = run.read("harmonisation_auc")
    assert set(table["variant"]) == {"none", "combat_in_fold", "combat_whole_cohort",
                                     "combat_whole_cohort_pcr"}
    assert table["auc"].notna().all() and (table["note"].fillna("") == "").all()
    assert (table["null_runs"] == 2).all()
    # each variant against no harmonisation on the same patients: paired DeLong
    none = table["variant"] == "none"
    assert table.loc[none, "p_vs_none"].isna().all()
    assert table.loc[~none, "p_vs_none"].between(0, 1).all()
    assert np.allclose(table.loc[~none, "delta_vs_none"],
                       table.loc[~none, "auc"].to_numpy()
                       - table.loc[none].set_index("split").loc[table.loc[~none, "split"],
                                                                "auc"].to_numpy())
    audit = run.read("harmonisation_audit")
    assert len(audit) == 2 * 4 * 2 and audit["auc"].notna().all()
    site = run.read("site_features")
    assert set(site["stage"]) == {"before", "after"}
    # whole-cohort ComBat removes the site difference of the features it shows
    gap = site.groupby(["stage", "feature", "site"])["value"].mean().unstack("site")
    gap = (gap["development"] - gap["second_scanner"]).abs().groupby("stage").mean()
    assert gap["after"] < gap["before"]
    # the model grid itself ran with ComBat inside the selection pipeline
    assert "harmonisation" in result.timings
    assert any(line.startswith("harmonisation") for line in result.summary)


def test_a_harmonised_run_needs_a_site_column(tmp_path):
    from workbench.errors import ConfigError, WorkbenchError
    from workbench.pipeline.settings import harmonisation_inputs

    cfg = load_config(_config(tmp_path, {"harmonisation": {"method": "combat",
                                                           "covariates": ["clin__age"]}}))
    cohort = pd.DataFrame({"patient_id": ["A", "B"], "pcr": [0, 1]})
    clinical = pd.DataFrame({"clin__age": [50.0, np.nan]}, index=["A", "B"])
    with pytest.raises(ConfigError, match="no column 'site'"):
        harmonisation_inputs(cfg, cohort, clinical)
    cohort["site"] = ["x", "x"]
    with pytest.raises(ConfigError, match="single"):
        harmonisation_inputs(cfg, cohort, clinical)
    cohort["site"] = ["x", "y"]
    batch, cov = harmonisation_inputs(cfg, cohort, clinical)
    assert list(batch) == ["x", "y"] and cov["clin__age"].tolist() == [50.0, 50.0]
    cfg = load_config(_config(tmp_path, {"harmonisation": {"method": "combat",
                                                           "covariates": ["clin__agee"]}}))
    with pytest.raises(WorkbenchError, match="closest: clin__age"):
        harmonisation_inputs(cfg, cohort, clinical)
