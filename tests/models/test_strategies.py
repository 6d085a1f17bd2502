"""The non-study strategies inside run_protocol: who sees which patients, the paper skip,
null and signal behaviour, the strategy audit, repeated-CV metrics, calibration warnings and
saved strategy models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.evaluation.summary import calibration_warnings, evaluate
from workbench.models.audit import null_audit, summarise
from workbench.models.fusion import load_model, save_model
from workbench.models.protocols import ProtocolSettings, run_protocol
from workbench.names import NETWORK_NAMES
from workbench.pipeline.settings import classifier_factory, strategy_factory
from workbench.selection import (
    PenalisedLogistic,
    StrategySettings,
    selection_pipeline,
    strategy_pipeline,
)

pytestmark = [pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

ALL = ["cluster", "elasticnet", "stability", "prespecified"]

#: short grids, 3 inner folds, 6 half-samples: the pipelines of production, only faster
FAST = StrategySettings(n_alphas=8, inner_cv=3, stability_subsamples=6,
                        elasticnet_l1_ratios=(0.5, 1.0),
                        prespecified=("rad__f1*", "dl_resnet50__0"))
FAST_CFG = RunConfig(strategies={"names": ALL, "n_alphas": 8, "inner_cv": 3,
                                 "elasticnet_l1_ratios": [0.5, 1.0],
                                 "stability_subsamples": 6,
                                 "prespecified": ["rad__f1*", "dl_resnet50__0"]})


def fast_selector(block: str, seed: int):
    return selection_pipeline(block, lasso_kwargs={"alphas": 10, "cv": 3, "random_state": seed})


def table(n=60, seed=0, *, rad=12, rad_signal=(2.0, 1.5, 1.0), clin_signal=1.0, dl=3,
          pcr_every=3):
    """rad__f0.. (the first ones shifted by ``rad_signal`` x pCR), ``dl`` columns per network
    (every network, so the fusion sets can run), two clinical columns (clin__age carries
    ``clin_signal``)."""
    rng = np.random.default_rng(seed)
    ids = [f"S{i:03d}" for i in range(n)]
    y = pd.Series((rng.permutation(n) % pcr_every == 0).astype(int), index=ids)
    X = pd.DataFrame(rng.standard_normal((n, rad)), index=ids,
                     columns=[f"rad__f{j}" for j in range(rad)])
    for j, s in enumerate(rad_signal):
        X[f"rad__f{j}"] += s * y
    for net in NETWORK_NAMES:
        for j in range(dl):
            X[f"dl_{net}__{j}"] = rng.standard_normal(n)
    clinical = pd.DataFrame({"clin__age": rng.normal(50, 10, n) - 10 * clin_signal * y,
                             "clin__her2_pos": (rng.random(n) < 0.3).astype(float)},
                            index=ids)
    return X, clinical, y


def cv_auc(pred: pd.DataFrame, repeat: int = 0) -> float:
    part = pred[(pred["split"] == "cv") & (pred["repeat"] == repeat)]
    return float(roc_auc_score(part["label"], part["probability"]))


# ----------------------------------------------------------------------------- who sees whom
class SpyPenalised(PenalisedLogistic):
    """The strategies' last step, recording the rows of each fit and of its inner CV."""

    record: dict

    def fit(self, X, y):
        self.record["model_ids"] = frozenset(X.index)
        return super().fit(X, y)

    def _inner_cv(self, Xs, y01, grid, ratio, pen, n_splits):
        self.record["inner_rows"].append(len(Xs))
        return super()._inner_cv(Xs, y01, grid, ratio, pen, n_splits)


class SpyStrategy:
    """A strategy pipeline that records which patients each ``fit`` saw."""

    def __init__(self, name, seed, calls):
        self.inner = strategy_pipeline(name, FAST, seed=seed)
        self.record = {"strategy": name, "ids": None, "model_ids": None, "inner_rows": []}
        model = SpyPenalised(**self.inner.named_steps["model"].get_params())
        model.record = self.record
        self.inner.set_params(model=model)
        self.calls = calls

    @property
    def steps(self):  # run_protocol asks a prespecified strategy which columns it can use
        return self.inner.steps

    @property
    def feature_names_in_(self):
        return self.inner.feature_names_in_

    def fit(self, X, y):
        assert list(X.index) == list(y.index)
        self.record["ids"] = frozenset(X.index)
        self.record["columns"] = list(X.columns)
        self.calls.append(self.record)
        self.inner.fit(X, y)
        return self

    def predict_proba(self, X):
        return self.inner.predict_proba(X)


@pytest.fixture(scope="module")
def spied():
    X, clinical, y = table(n=60, rad_signal=(3.0, 2.5, 2.0))  # stable in every fold
    calls = []
    result = run_protocol(
        "honest", X, clinical, y, feature_sets=["radiomics"], classifiers=[],
        selector=fast_selector, make_clf=classifier_factory,
        settings=ProtocolSettings(cv_folds=3, strategy_repeats=2, seed=3), strategies=ALL,
        strategy_sets=["radiomics", "fusion_clinical"],
        make_strategy=lambda name, seed: SpyStrategy(name, seed, calls))
    # one record per fit: the pipelines run_protocol builds only to ask whether a strategy
    # applies to a feature set are never fitted, so they leave none
    return result, calls, X, clinical


def test_strategy_fits_see_only_training_patients(spied):
    result, fits, X, clinical = spied
    split = result.split
    train = frozenset(split.index[split == "train"])
    test = frozenset(split.index[split == "test"])
    pred = result.predictions
    assert result.skipped == []
    assert set(pred["classifier"]) == set(ALL)
    assert set(pred["feature_set"]) == {"radiomics", "fusion_clinical"}
    for fs in ("radiomics", "fusion_clinical"):
        for name in ALL:
            mine = [c for c in fits if c["strategy"] == name
                    and (any(col.startswith("clin__") for col in c["columns"])
                         == (fs == "fusion_clinical"))]
            cv = pred[(pred["feature_set"] == fs) & (pred["classifier"] == name)
                      & (pred["split"] == "cv")]
            fold_train = [train - frozenset(part["patient_id"])
                          for _, part in cv.groupby(["repeat", "fold"])]
            assert len(fold_train) == 2 * 3
            seen = [c["ids"] for c in mine]
            # one fit per CV fold of each repeat (on that fold's training patients) and one
            # final refit on the whole training split; never a test patient
            assert sorted(map(sorted, seen)) == sorted(map(sorted, [*fold_train, train]))
            assert all(not (ids & test) for ids in seen)
            for c in mine:
                assert c["model_ids"] == c["ids"]  # the model step saw the same rows ...
                assert c["inner_rows"]  # ... and its inner CV ran on those rows only
                assert all(rows == len(c["ids"]) for rows in c["inner_rows"])
            n_ratios = {"elasticnet": len(FAST.elasticnet_l1_ratios)}.get(name, 1)
            assert all(len(c["inner_rows"]) == n_ratios for c in mine)


def test_each_repeat_covers_every_training_patient_once(spied):
    result, _, _, _ = spied
    pred, split = result.predictions, result.split
    train = sorted(split.index[split == "train"])
    cv = pred[pred["split"] == "cv"]
    assert set(cv["repeat"]) == {0, 1}
    for (_fs, _name, _r), part in cv.groupby(["feature_set", "classifier", "repeat"]):
        assert sorted(part["patient_id"]) == train
        assert part["fold"].nunique() == 3
    one = cv[(cv["feature_set"] == "radiomics") & (cv["classifier"] == "cluster")]
    folds = {r: part.set_index("patient_id")["fold"].sort_index()
             for r, part in one.groupby("repeat")}
    assert not folds[0].equals(folds[1])  # each repeat reshuffles the folds


def test_test_predictions_come_from_the_final_refit_only(spied):
    result, _, X, clinical = spied
    pred, split = result.predictions, result.split
    test_ids = sorted(split.index[split == "test"])
    tst = pred[pred["split"] == "test"]
    assert set(tst["repeat"]) == {-1} and set(tst["fold"]) == {-1}
    assert set(result.strategy_models) == {(fs, n) for fs in ("radiomics", "fusion_clinical")
                                           for n in ALL}
    raw = X.join(clinical)
    for (fs, name), part in tst.groupby(["feature_set", "classifier"]):
        assert sorted(part["patient_id"]) == test_ids
        model = result.strategy_models[fs, name]
        assert (model.feature_set, model.classifier_name) == (fs, name)
        assert model.classifier.record["ids"] == frozenset(split.index[split == "train"])
        final = model.predict_proba(raw.loc[part["patient_id"]])[:, 1]
        np.testing.assert_allclose(part["probability"].to_numpy(), final, rtol=1e-12)
        # the raw columns the strategy saw: its feature set's, clinical only with clinical
        has_clin = any(c.startswith("clin__") for c in model.design_columns)
        assert has_clin == (fs == "fusion_clinical")
        assert any(c.startswith("dl_resnet50__") for c in model.design_columns) == (
            fs == "fusion_clinical")


def test_paper_protocol_records_a_skip_and_fits_no_strategy():
    X, clinical, y = table(n=48, rad=8, dl=2)
    calls = []
    result = run_protocol(
        "paper", X, clinical, y, feature_sets=["radiomics"], classifiers=["lr"],
        selector=fast_selector, make_clf=classifier_factory,
        settings=ProtocolSettings(cv_folds=3, strategy_repeats=2), strategies=["cluster",
                                                                              "elasticnet"],
        make_strategy=lambda name, seed: SpyStrategy(name, seed, calls))
    assert calls == []
    assert set(result.predictions["classifier"]) == {"lr"}
    assert result.strategy_models == {}
    skips = {d["classifier"]: d["reason"] for d in result.skipped if "classifier" in d}
    assert set(skips) == {"cluster", "elasticnet"}
    assert all("honest protocol only" in r for r in skips.values())


# ----------------------------------------------------------------------------- null / signal
def noise(seed, n=90, p=150):
    return table(n=n, seed=seed, rad=p, rad_signal=(), clin_signal=0.0, dl=2)


def _aucs(pred: pd.DataFrame, seed: int) -> list[dict]:
    return [{"seed": seed, "feature_set": fs, "strategy": name, "split": split,
             "auc": roc_auc_score(part["label"], part["probability"])}
            for (fs, name, split), part in pred.groupby(["feature_set", "classifier", "split"])]


@pytest.fixture(scope="module")
def null_runs():
    """Per seed: the strategies on noise imaging alone, and stability beside noise clinical
    columns (where it always runs, keeping them) with the clinical LR for comparison (on
    noise imaging alone stability keeps nothing: see the next test but one)."""
    runs = []
    for seed in range(3):
        X, clinical, y = noise(seed)
        settings = ProtocolSettings(cv_folds=3, seed=seed)
        imaging = run_protocol(
            "honest", X, clinical, y, feature_sets=["radiomics"], classifiers=[],
            selector=fast_selector, make_clf=classifier_factory, settings=settings,
            strategies=["cluster", "elasticnet", "prespecified"],
            make_strategy=strategy_factory(FAST_CFG))
        fewer = X.drop(columns=[f"rad__f{j}" for j in range(60, 150)])  # speed only
        with_clinical = run_protocol(
            "honest", fewer, clinical, y, feature_sets=["clinical"], classifiers=["lr"],
            selector=fast_selector, make_clf=classifier_factory, settings=settings,
            strategies=["stability"], strategy_sets=["fusion_clinical"],
            make_strategy=strategy_factory(FAST_CFG))
        runs.append((imaging, with_clinical))
    return runs


def test_strategies_are_null_on_noise(null_runs):
    rows = []
    for seed, (imaging, _) in enumerate(null_runs):
        assert imaging.skipped == []
        rows += _aucs(imaging.predictions, seed)
    mean = pd.DataFrame(rows).groupby(["strategy", "split"])["auc"].agg(["mean", "count"])
    print("\nnull AUCs on noise radiomics, 3 seeds\n", mean.round(3))
    assert set(mean.index.get_level_values(0)) == {"cluster", "elasticnet", "prespecified"}
    assert (mean["count"] == 3).all()
    assert ((mean["mean"] - 0.5).abs() <= 0.12).all(), mean


def test_noise_imaging_adds_nothing_to_noise_clinical_columns(null_runs):
    # beside clinical columns (unpenalised, so a chance association of theirs shows in
    # every model that keeps them) stability always runs; on noise imaging it must match
    # the clinical model, not beat it
    rows = []
    for seed, (_, with_clinical) in enumerate(null_runs):
        assert with_clinical.skipped == []
        rows += _aucs(with_clinical.predictions, seed)
    aucs = pd.DataFrame(rows).pivot_table(index=["seed", "split"], columns="strategy",
                                          values="auc")
    print("\nnull AUCs beside noise clinical columns\n", aucs.round(3))
    excess = (aucs["stability"] - aucs["lr"]).groupby("split").mean()
    assert (excess.abs() <= 0.12).all(), excess


def test_stability_on_noise_imaging_alone_is_a_recorded_skip_per_fold():
    X, clinical, y = table(n=60, seed=7, rad=30, rad_signal=(), clin_signal=0.0)
    res = run_protocol("honest", X, clinical, y, feature_sets=["radiomics"], classifiers=[],
                       selector=fast_selector, make_clf=classifier_factory,
                       settings=ProtocolSettings(cv_folds=3),
                       strategies=["stability", "cluster"],
                       make_strategy=strategy_factory(FAST_CFG))
    pred = res.predictions
    ran = {(r, k) for r, k in pred.loc[pred["classifier"] == "stability",
                                       ["repeat", "fold"]].itertuples(index=False)}
    skips = [d for d in res.skipped if d.get("classifier") == "stability" and "fold" in d]
    assert skips  # nothing is stable in noise ...
    assert all("kept no feature" in d["reason"] for d in skips)  # ... and it says so
    # every fold (3 CV folds and the final refit) either predicted or recorded why not
    assert ran | {(d["repeat"], d["fold"]) for d in skips} == {(0, 0), (0, 1), (0, 2),
                                                               (-1, -1)}
    assert set(pred.loc[pred["classifier"] == "cluster", "split"]) == {"cv", "test"}


@pytest.fixture(scope="module")
def signal_runs():
    X, clinical, y = table(n=90, seed=5, rad=40, rad_signal=(1.2, 1.2, 1.2),
                           clin_signal=0.8)
    settings = ProtocolSettings(cv_folds=3, seed=5)
    strategies = run_protocol(
        "honest", X, clinical, y, feature_sets=["fusion_clinical"], classifiers=[],
        selector=fast_selector, make_clf=classifier_factory, settings=settings,
        strategies=ALL, make_strategy=strategy_factory(FAST_CFG))
    clinical_lr = run_protocol(
        "honest", X, clinical, y, feature_sets=["clinical"], classifiers=["lr"],
        selector=fast_selector, make_clf=classifier_factory, settings=settings)
    return strategies, clinical_lr, X, clinical


def test_cluster_keeps_the_clinical_signal_and_adds_imaging(signal_runs):
    strategies, clinical_lr, _, _ = signal_runs
    pd.testing.assert_series_equal(strategies.split, clinical_lr.split)  # same patients
    pred = strategies.predictions
    cluster = cv_auc(pred[pred["classifier"] == "cluster"])
    clin = cv_auc(clinical_lr.predictions)
    print(f"\nCV AUC: cluster on fusion_clinical {cluster:.3f}, clinical LR {clin:.3f}")
    assert cluster > 0.7
    assert cluster >= clin


def test_noise_imaging_cannot_throw_the_clinical_signal_away():
    X, clinical, y = table(n=90, seed=6, rad=60, rad_signal=(), clin_signal=1.0)
    settings = ProtocolSettings(cv_folds=3, seed=6)
    res = run_protocol("honest", X, clinical, y, feature_sets=["fusion_clinical"],
                       classifiers=[], selector=fast_selector, make_clf=classifier_factory,
                       settings=settings, strategies=["cluster"],
                       make_strategy=strategy_factory(FAST_CFG))
    clin = run_protocol("honest", X, clinical, y, feature_sets=["clinical"],
                        classifiers=["lr"], selector=fast_selector,
                        make_clf=classifier_factory, settings=settings)
    a, b = cv_auc(res.predictions), cv_auc(clin.predictions)
    print(f"\nCV AUC with noise imaging: cluster {a:.3f}, clinical LR {b:.3f}")
    assert b > 0.7  # the clinical signal is there ...
    assert a >= b - 0.05  # ... and 60 noise columns beside it do not wash it out


# ----------------------------------------------------------------------------- audit
def test_null_audit_of_strategies_only():
    X, clinical, y = table(n=60, seed=7, rad=30, rad_signal=(), clin_signal=0.0)
    audit = null_audit(X, clinical, y, selector=fast_selector, make_clf=classifier_factory,
                       permutations=3, classifier=None, strategies=("cluster",),
                       make_strategy=strategy_factory(FAST_CFG),
                       settings=ProtocolSettings(cv_folds=3), progress=False)
    assert len(audit) == 3 * 2
    assert set(audit["protocol"]) == {"honest"}  # a strategy has no paper variant
    assert set(audit["classifier"]) == {"cluster"}
    assert set(audit["split"]) == {"cv", "test"}
    assert sorted(audit["permutation"].unique()) == [0, 1, 2]
    summary = summarise(audit)
    assert list(summary.columns[:3]) == ["protocol", "classifier", "split"]
    assert set(summary["classifier"]) == {"cluster"} and (summary["runs"] == 3).all()


def test_null_audit_of_stability_on_noise_imaging_says_no_model_instead_of_crashing():
    """On permuted labels nothing is stable in any fold: the audit keeps a row per
    permutation and split with no AUC and the reason, and the summary counts them."""
    X, clinical, y = table(n=60, seed=7, rad=30, rad_signal=(), clin_signal=0.0)
    audit = null_audit(X, clinical, y, selector=fast_selector,
                       make_clf=classifier_factory, permutations=2, classifier=None,
                       strategies=("stability",),
                       make_strategy=strategy_factory(FAST_CFG),
                       settings=ProtocolSettings(cv_folds=3), progress=False)
    assert set(audit["classifier"]) == {"stability"}
    assert len(audit) == 2 * 2
    empty = audit[audit["auc"].isna()]
    assert not empty.empty
    assert empty["note"].str.contains("kept no feature").all()
    summary = summarise(audit)
    assert (summary["runs"] + summary["no_model"] == 2).all()
    assert summary["no_model"].sum() == len(empty)


# ----------------------------------------------------------------------------- metrics
def predictions(repeats: int, n=40, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(int)
    frames = []
    for r in range(repeats):
        p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.2 * y - 0.6)))
        frames.append(pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)],
                                    "split": "cv", "repeat": r, "fold": np.arange(n) % 4,
                                    "probability": p, "label": y}))
    frames.append(pd.DataFrame({"patient_id": [f"T{i}" for i in range(12)], "split": "test",
                                "repeat": -1, "fold": -1,
                                "probability": rng.random(12),
                                "label": (np.arange(12) % 3 == 0).astype(int)}))
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "protocol", "honest")
    out.insert(1, "feature_set", "radiomics")
    out.insert(2, "classifier", "cluster")
    return out


def test_repeated_cv_rows_summarise_every_repeat():
    pred = predictions(3)
    metrics = evaluate(pred, n_boot=20)
    per_repeat = [roc_auc_score(part["label"], part["probability"])
                  for _, part in pred[pred["split"] == "cv"].groupby("repeat")]
    row = metrics[metrics["metric"] == "auc_repeated"]
    assert len(row) == 1
    row = row.iloc[0]
    assert (row["split"], row["classifier"]) == ("cv", "cluster")
    assert row["value"] == pytest.approx(np.mean(per_repeat))
    assert (row["lo"], row["hi"]) == (pytest.approx(min(per_repeat)),
                                      pytest.approx(max(per_repeat)))
    assert "3 repeats" in row["method"]
    sd = metrics.loc[metrics["metric"] == "auc_repeated_sd", "value"]
    assert sd.iat[0] == pytest.approx(np.std(per_repeat, ddof=1))
    assert {"calibration_slope_repeated", "calibration_intercept_repeated",
            "brier_repeated"} <= set(metrics["metric"])
    # the single-split rows still describe repeat 0 only
    auc0 = metrics[(metrics["metric"] == "auc") & (metrics["split"] == "cv")]["value"].iat[0]
    assert auc0 == pytest.approx(per_repeat[0])


def test_one_repeat_has_no_repeated_rows():
    metrics = evaluate(predictions(1), n_boot=20)
    assert not metrics["metric"].str.endswith(("_repeated", "_repeated_sd")).any()
    assert {"auc"} <= set(metrics["metric"])


def _metrics(**slopes) -> pd.DataFrame:
    rows = [{"protocol": "honest", "feature_set": "fusion", "classifier": "cluster",
             "split": "cv", "metric": m, "value": v} for m, v in slopes.items()]
    rows.append({"protocol": "honest", "feature_set": "fusion", "classifier": "cluster",
                 "split": "test", "metric": "calibration_slope", "value": 0.1})
    rows.append({"protocol": "paper", "feature_set": "fusion", "classifier": "cluster",
                 "split": "cv", "metric": "calibration_slope", "value": 0.1})
    return pd.DataFrame(rows)


def test_calibration_warning_names_the_model():
    lines = calibration_warnings(_metrics(calibration_slope=0.3), [("fusion", "cluster")])
    assert len(lines) == 1
    assert lines[0].startswith("WARNING")
    assert "honest fusion/cluster" in lines[0] and "0.30" in lines[0]
    assert "CV calibration slope" in lines[0] and "repeated" not in lines[0]
    assert calibration_warnings(_metrics(calibration_slope=1.0), [("fusion", "cluster")]) == []
    assert calibration_warnings(_metrics(calibration_slope=0.3), [("fusion", "lr")]) == []


def test_calibration_warning_prefers_repeated_cv():
    ok_repeated = _metrics(calibration_slope=0.3, calibration_slope_repeated=1.0)
    assert calibration_warnings(ok_repeated, [("fusion", "cluster")]) == []
    bad_repeated = _metrics(calibration_slope=1.0, calibration_slope_repeated=1.6)
    lines = calibration_warnings(bad_repeated, [("fusion", "cluster")])
    assert len(lines) == 1 and "repeated CV" in lines[0] and "1.60" in lines[0]
    assert "too timid" in lines[0]


# ----------------------------------------------------------------------------- saved models
@pytest.mark.parametrize("name", ALL)
def test_saved_strategy_model_predicts_the_same(signal_runs, name, tmp_path):
    strategies, _, X, clinical = signal_runs
    model = strategies.strategy_models["fusion_clinical", name]
    raw = X.join(clinical)
    path = save_model(model, tmp_path / f"fusion_clinical__{name}.skops")
    back = load_model(path)
    assert (back.feature_set, back.classifier_name, back.protocol) == (
        "fusion_clinical", name, "honest")
    np.testing.assert_allclose(back.predict_proba(raw), model.predict_proba(raw),
                               rtol=1e-10, atol=1e-12)
    # column order of the new table does not matter: the model reads its columns by name
    shuffled = raw[raw.columns[::-1]]
    np.testing.assert_allclose(back.predict_proba(shuffled), model.predict_proba(raw),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(WorkbenchError, match=r"lacks 1 columns.*rad__f3"):
        back.design(raw.drop(columns="rad__f3"))
