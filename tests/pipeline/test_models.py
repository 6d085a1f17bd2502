"""The modelling stage's run-directory tables, saved models, Youden thresholds, null audit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import threshold_metrics, youden_threshold
from workbench.evaluation.summary import evaluate, headline
from workbench.models.audit import null_audit, summarise
from workbench.models.fusion import FusionModel, load_model, save_model
from workbench.models.protocols import LEAKAGE_WARNING, ProtocolSettings
from workbench.pipeline.models import run_models
from workbench.pipeline.settings import classifier_factory, selector_factory

pytestmark = [pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

CFG = RunConfig(feature_sets=["clinical", "radiomics", "kinetic"], classifiers=["lr", "knn"],
                jobs=1, protocol={"cv_folds": 3, "kinds": ["honest", "paper"]},
                selection={"lasso": {"n_alphas": 10, "cv_folds": 3}})


def small_table(n: int = 60, seed: int = 0):
    """rad__ and kin__ blocks with a little signal, two clinical columns, ~35 % pCR."""
    rng = np.random.default_rng(seed)
    ids = [f"T{i:03d}" for i in range(n)]
    y = pd.Series((rng.random(n) < 0.35).astype(int), index=ids)
    rad = pd.DataFrame(rng.standard_normal((n, 40)), index=ids,
                       columns=[f"rad__f{j:02d}" for j in range(40)])
    rad["rad__f00"] += 1.2 * y
    kin = pd.DataFrame(rng.standard_normal((n, 6)), index=ids,
                       columns=[f"kin__k{j}" for j in range(6)])
    kin["kin__k0"] += 0.8 * y
    kin.loc[ids[::9], "kin__k0"] = np.nan  # kinetic maps can be empty for a patient
    clinical = pd.DataFrame({"clin__age": rng.normal(50, 10, n),
                             "clin__her2_pos": (rng.random(n) < 0.3).astype(float)}, index=ids)
    return rad.join(kin), clinical, y


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    features, clinical, y = small_table()
    out = tmp_path_factory.mktemp("models")
    result = run_models(CFG, features, clinical, y, out, n_boot=50)
    return result, features, clinical, y


def test_run_models_writes_every_table(stage):
    result, features, _, y = stage
    out = result.out_dir
    for name in ("predictions", "metrics", "selection", "signatures", "shap"):
        assert not pd.read_parquet(out / f"{name}.parquet").empty, name
    for protocol in ("honest", "paper"):
        for fs in CFG.feature_sets:
            for clf in CFG.classifiers:
                assert (out / protocol / f"{fs}__{clf}.skops").is_file()
    split = pd.read_csv(out / "split.csv")
    assert list(split.columns) == ["patient_id", "split"] and len(split) == len(y)
    assert (split.set_index("patient_id")["split"].to_dict()
            == result.results["honest"].split.to_dict())
    assert (out / "skipped.csv").is_file()  # nothing skipped here: an empty table

    preds = pd.read_parquet(out / "predictions.parquet")
    assert set(preds["protocol"]) == {"honest", "paper"}
    assert set(preds["feature_set"]) == set(CFG.feature_sets)
    assert (preds.loc[preds["protocol"] == "paper", "warning"] == LEAKAGE_WARNING).all()
    assert preds.loc[preds["protocol"] == "honest", "warning"].isna().all()
    sel = pd.read_parquet(out / "selection.parquet")
    assert {"variance", "univariate", "lasso", "signature"} <= set(sel["stage"])
    assert set(sel["block"]) == {"radiomics", "kinetic"}
    shap = pd.read_parquet(out / "shap.parquet")
    assert set(shap["feature_set"]) == {"kinetic"}  # the last configured set that ran
    assert set(shap["protocol"]) == {"honest", "paper"}


def test_metrics_have_auc_with_delong_ci_and_paper_rows_warn(stage):
    result, *_ = stage
    metrics = pd.read_parquet(result.out_dir / "metrics.parquet")
    auc = metrics[metrics["metric"] == "auc"]
    assert len(auc) == 2 * 3 * 2 * 2  # protocols x feature sets x classifiers x splits
    assert (auc["method"] == "DeLong").all()
    assert ((auc["lo"] <= auc["value"]) & (auc["value"] <= auc["hi"])).all()
    assert auc[["value", "lo", "hi"]].notna().all().all()
    assert (metrics.loc[metrics["protocol"] == "paper", "warning"] == LEAKAGE_WARNING).all()
    assert metrics.loc[metrics["protocol"] == "honest", "warning"].isna().all()
    assert {"accuracy", "sensitivity", "specificity", "brier"} <= set(metrics["metric"])
    lines = headline(metrics, "radiomics")
    assert len(lines) == 4 and any("LEAKS" in line for line in lines if "paper" in line)


def test_saved_model_round_trips_with_identical_probabilities(stage):
    result, features, clinical, _ = stage
    table = features.join(clinical)
    split = result.results["honest"].split
    test = split.index[split == "test"]
    for fs, clf in (("radiomics", "lr"), ("kinetic", "knn"), ("clinical", "lr")):
        in_memory = result.results["honest"].final_models[(fs, clf)]
        loaded = load_model(result.out_dir / "honest" / f"{fs}__{clf}.skops")
        assert isinstance(loaded, FusionModel) and loaded.feature_set == fs
        np.testing.assert_array_equal(loaded.predict_proba(table),
                                      in_memory.predict_proba(table))
        # the final model reproduces the test predictions the stage wrote
        preds = pd.read_parquet(result.out_dir / "predictions.parquet")
        written = preds[(preds["protocol"] == "honest") & (preds["feature_set"] == fs)
                        & (preds["classifier"] == clf) & (preds["split"] == "test")]
        np.testing.assert_allclose(
            loaded.predict_proba(table.loc[written["patient_id"]])[:, 1],
            written["probability"], rtol=1e-10, atol=1e-12)
        assert sorted(written["patient_id"]) == sorted(test)
        assert loaded.metadata["train_patients"] == split.index[split == "train"].tolist()
    paper = load_model(result.out_dir / "paper" / "radiomics__knn.skops")
    assert paper.protocol == "paper" and paper.metadata["warning"] == LEAKAGE_WARNING


class Intruder:
    """A type no allowlist trusts."""

    def __init__(self):
        self.payload = "anything"


def test_load_model_refuses_types_outside_the_allowlist(stage, tmp_path):
    import skops.io as sio

    bare = tmp_path / "intruder.skops"
    sio.dump(Intruder(), bare)
    with pytest.raises(WorkbenchError, match="untrusted type.*Intruder") as err:
        load_model(bare)
    assert str(bare) in str(err.value)

    result, *_ = stage
    model = result.results["honest"].final_models[("radiomics", "lr")]
    smuggled = FusionModel(**{**model.get_params(deep=False), "metadata": {"x": Intruder()}})
    save_model(smuggled.fit(None), tmp_path / "smuggled.skops")
    with pytest.raises(WorkbenchError, match="refusing to load"):
        load_model(tmp_path / "smuggled.skops")
    with pytest.raises(WorkbenchError, match="model file not found"):
        load_model(tmp_path / "absent.skops")


def test_design_names_the_missing_trained_columns(stage):
    result, features, clinical, _ = stage
    model = result.results["honest"].final_models[("radiomics", "lr")]
    wanted = model.block_inputs["radiomics"]
    table = features.join(clinical).drop(columns=wanted[:2])
    with pytest.raises(WorkbenchError, match=r"lacks 2 'radiomics' columns.*rad__f00") as err:
        model.design(table)
    assert err.value.step == "predict"
    # clinical columns the new cohort lacks become NaN for the pipeline's imputation
    fusion = result.results["honest"].final_models[("clinical", "lr")]
    proba = fusion.predict_proba(features.join(clinical[["clin__age"]]))
    assert np.isfinite(proba).all()


def test_youden_threshold_is_chosen_on_cv_and_applied_to_test(stage):
    result, *_ = stage
    preds = pd.read_parquet(result.out_dir / "predictions.parquet")
    metrics = evaluate(preds, threshold_rule="youden", n_boot=20)
    moved = 0
    for (protocol, fs, clf), rows in metrics.groupby(["protocol", "feature_set", "classifier"]):
        group = preds[(preds["protocol"] == protocol) & (preds["feature_set"] == fs)
                      & (preds["classifier"] == clf)]
        cv, test = group[group["split"] == "cv"], group[group["split"] == "test"]
        thr = youden_threshold(cv["label"], cv["probability"])
        assert (rows["threshold"] == thr).all()  # cv rows and test rows alike
        sens = rows[(rows["split"] == "test") & (rows["metric"] == "sensitivity")]["value"]
        assert sens.iat[0] == pytest.approx(
            threshold_metrics(test["label"], test["probability"], thr)["sensitivity"],
            nan_ok=True)
        moved += thr != 0.5
    assert moved  # the rule did move thresholds away from the fixed 0.5


def test_youden_never_looks_at_test_labels():
    cv = pd.DataFrame({"probability": [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9],
                       "label": [0, 0, 0, 1, 0, 1, 1, 1], "split": "cv"})
    test = pd.DataFrame({"probability": [0.05, 0.15, 0.25, 0.35, 0.45, 0.55],
                         "label": [0, 0, 1, 1, 1, 1], "split": "test"})
    preds = pd.concat([cv, test], ignore_index=True).assign(
        protocol="honest", feature_set="radiomics", classifier="lr", repeat=0, fold=0)
    preds.loc[preds["split"] == "test", ["repeat", "fold"]] = -1
    metrics = evaluate(preds, threshold_rule="youden", n_boot=20)
    expected = youden_threshold(cv["label"], cv["probability"])
    assert expected == pytest.approx(0.65)  # J ties at 0.35 and 0.65: the higher cut wins
    assert youden_threshold(test["label"], test["probability"]) == pytest.approx(0.2)
    assert (metrics["threshold"] == expected).all()  # not the test set's own 0.2
    sens = metrics[(metrics["split"] == "test") & (metrics["metric"] == "sensitivity")]
    assert sens["value"].iat[0] == 0.0  # no test score reaches the training cut
    fixed = evaluate(preds, threshold_rule="fixed", fixed_threshold=0.5, n_boot=20)
    assert (fixed["threshold"] == 0.5).all()


def test_null_audit_rows_and_summary():
    rng = np.random.default_rng(3)
    n = 60
    ids = [f"N{i:02d}" for i in range(n)]
    X = pd.DataFrame(rng.standard_normal((n, 150)), index=ids,
                     columns=[f"rad__f{j}" for j in range(150)])
    y = pd.Series((np.arange(n) % 3 == 0).astype(int), index=ids)
    audit = null_audit(X, pd.DataFrame(), y, selector=selector_factory(CFG),
                       make_clf=classifier_factory, permutations=3,
                       settings=ProtocolSettings(cv_folds=3), seed=1, progress=False)
    assert len(audit) == 3 * 2 * 2
    assert set(audit["protocol"]) == {"honest", "paper"}
    assert set(audit["split"]) == {"cv", "test"}
    assert audit.groupby(["protocol", "split"])["permutation"].nunique().eq(3).all()
    assert audit["auc"].between(0, 1).all()
    assert set(audit.loc[audit["split"] == "test", "n"]) == {18}
    summary = summarise(audit)
    assert {"protocol", "split", "mean", "sd", "min", "max", "runs"} <= set(summary.columns)
    assert len(summary) == 4 and (summary["runs"] == 3).all()
    row = summary[(summary["protocol"] == "paper") & (summary["split"] == "cv")].iloc[0]
    paper_cv = audit[(audit["protocol"] == "paper") & (audit["split"] == "cv")]["auc"]
    assert row["mean"] == pytest.approx(paper_cv.mean())
    assert row["sd"] == pytest.approx(paper_cv.std())
    print("\n", summary.round(3))
    parallel = null_audit(X, pd.DataFrame(), y, selector=selector_factory(CFG),
                          make_clf=classifier_factory, permutations=3,
                          settings=ProtocolSettings(cv_folds=3, jobs=2), seed=1,
                          progress=False)
    pd.testing.assert_frame_equal(parallel, audit)  # the same draws, whatever the workers


def test_saved_models_store_wide_blocks_compactly(tmp_path):
    """Fit diagnostics over thousands of features go to binary arrays, not JSON nodes."""
    import zipfile

    from workbench.models.classifiers import make_pipeline
    from workbench.models.fusion import assemble
    from workbench.selection import selection_pipeline

    rng = np.random.default_rng(0)
    n, p = 80, 3000
    y = pd.Series(rng.integers(0, 2, n), index=[f"P{i}" for i in range(n)])
    features = pd.DataFrame(rng.standard_normal((n, p)), index=y.index,
                            columns=[f"rad__feature_with_a_long_name_{j:05d}" for j in range(p)])
    features.iloc[:, :5] += y.to_numpy()[:, None]
    block = selection_pipeline("radiomics", lasso_kwargs={"alphas": 10, "cv": 3}).fit(
        features, y)
    design = pd.DataFrame({"sig__radiomics": np.asarray(block.transform(features))[:, 0]},
                          index=y.index)
    clf = make_pipeline("lr").fit(design, y)
    model = assemble({"radiomics": block}, clf, features, ["sig__radiomics"],
                     feature_set="radiomics", classifier_name="lr", protocol="honest",
                     metadata={"train_patients": list(y.index)})
    path = save_model(model, tmp_path / "wide.skops")
    with zipfile.ZipFile(path) as z:
        schema = z.getinfo("schema.json").file_size
    assert schema < 200_000, f"schema.json is {schema} bytes for {p} features"
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(features), model.predict_proba(features))
    assert loaded.metadata["train_patients"] == list(y.index)


class BarRecorder:
    """Stands in for tqdm: records each bar's label, total, updates and final count."""

    bars: list[BarRecorder] = []

    def __init__(self, iterable=None, *, total=None, desc=None, initial=0, disable=False,
                 **_):
        self.iterable, self.total, self.desc, self.disable = iterable, total, desc, disable
        self.n, self.updates, self.postfix = initial, [], {}
        BarRecorder.bars.append(self)

    def update(self, n=1):
        self.n += n
        self.updates.append(n)

    def set_postfix(self, counts, refresh=True):
        self.postfix = dict(counts)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_model_stage_bars_count_every_selection_and_fit_as_it_finishes(tmp_path, monkeypatch):
    from workbench.models import protocols
    from workbench.models.feature_sets import FEATURE_SETS

    monkeypatch.setattr(protocols, "tqdm", BarRecorder)
    BarRecorder.bars = []
    features, clinical, y = small_table()
    result = run_models(CFG, features, clinical, y, tmp_path, jobs=2, progress=True,
                        n_boot=20, save_models=False)
    folds = CFG.protocol.cv_folds * CFG.protocol.repeats + 1  # CV folds + the final refit
    blocks = {b for fs in CFG.feature_sets for b in FEATURE_SETS[fs].blocks}
    fits = folds * len(CFG.feature_sets) * len(CFG.classifiers)
    selections = {"honest": folds * len(blocks), "paper": len(blocks)}  # paper: once, on all
    assert [bar.desc for bar in BarRecorder.bars] == [f"models ({p})" for p in
                                                      CFG.protocol.kinds]
    for protocol, bar in zip(CFG.protocol.kinds, BarRecorder.bars, strict=True):
        assert not bar.disable
        assert bar.total == selections[protocol] + fits
        assert bar.n == bar.total
        assert bar.updates == [1] * bar.total  # one step per unit, as each finishes
        preds = result.results[protocol].predictions
        fitted = preds.groupby(["feature_set", "classifier", "repeat", "fold"]).ngroups
        assert bar.postfix == {"selected": selections[protocol], "fitted": fitted,
                               "skipped": fits - fitted}


def test_skipped_units_still_complete_the_bar(monkeypatch):
    from workbench.models import protocols

    monkeypatch.setattr(protocols, "tqdm", BarRecorder)
    BarRecorder.bars = []
    features, clinical, y = small_table()
    features.loc[:, features.columns.str.startswith("rad__")] = 1.0  # cannot be selected from
    sets, classifiers, folds = ["radiomics", "kinetic"], ["lr", "knn"], 3
    result = protocols.run_protocol(
        "honest", features, clinical, y, feature_sets=sets, classifiers=classifiers,
        selector=selector_factory(CFG), make_clf=classifier_factory,
        settings=ProtocolSettings(cv_folds=folds), progress=True)
    (bar,) = BarRecorder.bars
    tasks = folds + 1
    assert bar.n == bar.total == tasks * len(sets) + tasks * len(sets) * len(classifiers)
    block_skips = [d for d in result.skipped if d.get("block") == "radiomics"]
    set_skips = [d for d in result.skipped if d.get("feature_set") == "radiomics"]
    assert len(block_skips) == len(set_skips) == tasks  # one of each per fold
    fitted = result.predictions.groupby(["feature_set", "classifier", "fold"]).ngroups
    assert bar.postfix == {"selected": tasks, "fitted": fitted,
                           "skipped": len(block_skips) + len(set_skips) * len(classifiers)}
    assert set(result.predictions["feature_set"]) == {"kinetic"}


def test_null_audit_bar_counts_permutations(monkeypatch):
    from workbench.models import audit as audit_module

    monkeypatch.setattr(audit_module, "tqdm", BarRecorder)
    BarRecorder.bars = []
    features, clinical, y = small_table()
    permutations = 3
    audit = null_audit(features, clinical, y, selector=selector_factory(CFG),
                       make_clf=classifier_factory, permutations=permutations,
                       settings=ProtocolSettings(cv_folds=3), seed=1, progress=True)
    (bar,) = BarRecorder.bars
    assert bar.desc == "null audit" and not bar.disable
    assert bar.total == bar.n == permutations == audit["permutation"].nunique()
