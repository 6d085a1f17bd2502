"""The learning curve (workbench.pipeline.learning_curve, its inputs per size from
workbench.pipeline.learning_inputs) on small feature tables, no images: the subsample path on
a tiny run directory with a known truth, the synthetic path's plumbing with the stages stubbed,
the per-size cache, the errors (strategy column typos included), the plot and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

import workbench.pipeline.learning_curve as lc
import workbench.pipeline.learning_inputs as li
from fixtures.run_dir import clinical_columns, write_cohort, write_features
from workbench.cli import main
from workbench.cohort.synthetic import patient_id
from workbench.cohort.table import CohortTable
from workbench.config import load_config
from workbench.errors import ConfigError
from workbench.models.feature_sets import clinical_matrix
from workbench.plots._common import PlotInputError
from workbench.plots.learning_curve import learning_curve_plot
from workbench.selection import SelectionError

pytestmark = [pytest.mark.filterwarnings("ignore::workbench.selection.SelectionWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

N = 80
SIZES = [40, 80]
STRATEGIES = ["cluster", "prespecified"]
SETS = ["radiomics", "kinetic"]
CONFIG = """
name: lc-test
seed: 3
jobs: 1
cohort: {{format: manifest, path: {path}}}
feature_sets: [clinical, radiomics, kinetic]
classifiers: [lr]
protocol: {{kinds: [honest], cv_folds: 3}}
selection: {{lasso: {{n_alphas: 10, cv_folds: 3}}}}
strategies:
  names: [study, cluster, prespecified]
  feature_sets: [radiomics, kinetic]
  prespecified: ["rad__f0[0-2]", "kin__f00"]
  repeats: 2
  inner_cv: 3
  n_alphas: 8
"""


def truth_table(ids: list[str], seed: int = 0) -> pd.DataFrame:
    """A truth table in the generator's columns: latents, subtype, true P(pCR), labels."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    subtype = rng.choice(["HR+/HER2-", "HER2+", "triple negative"], n)
    t = pd.DataFrame({"patient_id": ids, "subtype": subtype,
                      "ktrans_mean": np.exp(rng.normal(-1.5, 0.4, n)),
                      "heterogeneity": rng.uniform(0.1, 0.6, n),
                      "necrosis_fraction": np.where(rng.random(n) < 0.3, rng.random(n) / 3, 0),
                      "longest_diameter_mm": np.exp(rng.normal(3.7, 0.35, n)),
                      "irregularity": rng.uniform(0, 1, n)})
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    logit = (np.where(subtype == "HR+/HER2-", -1.6, -0.2) + 1.2 * z(np.log(t["ktrans_mean"]))
             - 0.8 * z(t["heterogeneity"]))
    t["true_probability"] = 1 / (1 + np.exp(-logit))
    t["pcr"] = (rng.random(n) < t["true_probability"]).astype(int)
    return t


def tables(ids: list[str], truth: pd.DataFrame, seed: int = 0) -> dict[str, pd.DataFrame]:
    """rad__ (24) and kin__ (5) features; a few follow the truth's latents."""
    rng = np.random.default_rng(seed + 1)
    idx = pd.Index(ids, name="patient_id")
    rad = pd.DataFrame(rng.standard_normal((len(ids), 24)), index=idx,
                       columns=[f"rad__f{j:02d}" for j in range(24)])
    rad["rad__f00"] += 3 * np.log(truth["ktrans_mean"].to_numpy()) + 4
    rad["rad__f01"] -= 3 * truth["heterogeneity"].to_numpy()
    kin = pd.DataFrame(rng.standard_normal((len(ids), 5)), index=idx,
                       columns=[f"kin__f{j:02d}" for j in range(5)])
    kin["kin__f00"] += np.log(truth["ktrans_mean"].to_numpy())
    return {"radiomics": rad, "kinetic": kin}


def write_base_run(run: Path, n: int = N) -> Path:
    """A run directory with a cohort (clinical columns), two feature tables and truth.csv."""
    ids = [f"P{i:03d}" for i in range(n)]
    truth = truth_table(ids)
    rng = np.random.default_rng(5)
    cohort = pd.DataFrame({"patient_id": ids, "pcr": pd.array(truth["pcr"], dtype="Int64"),
                           **clinical_columns(rng, n), "hr_her2": truth["subtype"]})
    write_cohort(run, cohort, [])
    write_features(run, tables(ids, truth), {"label": "no deep features"})
    truth.to_csv(run / "cohort" / "truth.csv", index=False)
    return run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning_curve")
    run = write_base_run(root / "base")
    config = root / "lc.yaml"
    config.write_text(CONFIG.format(path=root / "unused.csv"))
    return root, run, config


@pytest.fixture(scope="module")
def curve(setup):
    root, run, config = setup
    cfg = load_config(config)
    table = lc.learning_curve(cfg, SIZES, out=root / "out", base_run=run, progress=False)
    return table, cfg


def test_one_row_per_size_strategy_and_feature_set(curve, setup):
    table, _ = curve
    assert list(table.columns) == list(lc.LEARNING_CURVE_COLUMNS)
    models = table[table["kind"] == "model"]
    assert sorted(zip(models["n"], models["feature_set"], models["classifier"], strict=True)) \
        == sorted((n, fs, s) for n in SIZES for fs in SETS for s in STRATEGIES)
    assert (models["strategy"] == models["classifier"]).all()
    for kind in ("clinical_reference", "oracle", "learnable_bound"):
        assert sorted(table.loc[table["kind"] == kind, "n"]) == SIZES, kind
    ref = table[table["kind"] == "clinical_reference"]
    assert set(zip(ref["feature_set"], ref["classifier"], strict=True)) == {("clinical", "lr")}
    assert (table["n_used"] == table["n"]).all()
    assert set(table.attrs) >= {"csv", "html", "cached_sizes", "seconds"}
    assert table.attrs["cached_sizes"] == []
    root = setup[0] / "out"
    assert pd.read_csv(root / "learning_curve.csv").shape == table.shape
    assert sorted(p.name for p in (root / "sizes").iterdir()) == [
        "n40.csv", "n40.key.json", "n80.csv", "n80.key.json"]


def test_auc_spread_columns_are_filled(curve):
    table, _ = curve
    fitted = table[table["kind"].isin(["model", "clinical_reference", "learnable_bound"])]
    for col in ("auc_cv_mean", "auc_cv_sd", "auc_cv_min", "auc_cv_max"):
        assert fitted[col].notna().all(), col
    assert (fitted["repeats"] == 2).all()
    assert (fitted["auc_cv_min"] <= fitted["auc_cv_mean"]).all()
    assert (fitted["auc_cv_mean"] <= fitted["auc_cv_max"]).all()
    tested = table[table["kind"].isin(["model", "clinical_reference", "oracle"])]
    assert tested[["auc_test", "auc_test_lo", "auc_test_hi"]].notna().all().all()
    assert (tested["auc_test_lo"] <= tested["auc_test_hi"]).all()
    oracle = table[table["kind"] == "oracle"]
    assert oracle["auc_cv_mean"].between(0.6, 1.0).all()  # the truth is informative
    assert (table["seconds"] > 0).all()


def test_subsamples_are_stratified_and_nested():
    y = pd.Series([1] * 30 + [0] * 70, index=[f"p{i}" for i in range(100)])
    small, large = (li.stratified_subsample(y, n, seed=1) for n in (40, 70))
    assert set(small) < set(large)
    assert int(y.loc[small].sum()) == 12 and int(y.loc[large].sum()) == 21
    assert li.stratified_subsample(y, 40, seed=1) == small  # seeded
    assert set(li.stratified_subsample(y, 100, seed=1)) == set(y.index)


def test_a_second_call_reuses_every_size_and_refits_only_a_new_one(curve, setup,
                                                                   monkeypatch):
    table, cfg = curve
    root, run, _ = setup
    calls = []
    real = lc.size_table
    monkeypatch.setattr(lc, "size_table", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    again = lc.learning_curve(cfg, SIZES, out=root / "out", base_run=run, progress=False)
    assert calls == [] and again.attrs["cached_sizes"] == SIZES
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    more = lc.learning_curve(cfg, [*SIZES, 60], out=root / "out", base_run=run, progress=False)
    assert calls == [60] and more.attrs["cached_sizes"] == SIZES
    assert sorted(set(more["n"])) == [40, 60, 80]


def test_a_size_above_the_cohort_is_refused_before_any_work(curve, setup, tmp_path):
    _, cfg = curve
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=r"sizes \[200\] exceed the cohort.* 80 labelled"):
        lc.learning_curve(cfg, [40, 200], out=out, base_run=setup[1], progress=False)
    assert not out.exists()


def test_a_real_cohort_needs_a_finished_run(curve, tmp_path):
    _, cfg = curve
    with pytest.raises(ConfigError, match="no feature tables"):
        lc.learning_curve(cfg, [40], out=tmp_path / "o", base_run=tmp_path, progress=False)


@pytest.mark.parametrize(("sizes", "message"), [
    ([], "at least one cohort size"),
    ([0, 40], r"whole numbers >= 1; got \[0\]"),
    ([-5], r"whole numbers >= 1; got \[-5\]"),
    ([40, 40], r"lists \[40\] more than once"),
    ([8, 40], r"sizes \[8\] are too small for protocol.cv_folds = 3"),
    ([13], r"size 13 .*each class needs 2 x protocol.cv_folds = 6"),
])
def test_bad_sizes_are_refused_with_the_reason(curve, setup, sizes, message):
    _, cfg = curve
    with pytest.raises(ConfigError, match=message):
        lc.learning_curve(cfg, sizes, out=setup[0] / "bad", base_run=setup[1],
                          progress=False)


def test_a_config_without_strategies_is_refused(curve, tmp_path):
    _, cfg = curve
    study_only = cfg.model_copy(update={"strategies": cfg.strategies.model_copy(
        update={"names": ("study",)})})
    with pytest.raises(ConfigError, match="no strategy beside the study chain"):
        lc.learning_curve(study_only, [40], out=tmp_path, progress=False)


def test_one_repeat_and_a_set_without_its_blocks(curve, setup):
    """One repeat: no spread (SD NaN, min = max = mean); a strategy set whose blocks the
    inputs lack keeps its row, AUCs empty and the reason in ``detail``."""
    _, cfg = curve
    one = cfg.model_copy(update={"strategies": cfg.strategies.model_copy(update={
        "names": ("study", "cluster"), "feature_sets": ("kinetic", "resnet50")})})
    inputs = li.SubsampleSizes(one, [40], setup[1]).inputs(40)
    table = lc.size_table(one, 40, inputs, repeats=1, jobs=1)
    kin = table[table["feature_set"] == "kinetic"].iloc[0]
    assert np.isnan(kin["auc_cv_sd"]) and kin["repeats"] == 1
    assert kin["auc_cv_min"] == kin["auc_cv_mean"] == kin["auc_cv_max"]
    net = table[table["feature_set"] == "resnet50"].iloc[0]
    assert np.isnan(net["auc_cv_mean"]) and "['resnet50'], absent" in net["detail"]


def test_deep_features_tuned_on_labels_are_refused(curve, tmp_path):
    _, cfg = curve
    run = write_base_run(tmp_path / "tuned", n=40)
    ids = pd.read_parquet(run / "features" / "kinetic.parquet").index
    deep = pd.DataFrame(np.random.default_rng(0).standard_normal((len(ids), 4)), index=ids,
                        columns=[f"dl_resnet50__f{j}" for j in range(4)])
    deep.to_parquet(run / "features" / "deep.parquet")
    (run / "features" / "deep_weights.json").write_text(json.dumps(
        {"label": "fine-tuned", "networks": {"resnet50": {"fine_tune": True}}}))
    tuned = cfg.model_copy(update={"strategies": cfg.strategies.model_copy(update={
        "names": ("cluster",), "feature_sets": ("kinetic", "resnet50")})})
    with pytest.raises(ConfigError, match=r"\['resnet50'\] use deep features fine-tuned"):
        lc.learning_curve(tuned, [40], out=tmp_path / "o", base_run=run, progress=False)


@pytest.fixture
def synthetic(curve, tmp_path, monkeypatch):
    """A synthetic config of 30 patients with the generator, the stages and the modelling
    stubbed: ``(config, ids, generated cohorts, staged sizes)``."""
    _, cfg = curve
    base = tmp_path / "syn"
    syn = cfg.model_copy(update={"cohort": cfg.cohort.model_copy(update={
        "format": "synthetic", "path": str(base),
        "synthetic": cfg.cohort.synthetic.model_copy(update={"n": 30, "seed": 0})})})
    ids = [patient_id(i) for i in range(60)]
    truth = truth_table(ids, seed=2)
    features = pd.concat(tables(ids, truth).values(), axis=1)
    cohort = pd.DataFrame({"patient_id": ids, "pcr": truth["pcr"],
                           **clinical_columns(np.random.default_rng(0), 60)})
    generated, staged = [], []

    def fake_cohort_stage(c, *, jobs, progress):
        generated.append((synthetic_cohort(c), c.cohort.synthetic.n))
        folder = synthetic_cohort(c)
        folder.mkdir(parents=True)
        truth.to_csv(folder / "truth.csv", index=False)
        return CohortTable("synthetic", cohort.copy())

    def fake_stage_inputs(c, table, run, cache_dir, *, jobs, progress):
        staged.append((run.root.name, list(table.df["patient_id"])))
        got = table.df["patient_id"].tolist()
        return (features.loc[got], clinical_matrix(table.df),
                pd.Series(table.df["pcr"].to_numpy(), index=got))

    def fake_size_table(c, n, inputs, **kw):
        staged[-1] += (inputs.truth["patient_id"].tolist(),)
        return pd.DataFrame([{"n": n, "kind": "model", "feature_set": "radiomics",
                              "classifier": "cluster", "auc_cv_mean": 0.6, "auc_cv_min": 0.5,
                              "auc_cv_max": 0.7, "auc_test": 0.6, "auc_test_lo": 0.4,
                              "auc_test_hi": 0.8, "n_pos": int(inputs.y.sum())}])

    synthetic_cohort = li.synthetic_cohort_dir
    monkeypatch.setattr(li, "cohort_stage", fake_cohort_stage)
    monkeypatch.setattr(li, "stage_inputs", fake_stage_inputs)
    monkeypatch.setattr(lc, "size_table", fake_size_table)
    return syn, ids, generated, staged


def test_synthetic_sizes_are_the_generators_first_patients(synthetic, tmp_path):
    """Above the config's n: one cohort of the largest size in ``<path>_n<N>``; each size
    gets the first n patients, its own run directory and the truth of its patients."""
    syn, ids, generated, staged = synthetic
    table = lc.learning_curve(syn, [24, 60], out=tmp_path / "out", progress=False,
                              cache_dir=tmp_path / "cache")
    assert generated == [(tmp_path / "syn_n60", 60)]  # once, for the largest size
    assert [s[0] for s in staged] == ["n24", "n60"]
    assert staged[0][1] == ids[:24] and staged[1][1] == ids
    assert staged[0][2] == ids[:24]  # the truth of exactly these patients
    assert list(table["n"]) == [24, 60]
    assert (tmp_path / "out" / "learning_curve.html").is_file()


#: Strategy entries that name no column, and the start of the error each gets.
STRATEGY_TYPOS = [
    ({"feature_sets": ("kinetic", "clinical"), "unpenalised": ("clin__subtype_tnn",)},
     r"strategies\.unpenalised not found:\n  'clin__subtype_tnn' matches no column of the "
     r"clinical design matrix; closest: clin__subtype_tn"),
    ({"prespecified": ("rad__f0[0-2]", "kin_f00")},
     r"strategies\.prespecified not found:\n  'kin_f00' matches no column of the feature "
     r"tables; closest: kin__f00"),
]


@pytest.mark.parametrize(("update", "message"), STRATEGY_TYPOS)
def test_a_strategy_column_that_does_not_exist_is_refused_before_any_work(
        curve, setup, tmp_path, monkeypatch, update, message):
    """Checked once on the base run's inputs: the closest names, nothing fitted or written."""
    _, cfg = curve
    typo = cfg.model_copy(update={"strategies": cfg.strategies.model_copy(update=update)})
    fitted = []
    monkeypatch.setattr(lc, "size_table", lambda *a, **k: fitted.append(a[1]))
    out = tmp_path / "never"
    with pytest.raises(SelectionError, match=message):
        lc.learning_curve(typo, SIZES, out=out, base_run=setup[1], progress=False)
    assert fitted == [] and not out.exists()


@pytest.mark.parametrize(("update", "message"), STRATEGY_TYPOS)
def test_a_synthetic_strategy_typo_is_refused_before_the_first_fit(synthetic, tmp_path,
                                                                    update, message):
    """No features exist before a size's stages: the smallest size's inputs are checked
    before it is modelled."""
    syn, _, _, staged = synthetic
    typo = syn.model_copy(update={"strategies": syn.strategies.model_copy(update=update)})
    with pytest.raises(SelectionError, match=message):
        lc.learning_curve(typo, [24, 60], out=tmp_path / "out", progress=False,
                          cache_dir=tmp_path / "cache")
    assert [s[0] for s in staged] == ["n24"]
    assert len(staged[0]) == 2  # staged, never modelled
    assert not (tmp_path / "out" / "sizes").exists()


def test_the_plot_draws_every_line_and_refuses_bad_input(curve):
    table, _ = curve
    fig = learning_curve_plot(table)
    assert isinstance(fig, hv.Overlay)
    labels = {e.label for e in fig if isinstance(e, hv.Curve)}
    assert "radiomics / cluster" in labels and "oracle (true probability)" in labels
    assert len(labels) == 2 * 2 + 3
    assert isinstance(learning_curve_plot(table, split="test"), hv.Overlay)
    with pytest.raises(PlotInputError, match="split must be one of"):
        learning_curve_plot(table, split="train")
    with pytest.raises(PlotInputError, match="lacks column"):
        learning_curve_plot(table.drop(columns=["auc_cv_max"]))
    html = Path(table.attrs["html"]).read_text()
    assert "Bokeh" in html and "<script src=" not in html  # standalone, offline


def test_cli_help_runs_and_errors_exit_2(setup, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["learning-curve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--sizes" in out and "--repeats" in out and "--run" in out
    root, run, config = setup
    code = main(["-q", "learning-curve", "--config", str(config), "--sizes", "40", "500",
                 "--run", str(run), "--out", str(root / "cli_bad")])
    assert code == 2
    err = capsys.readouterr().err
    assert "500" in err and "exceed the cohort" in err


def test_cli_prints_the_summary_and_paths(curve, setup, capsys):
    root, run, config = setup
    code = main(["-q", "learning-curve", "--config", str(config), "--sizes", *map(str, SIZES),
                 "--run", str(run), "--out", str(root / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "reused" in out and "n=40 (" in out and "clinical reference" in out
    assert str(root / "out" / "learning_curve.csv") in out
    assert "learning_curve.html" in out
    written = json.loads((root / "out" / "sizes" / "n40.key.json").read_text())
    assert written["n"] == 40

