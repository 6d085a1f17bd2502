"""``model_curves``: every model's ROC and net-benefit curve from a predictions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import auc, roc_curve

from workbench.evaluation.curves import CURVE_COLUMNS, evaluated_rows, model_curves
from workbench.evaluation.decision_curve import net_benefit
from workbench.evaluation.inputs import MetricInputError


def _predictions(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    ids = [f"P{i:02d}" for i in range(30)]
    y = np.array([0, 1] * 15)
    for protocol in ("honest", "paper"):
        for split, repeats in (("test", [0]), ("cv", [0, 1])):
            for fs, clf in (("clinical", "lr"), ("radiomics", "rf")):
                for rep in repeats:
                    p = np.clip(0.3 * y + rng.random(30) * 0.7, 0, 1)
                    rows.append(pd.DataFrame({
                        "patient_id": ids, "protocol": protocol, "split": split,
                        "feature_set": fs, "classifier": clf, "repeat": rep,
                        "probability": p, "label": y}))
    return pd.concat(rows, ignore_index=True)


def test_curves_match_sklearn_and_net_benefit():
    preds = _predictions()
    curves = model_curves(preds)
    assert list(curves.columns) == list(CURVE_COLUMNS)
    g = preds[(preds["protocol"] == "paper") & (preds["split"] == "test")
              & (preds["feature_set"] == "radiomics")]
    roc = curves[(curves["protocol"] == "paper") & (curves["split"] == "test")
                 & (curves["feature_set"] == "radiomics") & (curves["curve"] == "roc")]
    fpr, tpr, _ = roc_curve(g["label"], g["probability"])
    np.testing.assert_array_equal(roc["x"], fpr)
    np.testing.assert_array_equal(roc["y"], tpr)
    nb = curves[(curves["protocol"] == "paper") & (curves["split"] == "test")
                & (curves["feature_set"] == "radiomics") & (curves["curve"] == "net_benefit")]
    np.testing.assert_allclose(nb["y"], net_benefit(g["label"], g["probability"], nb["x"]))
    # one treat-all reference per protocol x split, four models each
    ref = curves[curves["curve"] == "treat_all"]
    assert ref.groupby(["protocol", "split"]).ngroups == 4
    assert curves[curves["curve"] == "roc"].groupby(
        ["protocol", "split", "feature_set", "classifier"]).ngroups == 8


def test_cv_curves_use_the_first_repeat_only():
    preds = _predictions()
    curves = model_curves(preds)
    first = preds[(preds["split"] == "cv") & (preds["repeat"] == 0)
                  & (preds["protocol"] == "honest") & (preds["feature_set"] == "clinical")]
    roc = curves[(curves["split"] == "cv") & (curves["protocol"] == "honest")
                 & (curves["feature_set"] == "clinical") & (curves["curve"] == "roc")]
    fpr, tpr, _ = roc_curve(first["label"], first["probability"])
    assert auc(roc["x"], roc["y"]) == pytest.approx(auc(fpr, tpr))
    assert len(evaluated_rows(preds)) == len(preds) - 2 * 2 * 30  # repeat 1 of cv dropped


def test_withheld_and_one_class_models_have_no_roc():
    preds = _predictions()
    withheld = (preds["feature_set"] == "radiomics") & (preds["split"] == "cv")
    preds.loc[withheld, "probability"] = np.nan
    one_class = (preds["feature_set"] == "clinical") & (preds["split"] == "test")
    preds.loc[one_class, "label"] = 0
    curves = model_curves(preds)
    cv_rad = curves[(curves["split"] == "cv") & (curves["feature_set"] == "radiomics")]
    assert cv_rad.empty
    test_clin = curves[(curves["split"] == "test") & (curves["feature_set"] == "clinical")]
    assert set(test_clin["curve"]) == {"net_benefit"}


def test_missing_columns_are_named():
    with pytest.raises(MetricInputError, match="probability"):
        model_curves(_predictions().drop(columns="probability"))
