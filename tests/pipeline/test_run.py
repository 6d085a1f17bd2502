"""The pipeline so far, end to end on a tiny synthetic cohort, as `make demo` runs it."""

import json

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.config import parse_config
from workbench.pipeline import run_pipeline

pytestmark = pytest.mark.tf  # the deep stage runs (one random-weight network)

N = 16  # patients in the tiny cohort (seed 0: both classes, enough for 3-fold CV)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    import yaml

    from workbench.config import load_config

    (root / "tiny.yaml").write_text(yaml.safe_dump(
        {"name": "tiny", "jobs": 1,
         "cohort": {"format": "synthetic", "path": "raw", "synthetic": {"n": N, "seed": 0}},
         "deep": {"networks": ["efficientnetb0"], "weights": "random", "batch_size": 8},
         "feature_sets": ["clinical", "radiomics", "kinetic", "efficientnetb0"],
         "classifiers": ["lr", "rf"],
         "selection": {"lasso": {"n_alphas": 10}},
         "protocol": {"cv_folds": 3}, "audit": {"permutations": 2}}))
    cfg = load_config(root / "tiny.yaml")
    result = run_pipeline(cfg, out=root / "run", cache_dir=root / "cache", progress=False)
    return cfg, root, result


def test_run_directory_contract(tiny_run):
    cfg, root, result = tiny_run
    run = result.run_dir
    cohort = pd.read_parquet(run / "cohort" / "cohort.parquet")
    assert len(cohort) == N and cohort["patient_id"].is_unique
    pre = pd.read_parquet(run / "preprocessed.parquet")
    assert set(pre["patient_id"]) == set(cohort["patient_id"])
    assert (run / "table1" / "table1.html").is_file()
    assert (run / "table1" / "split.csv").is_file()
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["config"]["name"] == "tiny" and manifest["seed"] == cfg.seed
    assert manifest["packages"]["SimpleITK"]
    hashed = [k for k, v in manifest["inputs"].items() if v]
    # 3 phases + mask per patient, the config file and the cohort table (manifest.csv)
    assert len(hashed) == N * 4 + 2 and "cohort_source" in hashed
    assert manifest["cohort"]["preprocessed"] == N
    assert any(f"preprocessed {N} ({N} computed, 0 cached)" in line for line in result.summary)
    rad = pd.read_parquet(run / "features" / "radiomics.parquet")
    assert rad.shape == (N, 1702) and set(rad.index) == set(cohort["patient_id"])
    kin = pd.read_parquet(run / "features" / "kinetic.parquet")
    assert len(kin) == N and all(c.startswith("kin__") for c in kin.columns)
    deep = pd.read_parquet(run / "features" / "deep.parquet")
    assert deep.shape == (N, 1280) and deep.columns[0] == "dl_efficientnetb0__0"
    assert manifest["deep_weights"]["networks"]["efficientnetb0"]["kind"] == "random"
    assert any(line.startswith("deep weights: RANDOM") for line in result.summary)
    preds = pd.read_parquet(run / "models" / "predictions.parquet")
    assert set(preds["protocol"]) == {"honest", "paper"}
    assert set(preds["feature_set"]) == {"clinical", "radiomics", "kinetic", "efficientnetb0"}
    metrics = pd.read_parquet(run / "models" / "metrics.parquet")
    assert (metrics.loc[metrics["protocol"] == "paper", "warning"].str.contains("leakage")).all()
    assert (run / "models" / "honest" / "radiomics__lr.skops").is_file()
    audit = pd.read_parquet(run / "audit" / "null_audit.parquet")
    assert audit["permutation"].nunique() == 2 and set(audit["protocol"]) == {"honest", "paper"}
    assert manifest["features"]["radiomics"]["columns"] == 1702
    assert manifest["ibsi"]["line"] == "IBSI digital phantom: 282/282 matched"  # shipped data


def test_every_file_of_the_run_is_in_the_contract(tiny_run):
    import re

    from workbench.rundir import RUN_FILES, RunDir

    _, _, result = tiny_run
    run = RunDir(result.run_dir)
    patterns = {name: re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(spec.path)) + "$")
                for name, spec in RUN_FILES.items()}
    written = sorted(p.relative_to(run.root).as_posix() for p in run.root.rglob("*")
                     if p.is_file())
    stray = [f for f in written if not any(rx.match(f) for rx in patterns.values())]
    assert not stray, f"files outside the run-directory contract: {stray}"
    required = [n for n, s in RUN_FILES.items() if not s.optional]
    assert all(run.exists(n) for n in required)
    assert len(run.glob("crop")) == N and len(run.glob("model")) == 2 * 4 * 2


def test_rerun_uses_every_cache(tiny_run):
    cfg, root, first = tiny_run
    report_stat = (first.report.stat().st_ino, first.report.stat().st_mtime_ns)
    again = run_pipeline(cfg, out=root / "run", cache_dir=root / "cache", progress=False)
    assert any(f"preprocessed {N} (0 computed, {N} cached)" in line for line in again.summary)
    assert any(f"radiomics: 1702 features x {N} patients (0 computed" in line
               for line in again.summary)
    assert "models: inputs, settings and code unchanged; outputs reused" in again.summary
    assert "null audit: inputs, settings and code unchanged; outputs reused" in again.summary
    assert again.report is not None and again.report.is_file()
    assert (again.report.stat().st_ino, again.report.stat().st_mtime_ns) == report_stat
    assert len(list((root / "cache" / "qc").glob("*.json"))) == N  # QC results by content


def test_model_cache_key_follows_inputs_settings_and_code(tiny_run, monkeypatch):
    from workbench.pipeline import cache as stage_cache
    from workbench.pipeline.models import load_modelling_inputs, model_stage
    from workbench.pipeline.settings import modelling_settings
    from workbench.rundir import MODEL_OUTPUTS, RunDir

    cfg, _, result = tiny_run
    models = result.run_dir / "models"
    before = (models / "metrics.parquet").stat().st_mtime_ns
    assert model_stage(cfg, result.run_dir, progress=False).cached
    assert (models / "metrics.parquet").stat().st_mtime_ns == before  # nothing rewritten

    features, clinical, y = load_modelling_inputs(result.run_dir)
    settings = modelling_settings(cfg)
    run = RunDir(result.run_dir)

    def current(frames=(features, clinical, y), config=settings, outputs=MODEL_OUTPUTS):
        key = stage_cache.stage_key(list(frames), config)
        paths = [run.path(o) if o in MODEL_OUTPUTS else models / o for o in outputs]
        return stage_cache.is_current(run.path("models_key"), key, paths) is not None

    assert current()
    flipped = y.copy()
    flipped.iloc[0] = 1 - flipped.iloc[0]
    assert not current(frames=(features, clinical, flipped))  # a label changed
    assert not current(config=modelling_settings(cfg.model_copy(update={"seed": 1})))
    assert not current(outputs=(*MODEL_OUTPUTS, "not_written.parquet"))
    monkeypatch.setattr(stage_cache, "code_digest", lambda packages: "edited code")
    assert not current()  # the modelling code changed


def test_the_report_is_rebuilt_only_when_what_it_shows_changes(tiny_run, tmp_path,
                                                              monkeypatch):
    import shutil

    import workbench.report
    from workbench.pipeline import stages
    from workbench.rundata import RunData

    cfg, _, result = tiny_run
    run = tmp_path / "run"
    shutil.copytree(result.run_dir, run)
    report, manifest_file = run / "report.html", run / "run_manifest.json"
    builds, read = [], []
    real_build, real_read = workbench.report.build_report, RunData.read
    monkeypatch.setattr(workbench.report, "build_report", lambda *a, **k: (
        builds.append(a), real_build(*a, **k))[1])
    monkeypatch.setattr(RunData, "read", lambda self, name, **k: (read.append(name),
                                                                  real_read(self, name, **k))[1])
    kept = (report.stat().st_ino, report.stat().st_mtime_ns)
    assert stages.report_stage(run) == report and builds == []  # copied with its key

    manifest = json.loads(manifest_file.read_text())
    manifest.update(created_utc="2031-01-01T00:00:00+00:00", command=["elsewhere"],
                    git={"commit": "0" * 40, "dirty": not manifest["git"]["dirty"]},
                    stages_seconds={name: 1e6 for name in manifest["stages_seconds"]})
    for facts in manifest["features"].values():
        facts.update(seconds=1e6, cached=facts["computed"], computed=0)
    manifest["models"].update(seconds=1e6, cached=not manifest["models"]["cached"])
    manifest_file.write_text(json.dumps(manifest))  # only how the run went: nothing shown
    assert stages.report_stage(run) == report and builds == []
    assert (report.stat().st_ino, report.stat().st_mtime_ns) == kept

    key = stages.report_key(run)
    manifest_file.write_text(json.dumps({**manifest, "seed": cfg.seed + 1}))
    assert stages.report_key(run) != key  # what the provenance section shows
    manifest_file.write_text(json.dumps(manifest))
    assert stages.report_key(run) == key
    with monkeypatch.context() as patched:
        patched.setattr(stages, "code_digest", lambda packages: "edited report code")
        assert stages.report_key(run) != key

    metrics = pd.read_parquet(run / "models" / "metrics.parquet")
    metrics.loc[metrics.index[0], "value"] = 1 - metrics.loc[metrics.index[0], "value"]
    metrics.to_parquet(run / "models" / "metrics.parquet")
    assert stages.report_stage(run) == report and len(builds) == 1
    assert report.stat().st_mtime_ns != kept[1]
    assert read and set(read) - {"manifest"} <= set(stages.REPORT_INPUTS)  # keyed on all
    assert stages.report_stage(run) == report and len(builds) == 1  # current again


def test_preprocessed_images_are_1mm_zscored(tiny_run):
    import numpy as np
    import SimpleITK as sitk

    _, _, result = tiny_run
    pre = pd.read_parquet(result.run_dir / "preprocessed.parquet").iloc[0]
    img = sitk.ReadImage(pre["image_pre"])
    assert np.allclose(img.GetSpacing(), (1.0, 1.0, 1.0))
    mask = sitk.ReadImage(pre["mask"])
    assert mask.GetSize() == img.GetSize()
    assert set(np.unique(sitk.GetArrayViewFromImage(mask))) == {0, 1}


def test_a_cohort_too_small_to_split_skips_table1_with_a_reason(tmp_path):
    cfg = parse_config({"name": "one-class", "jobs": 1,
                        "cohort": {"format": "synthetic", "path": str(tmp_path / "raw"),
                                   "synthetic": {"n": 4, "seed": 3}},
                        "preprocessing": {"n4": False},
                        "deep": {"networks": ["efficientnetb0"], "weights": "random"}},
                       source=str(tmp_path / "c.yaml"))
    result = run_pipeline(cfg, out=tmp_path / "run", cache_dir=tmp_path / "cache",
                          progress=False)
    problems = pd.read_csv(result.run_dir / "cohort" / "problems.csv")
    row = problems[problems["step"] == "table1"].iloc[0]
    assert "Table 1 skipped" in row["message"] and "class counts" in row["message"]
    assert not (result.run_dir / "table1" / "table1.html").exists()


def test_synth_cli_writes_provenance(tmp_path, capsys):
    assert main(["-q", "synth", "--n", "4", "--seed", "1", "--out", str(tmp_path), "--jobs",
                 "1"]) == 0
    out = capsys.readouterr().out
    assert "Synthetic cohort: 4 patients" in out and "Oracle AUC" in out
    manifest = json.loads((tmp_path / "run_manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["config"]["n"] == 4


def test_predict_and_validate_an_image_model_reproduce_its_test_split(tiny_run, tmp_path):
    """The image path of predict / validate: features extracted with the model's own stored
    config (here from the shared cache) give the run's own test-split probabilities."""
    from workbench.cohort import load_cohort
    from workbench.pipeline.external import validate_stage
    from workbench.pipeline.predict import predict_stage

    cfg, root, result = tiny_run
    run = result.run
    model = run.path("model", protocol="honest", feature_set="kinetic", classifier="lr")
    cohort = load_cohort(root / "raw" / "manifest.csv")
    out = predict_stage(model, cohort, tmp_path / "p.csv", cache_dir=root / "cache",
                        progress=False)
    cov = out.attrs["coverage"]
    assert set(cov["source"]) >= {"kinetic"} and (cov["status"] == "present").all()
    preds = run.read("predictions")
    test = preds[(preds["protocol"] == "honest") & (preds["feature_set"] == "kinetic")
                 & (preds["classifier"] == "lr") & (preds["split"] == "test")]
    mine = out.set_index("patient_id").loc[test["patient_id"], "probability"]
    np.testing.assert_allclose(mine.to_numpy(), test["probability"].to_numpy(), atol=1e-9)
    summary = validate_stage(model, cohort, out=tmp_path / "v", cache_dir=root / "cache",
                             n_boot=100, progress=False, report=False)
    assert summary["cohort"]["n_scored"] == N and summary["development"]["n"] > 0
