"""Fine-tuned deep features: honest CV estimates withheld with a reason, null audit refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.models.audit import null_audit
from workbench.models.tuned import (
    TUNED_CV_NOTE,
    refuse_tuned_audit,
    sets_using,
    tuned_blocks,
    withhold_tuned_cv,
)


def test_tuned_blocks_come_from_the_provenance_and_the_config():
    provenance = {"networks": {"resnet50": {"kind": "imagenet", "fine_tune": {"epochs": 3}},
                               "efficientnetb0": {"kind": "imagenet", "fine_tune": None}}}
    assert tuned_blocks(provenance) == ("resnet50",)
    assert tuned_blocks(provenance, ["efficientnetb0"]) == ("resnet50", "efficientnetb0")
    assert tuned_blocks(None) == () and tuned_blocks({"networks": {}}) == ()
    assert sets_using(["resnet50"], ["radiomics", "resnet50", "fusion", "deep", "kinetic"]) == [
        "resnet50", "fusion", "deep"]


def _tables():
    keys = [(p, fs, s) for p in ("honest", "paper") for fs in ("radiomics", "fusion")
            for s in ("cv", "test")]
    metrics = pd.DataFrame([{"protocol": p, "feature_set": fs, "classifier": "lr", "split": s,
                             "threshold": 0.5, "n": 10, "n_pos": 4, "metric": "auc",
                             "value": 0.7, "lo": 0.6, "hi": 0.8, "method": "delong",
                             "warning": None} for p, fs, s in keys])
    preds = pd.DataFrame([{"patient_id": "P1", "protocol": p, "feature_set": fs,
                           "classifier": "lr", "split": s, "probability": 0.4, "label": 1,
                           "warning": None} for p, fs, s in keys])
    return metrics, preds


def test_only_the_honest_cv_estimates_of_tuned_sets_are_withheld():
    metrics, preds = _tables()
    out, marked, skipped = withhold_tuned_cv(metrics, preds, ["fusion"])
    hit = (out["protocol"] == "honest") & (out["split"] == "cv") & (out["feature_set"] == "fusion")
    assert out.loc[hit, ["value", "lo", "hi"]].isna().all().all()
    assert (out.loc[hit, "warning"] == TUNED_CV_NOTE).all()
    assert out.loc[hit, ["n", "n_pos", "threshold"]].notna().all().all()
    assert out.loc[~hit, "value"].eq(0.7).all() and out.loc[~hit, "warning"].isna().all()
    phit = ((marked["protocol"] == "honest") & (marked["split"] == "cv")
            & (marked["feature_set"] == "fusion"))
    assert (marked.loc[phit, "warning"] == TUNED_CV_NOTE).all()
    assert marked["probability"].eq(0.4).all()  # predictions are kept, only marked
    assert skipped == [{"protocol": "honest", "feature_set": "fusion", "reason": TUNED_CV_NOTE}]
    same, _, none = withhold_tuned_cv(metrics, preds, [])
    pd.testing.assert_frame_equal(same, metrics)
    assert none == []


def test_null_audit_refuses_a_set_with_tuned_features():
    refuse_tuned_audit("radiomics", ["resnet50"])  # no tuned block in it: fine
    with pytest.raises(WorkbenchError, match="null audit of 'fusion' refused.*resnet50"):
        refuse_tuned_audit("fusion", ["resnet50"])
    ids = [f"P{i}" for i in range(12)]
    features = pd.DataFrame(np.zeros((12, 2)), index=ids, columns=["dl_resnet50__a", "rad__b"])
    y = pd.Series([0, 1] * 6, index=ids)
    with pytest.raises(WorkbenchError, match="keep the labels' imprint"):
        null_audit(features, pd.DataFrame(index=ids), y, selector=None, make_clf=None,
                   feature_set="resnet50", tuned_blocks=("resnet50",), progress=False)
