"""Clinical-only runs, strict predict, refit and external validation, end to end, offline.

One image-less synthetic development cohort (the embedded law, 160 patients) gives a
clinical-only run; the embedded external site (same pCR law, other case mix and prevalence)
is validated against its saved model. Everything here is image-free, so it takes seconds.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from workbench.cli import main
from workbench.cohort import load_cohort
from workbench.cohort.synthetic import generate_cohort
from workbench.config import parse_config
from workbench.errors import WorkbenchError
from workbench.external import CoverageError
from workbench.models.fusion import FusionModel, load_model
from workbench.pipeline.external import refit_stage, score_cohort, validate_stage
from workbench.pipeline.predict import coverage_path, predict_stage
from workbench.pipeline.run import run_pipeline
from workbench.rundir import RunDir

N_DEV, N_EXT = 160, 1000


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    generate_cohort(root / "dev", n=N_DEV, seed=0, images=False, progress=False)
    generate_cohort(root / "ext", n=N_EXT, seed=1, site="external", images=False,
                    progress=False)
    cfg = parse_config({"name": "dev-clinical",
                        "cohort": {"format": "manifest", "path": "dev/manifest.csv"},
                        "feature_sets": ["clinical"], "classifiers": ["lr"],
                        "protocol": {"kinds": ["honest"]}, "audit": {"permutations": 0}},
                       source=str(root / "config.yaml"))
    result = run_pipeline(cfg, out=root / "run", cache_dir=root / "cache", progress=False)
    model = RunDir(result.run_dir).path("model", protocol="honest", feature_set="clinical",
                                        classifier="lr")
    return {"root": root, "run": result, "model": model}


def test_a_clinical_only_run_models_every_labelled_patient_without_image_stages(world):
    result = world["run"]
    run = result.run
    assert not run.exists("preprocessed") and run.feature_families() == []
    problems = run.read("problems")
    assert problems["message"].str.contains("image QC, preprocessing and feature extraction "
                                            "skipped").any()
    excluded = run.read("model_excluded")
    assert excluded.empty  # all 160 labelled patients modelled
    split = run.read("split")
    assert len(split) == N_DEV
    assert any("images: QC, preprocessing and features skipped" in line
               for line in result.summary)
    meta = load_model(world["model"]).metadata
    assert meta["fitted_on"].startswith("training split of the development run")


def test_external_validation_contains_the_generator_truth_and_is_fast(world):
    ext = load_cohort(world["root"] / "ext" / "manifest.csv")
    start = time.perf_counter()
    summary = validate_stage(world["model"], ext, name="site-b", n_boot=2000, seed=0)
    seconds = time.perf_counter() - start
    assert seconds <= 30, f"validation of {N_EXT} patients took {seconds:.1f} s (target 30 s)"
    folder = world["run"].run_dir / "validation" / "site-b"
    assert json.loads((folder / "summary.json").read_text())["cohort"]["n_scored"] == N_EXT
    h, truth = summary["headline"], summary["truth"]
    assert truth is not None
    assert h["citl_low"] <= truth["citl"] <= h["citl_high"]
    assert h["slope_low"] <= truth["slope"] <= h["slope_high"]
    metrics = pd.read_csv(folder / "metrics.csv").set_index(["variant", "metric"])
    for variant in ("recalibrated_intercept", "recalibrated_logistic"):
        assert abs(metrics.loc[(variant, "citl_cv"), "estimate"]) <= 0.1
    # a shifted site: case mix and membership say so
    mix = pd.read_csv(folder / "case_mix.csv")
    assert mix["smd"].abs().max() > 0.1
    assert 0.5 < summary["membership"]["auc"] < 1
    assert (folder / "report.html").is_file()


def test_predict_only_validation_of_an_unlabelled_cohort(world, tmp_path):
    frame = pd.read_csv(world["root"] / "ext" / "manifest.csv").head(50).drop(columns="pcr")
    frame.to_csv(tmp_path / "unlabelled.csv", index=False)
    summary = validate_stage(world["model"], load_cohort(tmp_path / "unlabelled.csv"),
                             out=tmp_path / "v", n_boot=200, report=False)
    assert summary["headline"] is None and not summary["labelled"]
    assert any("no labels" in s for s in summary["skipped"])
    assert not (tmp_path / "v" / "metrics.csv").exists()
    assert (tmp_path / "v" / "predictions.csv").is_file()


def _external_frame(world) -> pd.DataFrame:
    return pd.read_csv(world["root"] / "ext" / "manifest.csv").head(200)


def test_predict_refuses_an_absent_feature_unless_allowed(world, tmp_path):
    frame = _external_frame(world).drop(columns=["hr_her2"])
    frame.to_csv(tmp_path / "c.csv", index=False)
    cohort = load_cohort(tmp_path / "c.csv")
    out = tmp_path / "p.csv"
    with pytest.raises(CoverageError, match="absent: hr_her2"):
        predict_stage(world["model"], cohort, out)
    assert coverage_path(out).is_file()  # written before failing
    result = predict_stage(world["model"], cohort, out, allow_missing=True)
    cov = result.attrs["coverage"].set_index("feature")
    assert cov.loc["clin__subtype_tn", "status"] == "absent"
    assert cov.loc["clin__subtype_tn", "n_imputed"] == 200
    assert result["imputed"].str.contains("clin__subtype_tn").all()


def test_zero_one_receptors_decode_and_miscoded_values_are_refused(world, tmp_path):
    frame = _external_frame(world)
    reference = predict_stage(world["model"], load_cohort(_write(frame, tmp_path / "a.csv")),
                              tmp_path / "a_out.csv")
    coded = frame.assign(**{c: frame[c].map({"positive": 1, "negative": 0})
                            for c in ("er", "pgr", "hr", "her2")})
    same = predict_stage(world["model"], load_cohort(_write(coded, tmp_path / "b.csv")),
                         tmp_path / "b_out.csv")
    np.testing.assert_allclose(same["probability"], reference["probability"])
    bad = frame.copy()
    bad.loc[0, "er"] = "pos."
    cohort = load_cohort(_write(bad, tmp_path / "c.csv"))
    with pytest.raises(CoverageError, match="unmappable: er"):
        predict_stage(world["model"], cohort, tmp_path / "c_out.csv")


def _write(frame: pd.DataFrame, path):
    frame.to_csv(path, index=False)
    return path


def test_the_cli_prints_the_coverage_and_exits_2_on_a_missing_feature(world, tmp_path,
                                                                       capsys):
    frame = _external_frame(world).drop(columns=["age"]).assign(scanner="GE")
    code = main(["-q", "predict", "--model", str(world["model"]), "--cohort",
                 str(_write(frame, tmp_path / "c.csv")), "--out", str(tmp_path / "p.csv")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "coverage of" in out and "absent: age (clin__age)" in out
    assert "['scanner'] are not cohort columns; ignored" in out  # said, not silently kept
    assert "--allow-missing" in err
    code = main(["-q", "predict", "--model", str(world["model"]), "--cohort",
                 str(tmp_path / "c.csv"), "--out", str(tmp_path / "p.csv"), "--allow-missing"])
    assert code == 0


def test_refit_on_the_development_cohort_records_what_it_was_fitted_on(world):
    path = refit_stage(world["model"])
    assert path == world["run"].run.path("deployed_model", protocol="honest",
                                         feature_set="clinical", classifier="lr")
    meta = load_model(path).metadata
    assert meta["fitted_on"].startswith(f"whole development cohort ({N_DEV} patients")
    assert "has no held-out patients" in meta["estimates_from"]
    assert len(meta["train_patients"]) == N_DEV


def test_an_image_model_on_an_image_less_cohort_says_so(world):
    clf = LogisticRegression().fit(np.c_[[0.0, 1.0, 2.0, 3.0]], [0, 1, 0, 1])
    model = FusionModel(blocks={}, classifier=clf, design_columns=["rad__x"], block_inputs={},
                        feature_set="radiomics", classifier_name="lr",
                        metadata={"config": {"name": "image-model"}}).fit(None)
    ext = load_cohort(world["root"] / "ext" / "manifest.csv")
    with pytest.raises(WorkbenchError, match="has no images, but the model"):
        score_cohort(model, ext)


def test_the_clinical_only_report_says_why_selection_is_empty(world):
    html = (world["run"].run_dir / "report.html").read_text(encoding="utf-8")
    assert "No feature block was selected" in html


def test_validate_refit_and_synth_through_the_cli(world, tmp_path, capsys):
    assert main(["-q", "synth", "--site", "external", "--no-images", "--n", "120", "--seed",
                 "5", "--out", str(tmp_path / "site")]) == 0
    manifest = pd.read_csv(tmp_path / "site" / "manifest.csv")
    assert manifest["patient_id"].iloc[0] == "EXT0001"
    assert not [c for c in manifest.columns if c.startswith("image_") or c == "mask"]
    assert main(["-q", "refit", "--model", str(world["model"]), "--out",
                 str(tmp_path / "deployed.skops")]) == 0
    capsys.readouterr()
    code = main(["-q", "validate", "--model", str(tmp_path / "deployed.skops"), "--cohort",
                 str(tmp_path / "site" / "manifest.csv"), "--run", str(world["run"].run_dir),
                 "--out", str(tmp_path / "v"), "--n-boot", "200"])
    out = capsys.readouterr().out
    assert code == 0
    assert "fitted on the whole development cohort (160 patients" in out
    assert "external AUC" in out and "generator truth: CITL" in out
    summary = json.loads((tmp_path / "v" / "summary.json").read_text())
    assert summary["development"]["n"] == N_DEV  # the refit's patients: all of them


def test_a_model_file_from_a_newer_format_is_refused_clearly(world, tmp_path, capsys):
    from workbench.models.fusion import save_model

    model = load_model(world["model"])
    model.metadata = {**model.metadata, "model_format": 99,
                      "versions": {"workbench": "9.0"}}
    save_model(model, tmp_path / "future.skops")
    code = main(["-q", "predict", "--model", str(tmp_path / "future.skops"), "--cohort",
                 str(world["root"] / "ext" / "manifest.csv"), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert "model file format 99 was written by workbench 9.0" in err


def test_the_shipped_ispy1_clinical_config_runs_on_the_real_workbook(tmp_path):
    from pathlib import Path

    from workbench.config import load_config

    config = Path(__file__).resolve().parents[2] / "configs" / "ispy1_clinical.yaml"
    cfg = load_config(config)
    small = cfg.model_copy(update={
        "classifiers": ("lr",),
        "protocol": cfg.protocol.model_copy(update={"repeats": 1}),
        "strategies": cfg.strategies.model_copy(update={"names": ("study",)}),
        "audit": cfg.audit.model_copy(update={"permutations": 0})})
    result = run_pipeline(small, out=tmp_path / "run", cache_dir=tmp_path / "cache",
                          progress=False)
    assert "215 used" in result.models.exclusion_line  # every labelled I-SPY1 patient
    metrics = result.run.read("metrics")
    auc = metrics[(metrics["split"] == "test") & (metrics["metric"] == "auc")]["value"]
    assert 0.6 < float(auc.iloc[0]) < 0.95
