"""run_protocol: honest vs paper on noise, who sees which patients, shared selection, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from workbench.config import RunConfig
from workbench.models.protocols import (
    LEAKAGE_WARNING,
    ModellingError,
    ProtocolSettings,
    run_protocol,
)
from workbench.names import NETWORK_NAMES as ALL_NETWORKS
from workbench.pipeline.settings import classifier_factory, selector_factory
from workbench.selection import selection_pipeline

pytestmark = [pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

NO_CLINICAL = pd.DataFrame()


def fast_selector(block: str, seed: int):
    """The real selection pipeline with a short LASSO grid and 3 inner folds."""
    return selection_pipeline(block, lasso_kwargs={"alphas": 10, "cv": 3, "random_state": seed})


#: the production factory (with its median imputation) under the same short LASSO settings
production_selector = selector_factory(RunConfig(selection={"lasso": {"n_alphas": 10,
                                                                      "cv_folds": 3}}))


def noise(seed: int, n: int = 120, p: int = 500, rate: float = 0.3):
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    X = pd.DataFrame(rng.standard_normal((n, p)), index=ids,
                     columns=[f"rad__f{j:03d}" for j in range(p)])
    y = pd.Series((rng.random(n) < rate).astype(int), index=ids)
    return X, y


def aucs(result) -> dict[str, float]:
    pred = result.predictions
    return {split: roc_auc_score(part["label"], part["probability"])
            for split, part in pred.groupby("split")}


# ----------------------------------------------------------------------------- leakage
@pytest.fixture(scope="module")
def noise_runs():
    runs = []
    for seed in range(4):
        X, y = noise(seed)
        settings = ProtocolSettings(cv_folds=5, seed=seed)
        runs.append({p: run_protocol(p, X, NO_CLINICAL, y, feature_sets=["radiomics"],
                                     classifiers=["lr"], selector=fast_selector,
                                     make_clf=classifier_factory, settings=settings)
                     for p in ("honest", "paper")})
    return runs


def test_honest_is_null_on_noise_and_paper_is_inflated(noise_runs):
    honest = pd.DataFrame([aucs(r["honest"]) for r in noise_runs])
    paper = pd.DataFrame([aucs(r["paper"]) for r in noise_runs])
    print("\nnoise AUCs, 4 seeds\nhonest\n", honest.round(3), "\npaper\n", paper.round(3))
    assert abs(honest["cv"].mean() - 0.5) <= 0.12
    assert abs(honest["test"].mean() - 0.5) <= 0.12
    # selection on the whole cohort manufactures a signature out of pure noise
    assert max(paper["cv"].mean(), paper["test"].mean()) >= 0.75
    assert paper["test"].mean() > honest["test"].mean() + 0.2


def test_only_paper_carries_the_leakage_warning(noise_runs):
    for run in noise_runs:
        assert run["honest"].warning is None
        assert run["paper"].warning == LEAKAGE_WARNING
        assert "leakage" in run["paper"].warning


def test_split_is_stratified_and_shared_by_both_protocols(noise_runs):
    for seed, run in enumerate(noise_runs):
        honest, paper = run["honest"].split, run["paper"].split
        pd.testing.assert_series_equal(honest.sort_index(), paper.sort_index())
        _, y = noise(seed)
        test = honest.index[honest == "test"]
        assert len(test) == round(0.3 * len(y))
        assert abs(y.loc[test].mean() - y.mean()) < 0.05  # stratified on pCR
        pred = run["honest"].predictions
        assert set(pred.loc[pred["split"] == "test", "patient_id"]) == set(test)
        cv = pred[pred["split"] == "cv"]
        assert sorted(cv["patient_id"]) == sorted(honest.index[honest == "train"])


# ----------------------------------------------------------------------------- who sees whom
class SpySelector:
    """A selection pipeline that records which patients each ``fit`` saw."""

    def __init__(self, block, seed, calls):
        self.block, self.calls = block, calls
        self.inner = fast_selector(block, seed)

    def fit(self, X, y):
        assert list(X.index) == list(y.index)
        self.calls.append((self.block, frozenset(X.index)))
        self.inner.fit(X, y)
        return self

    def transform(self, X):
        return self.inner.transform(X)


class SpyClassifier:
    """A classifier pipeline that records which patients each ``fit`` saw."""

    def __init__(self, name, seed, calls):
        self.calls = calls
        self.inner = classifier_factory(name, seed)

    def fit(self, X, y):
        self.calls.append(frozenset(X.index))
        self.inner.fit(X, y)
        return self

    def predict_proba(self, X):
        return self.inner.predict_proba(X)


def _fusion_table(n=60, seed=0):
    """rad__ plus a few columns per network, so fusion and fusion_clinical share 6 blocks."""
    rng = np.random.default_rng(seed)
    ids = [f"S{i:02d}" for i in range(n)]
    y = pd.Series((np.arange(n) % 3 == 0).astype(int), index=ids)
    cols = [f"rad__f{j}" for j in range(12)]
    cols += [f"dl_{net}__{j}" for net in ALL_NETWORKS for j in range(4)]
    X = pd.DataFrame(rng.standard_normal((n, len(cols))), index=ids, columns=cols)
    X["rad__f0"] += y
    clinical = pd.DataFrame({"clin__age": rng.normal(50, 10, n)}, index=ids)
    return X, clinical, y


@pytest.mark.parametrize("protocol", ["honest", "paper"])
def test_label_fitted_steps_see_only_the_patients_they_may(protocol):
    X, clinical, y = _fusion_table()
    folds = 3
    sel_calls, clf_calls = [], []
    result = run_protocol(
        protocol, X, clinical, y, feature_sets=["fusion", "fusion_clinical"],
        classifiers=["lr", "lda"], selector=lambda b, s: SpySelector(b, s, sel_calls),
        make_clf=lambda n, s: SpyClassifier(n, s, clf_calls),
        settings=ProtocolSettings(cv_folds=folds, seed=1))
    split = result.split
    train = frozenset(split.index[split == "train"])
    test = frozenset(split.index[split == "test"])
    cv = result.predictions[result.predictions["split"] == "cv"]
    eval_folds = [frozenset(part["patient_id"]) for _, part in cv.groupby("fold")]
    assert len(eval_folds) == folds
    fold_train = [train - ev for ev in eval_folds]
    blocks = ["radiomics", *ALL_NETWORKS]

    # selection: once per (block, fold), shared by 2 feature sets x 2 classifiers
    per_block = {b: [ids for blk, ids in sel_calls if blk == b] for b in blocks}
    if protocol == "honest":
        for ids_seen in per_block.values():
            assert len(ids_seen) == folds + 1
            assert ids_seen == [*fold_train, train]  # fold order, then the final refit
            assert all(not (ids & test) for ids in ids_seen)
    else:  # the study's order: every patient, test patients included, once
        for ids_seen in per_block.values():
            assert ids_seen == [train | test]
    assert len(sel_calls) == len(blocks) * (folds + 1 if protocol == "honest" else 1)

    # classifiers: every fit on a training fold (or the whole training split), both protocols
    assert len(clf_calls) == 2 * 2 * (folds + 1)
    for ids in clf_calls:
        assert not (ids & test)
        assert ids in [*fold_train, train]
    for k, ev in enumerate(eval_folds):
        assert clf_calls.count(fold_train[k]) == 4 and not (fold_train[k] & ev)
    assert clf_calls.count(train) == 4


# ----------------------------------------------------------------------------- determinism
def _small(seed=0, n=48, p=30):
    X, y = noise(seed, n=n, p=p, rate=0.35)
    X["rad__f000"] += 1.5 * y
    return X, y


def _sorted(pred: pd.DataFrame) -> pd.DataFrame:
    keys = ["protocol", "feature_set", "classifier", "split", "repeat", "fold", "patient_id"]
    return pred.sort_values(keys).reset_index(drop=True)


def test_row_order_does_not_change_split_or_predictions():
    X, y = _small()
    kwargs = dict(feature_sets=["radiomics"], classifiers=["lr"], selector=fast_selector,
                  make_clf=classifier_factory, settings=ProtocolSettings(cv_folds=3))
    a = run_protocol("honest", X, NO_CLINICAL, y, **kwargs)
    order = np.random.default_rng(7).permutation(len(X))
    b = run_protocol("honest", X.iloc[order], NO_CLINICAL, y.iloc[order[::-1]], **kwargs)
    pd.testing.assert_series_equal(a.split.sort_index(), b.split.sort_index())
    pd.testing.assert_frame_equal(_sorted(a.predictions), _sorted(b.predictions))


def test_repeats_give_repeat_indices_each_covering_the_training_split():
    X, y = _small()
    result = run_protocol("honest", X, NO_CLINICAL, y, feature_sets=["radiomics"],
                          classifiers=["lr"], selector=fast_selector,
                          make_clf=classifier_factory,
                          settings=ProtocolSettings(cv_folds=3, repeats=2))
    pred = result.predictions
    assert set(pred["repeat"]) == {-1, 0, 1}
    assert set(pred.loc[pred["split"] == "test", "repeat"]) == {-1}
    train = sorted(result.split.index[result.split == "train"])
    folds = {}
    for r in (0, 1):
        part = pred[(pred["split"] == "cv") & (pred["repeat"] == r)]
        assert sorted(part["patient_id"]) == train  # each repeat: every patient once
        folds[r] = part.groupby("patient_id")["fold"].first()
    assert not folds[0].equals(folds[1])  # a different shuffle per repeat
    assert set(result.selection["repeat"]) == {-1, 0, 1}


def test_two_jobs_give_the_same_predictions_as_one():
    X, y = _small()
    kwargs = dict(feature_sets=["radiomics"], classifiers=["lr", "knn"],
                  selector=fast_selector, make_clf=classifier_factory)
    one = run_protocol("honest", X, NO_CLINICAL, y, settings=ProtocolSettings(cv_folds=3),
                       **kwargs)
    two = run_protocol("honest", X, NO_CLINICAL, y,
                       settings=ProtocolSettings(cv_folds=3, jobs=2), **kwargs)
    pd.testing.assert_frame_equal(_sorted(one.predictions), _sorted(two.predictions))
    assert set(two.final_models) == {("radiomics", "lr"), ("radiomics", "knn")}


# ----------------------------------------------------------------------------- bad input
def _run(protocol, X, y, clinical=NO_CLINICAL, feature_sets=("radiomics",),
         classifiers=("lr",), selector=production_selector, folds=3):
    return run_protocol(protocol, X, clinical, y, feature_sets=list(feature_sets),
                        classifiers=list(classifiers), selector=selector,
                        make_clf=classifier_factory, settings=ProtocolSettings(cv_folds=folds))


@pytest.mark.parametrize("protocol", ["honest", "paper"])
def test_single_class_labels_are_refused(protocol):
    X, y = _small()
    with pytest.raises(ModellingError, match="class counts"):
        _run(protocol, X, y * 0)


def test_fewer_than_three_patients_in_a_class_are_refused():
    X, y = _small()
    y[:] = 0
    y.iloc[:2] = 1
    with pytest.raises(ModellingError, match=r"class counts \{0: 46, 1: 2\}.*at least 3"):
        _run("honest", X, y)


def test_unlabelled_feature_rows_are_refused_with_examples():
    X, y = _small()
    X.index = [f"X{i}" for i in range(len(X))]  # e.g. a different ID scheme
    with pytest.raises(ModellingError, match=r"no label \(e\.g\. \['X0', 'X1'"):
        _run("honest", X, y)


def test_labels_without_features_are_left_out(caplog):
    X, y = _small()
    extra = pd.Series([1, 0], index=["Q1", "Q2"])
    with caplog.at_level(logging.WARNING, logger="workbench.models.protocols"):
        result = _run("honest", X, pd.concat([y, extra]))
    assert "no features and are left out" in caplog.text and "Q1" in caplog.text
    assert set(result.split.index) == set(X.index)


@pytest.mark.parametrize("protocol", ["honest", "paper"])
def test_a_constant_block_is_skipped_with_a_reason_and_clinical_still_runs(protocol):
    X, y = _small()
    X.loc[:, :] = 1.0
    clinical = pd.DataFrame({"clin__age": np.linspace(30, 70, len(X))}, index=X.index)
    result = _run(protocol, X, y, clinical, feature_sets=("radiomics", "clinical"))
    assert set(result.predictions["feature_set"]) == {"clinical"}
    reasons = [d["reason"] for d in result.skipped if d.get("block") == "radiomics"]
    assert reasons and all("kept no feature" in r for r in reasons)
    assert any(d.get("feature_set") == "radiomics" for d in result.skipped)
    with pytest.raises(ModellingError, match="no feature set x classifier produced any "
                                             "prediction.*radiomics: .*kept no feature"):
        _run(protocol, X, y)


@pytest.mark.parametrize("protocol", ["honest", "paper"])
def test_nan_only_columns_are_dropped_and_scattered_nans_are_imputed(protocol):
    X, y = _small()
    X["rad__empty"] = np.nan
    X.loc[X.index[::5], "rad__f000"] = np.nan  # the informative column, NaN in every fold
    result = _run(protocol, X, y)
    assert result.skipped == []
    pred = result.predictions
    assert pred["probability"].notna().all()
    assert len(pred) == len(X)  # every patient predicted once (cv or test)
    var = result.selection[result.selection["stage"] == "variance"]
    dropped = var[var["feature"] == "rad__empty"]
    assert not dropped["kept"].any()
    assert dropped["reason"].str.contains("all values missing").all()


def test_a_feature_set_without_columns_is_a_recorded_skip():
    X, y = _small()
    result = _run("honest", X, y, feature_sets=("radiomics", "kinetic", "fusion"))
    assert set(result.predictions["feature_set"]) == {"radiomics"}
    blocks = {d["block"]: d["reason"] for d in result.skipped if "block" in d}
    sets = {d["feature_set"]: d["reason"] for d in result.skipped if "feature_set" in d}
    assert set(blocks) == {"kinetic", *ALL_NETWORKS}
    assert all("no column with this prefix" in r for r in blocks.values())
    assert sets == {"kinetic": "needs missing blocks ['kinetic']",
                    "fusion": f"needs missing blocks {sorted(ALL_NETWORKS)}"}
    with pytest.raises(ModellingError, match="no feature set can run"):
        _run("paper", X, y, feature_sets=("kinetic",))


def test_a_classifier_that_cannot_fit_is_a_recorded_skip():
    X, y = _small(n=20, p=10)
    y[:] = (np.arange(20) % 10 < 3).astype(int)  # 6 pCR: too few for the SVM's inner
    # 5-fold Platt scaling once the test split and a CV fold are set aside
    result = _run("honest", X, y, classifiers=("svm_rbf", "lr"), folds=5)
    assert set(result.predictions["classifier"]) == {"lr"}
    svm = [d for d in result.skipped if d.get("classifier") == "svm_rbf"]
    assert svm and all("classifier failed" in d["reason"] for d in svm)
    with pytest.raises(ModellingError, match="svm_rbf|classifier failed"):
        _run("honest", X, y, classifiers=("svm_rbf",), folds=5)


def test_unknown_protocol_is_named():
    X, y = _small()
    with pytest.raises(ModellingError, match="protocol must be one of"):
        _run("nested", X, y)
