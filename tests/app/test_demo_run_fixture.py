"""The demo-size run of ``fixtures.demo_run`` has the demo's shape, so the dashboard checks
on it (``test_browser.py``, ``benchmarks/dashboard.py``) see what ``make demo`` gives them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.names import CLASSIFIER_NAMES, FEATURE_SET_NAMES, PROTOCOL_NAMES

pytestmark = pytest.mark.slow

GRID = len(FEATURE_SET_NAMES) * len(CLASSIFIER_NAMES)  # 120 models per protocol x split


@pytest.mark.timeout(3600)  # builds the session's demo-size run when it runs first
def test_the_demo_size_run_has_the_demo_shape(demo_run_dir, demo_run_facts):
    run = demo_run_dir
    cohort = pd.read_parquet(run / "cohort" / "cohort.parquet")
    assert len(cohort) == 163 and cohort["patient_id"].is_unique
    assert 0.25 <= cohort["pcr"].mean() <= 0.35

    preds = pd.read_parquet(run / "models" / "predictions.parquet")
    metrics = pd.read_parquet(run / "models" / "metrics.parquet")
    for table in (preds, metrics):
        models = table.groupby(["protocol", "split"])[["feature_set", "classifier"]].apply(
            lambda g: len(g.drop_duplicates()))
        assert models.to_dict() == {(p, s): GRID for p in PROTOCOL_NAMES
                                    for s in ("cv", "test")}
        assert set(table["feature_set"]) == set(FEATURE_SET_NAMES)
        assert set(table["classifier"]) == set(CLASSIFIER_NAMES)

    # as in the demo: each training patient once per model in the CV rows (repeat 0, one
    # fold each), each test patient once in the test rows (repeat = fold = -1)
    split = pd.read_csv(run / "models" / "split.csv").set_index("patient_id")["split"]
    n_train, n_test = int((split == "train").sum()), int((split == "test").sum())
    assert (n_train, n_test) == (114, 49)
    per_model = preds.groupby(["protocol", "split", "feature_set", "classifier"])
    sizes = per_model["patient_id"].nunique().groupby(level="split").unique()
    assert [list(sizes["cv"]), list(sizes["test"])] == [[n_train], [n_test]]
    assert set(zip(preds["split"], preds["repeat"], preds["fold"], strict=True)) == {
        ("cv", 0, 0), ("cv", 0, 1), ("cv", 0, 2), ("test", -1, -1)}
    assert split[demo_run_facts["malicious_id"]] == "test"  # shown on the Patients tab

    shap = pd.read_parquet(run / "models" / "shap.parquet")
    assert set(shap["protocol"]) == set(PROTOCOL_NAMES)
    assert shap.loc[shap["feature_set"] == "fusion_clinical_kinetic", "feature"].nunique() > 10

    audit = pd.read_parquet(run / "audit" / "null_audit.parquet")
    assert set(audit["protocol"]) == set(PROTOCOL_NAMES)
    weights = json.loads((run / "features" / "deep_weights.json").read_text())
    assert weights["label"] == demo_run_facts["weights_label"] and "RANDOM" in weights["label"]
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["cohort"]["patients"] == 163 and manifest["ibsi"]["status"] == "done"
    assert (run / "table1" / "table1.csv").is_file()
