"""With fine-tuned deep features the run's tables, summary and audit say what is withheld."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.evaluation.summary import headline
from workbench.names import TUNED_CV_NOTE
from workbench.pipeline.models import audit_stage, label_tuned_blocks, model_stage
from workbench.rundir import RunDir

pytestmark = [pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

CFG = RunConfig(feature_sets=["radiomics", "resnet50"], classifiers=["lr"], jobs=1,
                deep={"networks": ["resnet50"]},
                protocol={"cv_folds": 3, "kinds": ["honest", "paper"]},
                selection={"lasso": {"n_alphas": 5, "cv_folds": 3}},
                audit={"permutations": 2, "feature_set": "resnet50"})


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """A run directory whose deep_weights.json marks resnet50 as fine-tuned (no TensorFlow)."""
    rng = np.random.default_rng(0)
    n = 45
    ids = [f"T{i:03d}" for i in range(n)]
    y = (rng.random(n) < 0.4).astype(int)
    run = RunDir(tmp_path_factory.mktemp("run"))
    rad = pd.DataFrame(rng.standard_normal((n, 8)) + y[:, None] * 0.8, index=ids,
                       columns=[f"rad__f{j}" for j in range(8)]).rename_axis("patient_id")
    deep = pd.DataFrame(rng.standard_normal((n, 8)) + y[:, None], index=ids,
                        columns=[f"dl_resnet50__f{j}" for j in range(8)]).rename_axis(
        "patient_id")
    run.write("radiomics", rad)
    run.write("deep", deep)
    run.path("deep_weights").write_text(json.dumps({"networks": {"resnet50": {
        "kind": "imagenet", "fine_tune": {"best_epoch": 3}}}}))
    cohort = pd.DataFrame({"patient_id": ids, "pcr": y, "age": rng.normal(50, 8, n)})
    run.path("cohort").parent.mkdir(parents=True, exist_ok=True)
    cohort.to_parquet(run.path("cohort"))
    return run, cohort


def test_honest_cv_of_tuned_sets_is_withheld_in_every_table(tuned_run):
    run, cohort = tuned_run
    assert label_tuned_blocks(CFG, run, run.read("deep")) == ("resnet50",)
    result = model_stage(CFG, run, cohort, progress=False)
    metrics = run.read("metrics")
    auc = metrics[metrics["metric"] == "auc"].set_index(["protocol", "feature_set", "split"])
    assert np.isnan(auc.loc[("honest", "resnet50", "cv"), "value"])
    assert auc.loc[("honest", "resnet50", "cv"), "warning"] == TUNED_CV_NOTE
    assert np.isfinite(auc.loc[("honest", "resnet50", "test"), "value"])  # tuned on train only
    assert np.isfinite(auc.loc[("honest", "radiomics", "cv"), "value"])
    preds = run.read("predictions")
    cv = preds[(preds["protocol"] == "honest") & (preds["split"] == "cv")]
    assert (cv.loc[cv["feature_set"] == "resnet50", "warning"] == TUNED_CV_NOTE).all()
    skipped = run.read("skipped")
    assert ((skipped["feature_set"] == "resnet50") & (skipped["reason"] == TUNED_CV_NOTE)).any()
    lines = headline(result.metrics, "resnet50")
    assert any("cv   AUC - (CV estimate not reported" in line for line in lines)


def test_the_null_audit_refuses_tuned_features(tuned_run, caplog):
    run, _ = tuned_run
    with pytest.raises(WorkbenchError, match="null audit of 'resnet50' refused"):
        audit_stage(CFG, run, progress=False)
    assert "keep the labels' imprint" in caplog.text
    assert not run.exists("audit")
