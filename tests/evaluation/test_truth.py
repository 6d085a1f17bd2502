"""Known-truth diagnostics on small hand-made tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from workbench.evaluation.truth import (
    KNOWN_TRUTH_COLUMNS,
    TruthError,
    feature_block,
    gap_closed,
    known_truth_table,
    latent_proxies,
    learnable_bound,
    oracle_auc,
)
from workbench.evaluation.truth_display import model_rows, proxy_rows, reference_rows

N = 60


@pytest.fixture
def truth() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    a = rng.normal(size=N)
    y = (a + rng.normal(0, 0.3, N) > 0).astype(int)
    return pd.DataFrame({
        "patient_id": [f"P{i:02d}" for i in range(N)],
        "true_probability": 1 / (1 + np.exp(-3 * a)), "pcr": y,
        "subtype": rng.choice(["A", "B", "C"], N),
        "a": a, "b": rng.normal(size=N), "c": np.where(rng.random(N) < 0.5, 0.0,
                                                        rng.random(N))})


@pytest.fixture
def features(truth) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(N, 40)), index=truth["patient_id"][::-1],
                         columns=[f"{'rad' if j < 20 else 'dl_resnet50'}__f{j}"
                                  for j in range(40)])
    t = truth.set_index("patient_id")
    frame["kin__a_cubed"] = t["a"] ** 3           # monotone in a: rho = 1
    frame["dl_resnet50__minus_b"] = -t["b"]       # rho = -1
    frame["rad__constant"] = 1.0                  # no correlation defined: skipped
    frame["rad__gap"] = t["b"].where(t.index != "P03")  # a missing value: skipped
    frame["rad__label"] = "text"                  # not numeric: ignored
    return frame


def test_feature_block_is_the_prefix():
    assert feature_block("rad__original_firstorder_Mean") == "rad"
    assert feature_block("dl_resnet50__f0001") == "dl_resnet50"
    assert feature_block("age") == "other"


def test_a_feature_equal_to_a_latent_is_its_proxy(truth, features):
    out = latent_proxies(truth, features, ["a", "b", "c"])
    best = out[out["block"] == "all"].set_index("latent")
    assert best.loc["a", "best_feature"] == "kin__a_cubed"
    assert best.loc["a", "abs_rho"] == pytest.approx(1.0)
    assert best.loc["b", "best_feature"] == "dl_resnet50__minus_b"
    assert best.loc["b", "rho"] == pytest.approx(-1.0)
    assert (out["n"] == N).all()
    assert out.attrs["skipped_features"] == 2  # constant and gapped; text never counted
    assert set(out["block"]) == {"all", "rad", "dl_resnet50", "kin"}
    assert best.loc["a", "n_features"] == 42
    # within a block: the best of that block, and Spearman's rho exactly (ties in c)
    rad = out[(out["latent"] == "c") & (out["block"] == "rad")].iloc[0]
    t = truth.set_index("patient_id")
    rho = spearmanr(t["c"], features.loc[t.index, rad["best_feature"]]).statistic
    assert rad["rho"] == pytest.approx(rho)
    others = [abs(spearmanr(t["c"], features.loc[t.index, f"rad__f{j}"]).statistic)
              for j in range(20)]
    assert rad["abs_rho"] == pytest.approx(max(others))


def test_proxies_use_the_shared_patients_only(truth, features):
    out = latent_proxies(truth.iloc[:30], features, ["a"])
    assert (out["n"] == 30).all()
    with pytest.raises(TruthError, match="share 0 patients"):
        latent_proxies(truth.assign(patient_id="X" + truth["patient_id"]), features, ["a"])
    with pytest.raises(TruthError, match="latent column"):
        latent_proxies(truth, features, ["nope"])


def test_oracle_auc_with_delong_ci(truth):
    perfect = oracle_auc(truth.assign(true_probability=truth["pcr"] * 0.8 + 0.1))
    assert perfect["auc"] == 1.0 and perfect["n"] == N and perfect["n_pos"] == truth["pcr"].sum()
    out = oracle_auc(truth)
    assert 0.5 < out["lo"] < out["auc"] < out["hi"] <= 1
    with pytest.raises(TruthError, match="one class"):
        oracle_auc(truth.assign(pcr=1))


def test_a_latent_that_determines_pcr_gives_a_bound_near_one(truth):
    sure = truth.assign(a=truth["pcr"] + np.random.default_rng(3).normal(0, 0.05, N))
    out = learnable_bound(sure, ["a"], folds=5, repeats=3)
    assert out["auc"] == pytest.approx(1.0)
    assert out["repeats"] == 3 and len(out["aucs"]) == 3 and out["n"] == N
    # subtype is random here: the clinical reference is near chance
    assert abs(out["clinical_auc"] - 0.5) < 0.2
    noise = learnable_bound(truth, ["b"], clinical_columns=(), folds=5, repeats=3)
    assert noise["clinical_auc"] == 0.5 and abs(noise["auc"] - 0.5) < 0.2


def test_learnable_bound_is_deterministic_and_checks_its_inputs(truth):
    one = learnable_bound(truth, ["a", "b"], folds=3, repeats=2, seed=5)
    assert one == learnable_bound(truth, ["a", "b"], folds=3, repeats=2, seed=5)
    assert one["sd"] >= 0
    with pytest.raises(TruthError, match="folds must be"):
        learnable_bound(truth, ["a"], folds=1)
    with pytest.raises(TruthError, match="needs 40 patients of each class"):
        learnable_bound(truth, ["a"], folds=40)


def test_gap_closed_arithmetic():
    assert gap_closed(0.8, 0.6, 1.0) == pytest.approx(0.5)
    assert gap_closed(0.6, 0.6, 0.9) == 0.0
    assert gap_closed(0.9, 0.6, 0.9) == pytest.approx(1.0)
    assert gap_closed(0.5, 0.6, 0.8) == pytest.approx(-0.5)
    assert np.isnan(gap_closed(0.7, 0.8, 0.8))   # no gap
    assert np.isnan(gap_closed(0.7, 0.8, 0.75))  # negative gap
    assert np.isnan(gap_closed(float("nan"), 0.6, 0.9))


def _metrics() -> pd.DataFrame:
    rows = []
    for protocol, bonus in (("honest", 0.0), ("paper", 0.2)):
        for fs, auc in (("clinical", 0.6), ("radiomics", 0.75), ("fusion", 0.7)):
            for split in ("cv", "test"):
                for metric, value in (("auc", auc + bonus), ("accuracy", 0.5)):
                    rows.append({"protocol": protocol, "feature_set": fs, "classifier": "lr",
                                 "split": split, "metric": metric, "value": value,
                                 "lo": value - 0.1, "hi": value + 0.1, "n": 40})
    for metric, value, lo, hi in (("auc_repeated", 0.74, 0.72, 0.76),
                                  ("auc_repeated_sd", 0.015, np.nan, np.nan)):
        rows.append({"protocol": "honest", "feature_set": "radiomics", "classifier": "lr",
                     "split": "cv", "metric": metric, "value": value, "lo": lo, "hi": hi,
                     "n": 40, "method": "mean of 5 repeats"})
    return pd.DataFrame(rows)


def test_known_truth_table_rows_and_gap_fractions(truth, features):
    table = known_truth_table(truth, features, _metrics(), latents=["a", "b", "c"], folds=3,
                              repeats=2)
    assert list(table.columns) == list(KNOWN_TRUTH_COLUMNS)
    counts = table["kind"].value_counts()
    assert counts["oracle"] == counts["learnable_bound"] == counts["clinical_reference"] == 1
    assert counts["proxy"] == 3 and counts["proxy_block"] == 9
    models = table[table["kind"] == "model"]
    assert set(models["protocol"]) == {"honest"}  # the leaky protocol is not measured
    assert len(models) == 7 and (models["metric"] == "auc_repeated").sum() == 1
    repeated = models[models["metric"] == "auc_repeated"].iloc[0]
    assert repeated["sd"] == 0.015 and repeated["detail"] == "mean of 5 repeats"
    ref = table.set_index("kind")
    bound, clin = ref.loc["learnable_bound", "auc"], ref.loc["clinical_reference", "auc"]
    for r in models.itertuples():
        assert r.gap_closed == pytest.approx((r.auc - clin) / (bound - clin))
    assert ref.loc["oracle", "auc"] == pytest.approx(oracle_auc(truth)["auc"])
    assert ref.loc["learnable_bound", "gap_closed"] == 1.0
    both = known_truth_table(truth, None, _metrics(), latents=["a"], folds=3, repeats=2,
                             protocols=("honest", "paper"))
    assert "proxy" not in set(both["kind"]) and len(both[both["kind"] == "model"]) == 13
    bare = known_truth_table(truth, None, None, latents=["a"], folds=3, repeats=2)
    assert list(bare["kind"]) == ["oracle", "learnable_bound", "clinical_reference"]


def test_display_tables(truth, features, tmp_path):
    table = known_truth_table(truth, features, _metrics(), latents=["a", "b"], folds=3,
                              repeats=2)
    table.to_csv(tmp_path / "kt.csv", index=False)  # shown as read back from the run
    table = pd.read_csv(tmp_path / "kt.csv")
    refs = reference_rows(table)
    assert refs["Reference"].str.startswith(("Oracle", "Learnable", "Clinical")).all()
    assert "–" in refs["AUC"].iloc[0] and "±" in refs["AUC"].iloc[1]
    proxies = proxy_rows(table)
    assert list(proxies["Latent"]) == ["a", "b"]
    assert list(proxies["Best feature"]) == ["kin__a_cubed", "dl_resnet50__minus_b"]
    assert {"|rho| rad", "|rho| kin", "|rho| dl_resnet50"} <= set(proxies.columns)
    assert proxies["|rho|"].tolist() == ["1.00", "1.00"]
    models = model_rows(table, "honest", top=2)
    assert list(models["Feature set"]) == ["radiomics", "fusion"]  # ranked on CV AUC
    assert models["Repeated CV AUC (mean ± SD)"].tolist() == ["0.740 ± 0.015", "n/a"]
    assert models["Repeated CV gap closed"].iloc[1] == "n/a"
    assert model_rows(table, "paper").empty
