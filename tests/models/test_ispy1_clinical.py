"""Real data: the clinical feature set of I-SPY1 under the honest protocol, all ten classifiers.

The clinical signal is the subtype (HER2+ and triple-negative tumours respond more often), so
every classifier should beat chance clearly without coming near perfect discrimination.
Run with ``-s`` to see the table of CV and test AUCs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.cohort.loaders.ispy1_workbook import load_ispy1_clinical
from workbench.config import RunConfig
from workbench.evaluation.summary import evaluate
from workbench.models.feature_sets import clinical_matrix
from workbench.models.protocols import ProtocolSettings, run_protocol
from workbench.names import CLASSIFIER_NAMES as ALL_CLASSIFIERS
from workbench.pipeline.settings import classifier_factory, selector_factory


def test_clinical_feature_set_on_ispy1_all_classifiers(ispy1_xlsx):
    cohort = load_ispy1_clinical(ispy1_xlsx)
    labelled = cohort.labelled()
    clinical = clinical_matrix(labelled)
    y = pd.Series(labelled["pcr"].astype(int).to_numpy(),
                  index=labelled["patient_id"].astype(str))
    assert len(y) == 215 and int(y.sum()) == 58

    features = pd.DataFrame(index=clinical.index)  # no image features: clinical only
    result = run_protocol("honest", features, clinical, y, feature_sets=["clinical"],
                          classifiers=list(ALL_CLASSIFIERS),
                          selector=selector_factory(RunConfig()), make_clf=classifier_factory,
                          settings=ProtocolSettings(cv_folds=5, seed=42))
    assert result.skipped == []
    pred = result.predictions
    assert pred["patient_id"].nunique() == 215
    assert pred.drop_duplicates("patient_id")["label"].sum() == 58
    assert set(pred["classifier"]) == set(ALL_CLASSIFIERS)

    metrics = evaluate(pred, n_boot=100, seed=42)
    auc = metrics[metrics["metric"] == "auc"].pivot(index="classifier", columns="split",
                                                      values=["value", "lo", "hi", "n"])
    lines = [f"I-SPY1 clinical feature set, honest protocol (seed 42, 5-fold CV on the "
             f"{int(auc[('n', 'cv')].iat[0])} training patients, test n = "
             f"{int(auc[('n', 'test')].iat[0])}); AUC (95 % DeLong CI)",
             f"{'classifier':12s} {'CV AUC':>22s} {'test AUC':>22s}"]
    for clf in ALL_CLASSIFIERS:
        cells = [f"{auc.loc[clf, ('value', s)]:.3f} ({auc.loc[clf, ('lo', s)]:.3f}-"
                 f"{auc.loc[clf, ('hi', s)]:.3f})" for s in ("cv", "test")]
        lines.append(f"{clf:12s} {cells[0]:>22s} {cells[1]:>22s}")
    print("\n" + "\n".join(lines))

    cv = auc.xs("cv", axis=1, level=1)
    assert np.isfinite(cv[["value", "lo", "hi"]].to_numpy(dtype=float)).all()
    assert ((cv["lo"] <= cv["value"]) & (cv["value"] <= cv["hi"])).all()
    assert cv["value"].between(0.5, 0.9).all(), cv["value"].to_dict()
