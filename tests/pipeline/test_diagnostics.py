"""The known-truth stage: the generator's law, the synthetic-only rule, the run files and
the cache."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from workbench.cohort.synth_latent import LOGIT_TERMS, sample_latent, true_probability
from workbench.cohort.synth_settings import SynthSettings
from workbench.config import RunConfig
from workbench.pipeline.diagnostics import (
    CLINICAL_COLUMNS,
    LAW_DRIVERS,
    known_truth_lines,
    known_truth_stage,
    law_drivers,
)
from workbench.rundir import RunDir

N = 80


def _truth_like(n: int, seed: int = 0) -> pd.DataFrame:
    """What the generator writes to truth.csv (the columns the law needs), from its own
    latent sampler and pCR law."""
    settings = SynthSettings()
    rng = np.random.default_rng(seed)
    latent = sample_latent(rng, n, settings)
    p = true_probability(latent, settings)
    return pd.DataFrame({
        "patient_id": [f"SYN{i + 1:04d}" for i in range(n)], "true_probability": p,
        "pcr": (rng.random(n) < p).astype(int), "subtype": latent["hr_her2"],
        **{k: latent[k] for k in ("age", "ktrans_mean", "ve_mean", "heterogeneity",
                                  "necrosis_fraction", "rim_enhancement", "irregularity",
                                  "longest_diameter_mm")}})


def test_the_drivers_are_the_terms_of_the_generators_law():
    assert list(LAW_DRIVERS) == list(LOGIT_TERMS)
    truth = law_drivers(_truth_like(400))
    # logit P(pCR) is exactly linear in the drivers plus a per-subtype intercept
    x = pd.concat([truth[list(LAW_DRIVERS)],
                   pd.get_dummies(truth[list(CLINICAL_COLUMNS)], dtype=float)], axis=1)
    target = logit(truth["true_probability"].to_numpy())
    coef, *_ = np.linalg.lstsq(x.to_numpy(dtype=float), target, rcond=None)
    assert np.abs(x.to_numpy(dtype=float) @ coef - target).max() < 1e-8


def _run(tmp_path, truth: pd.DataFrame) -> tuple[RunConfig, RunDir]:
    cohort = tmp_path / "synthetic"
    cohort.mkdir()
    truth.to_csv(cohort / "truth.csv", index=False)
    run = RunDir(tmp_path / "run")
    rng = np.random.default_rng(1)
    ids = pd.Index(truth["patient_id"], name="patient_id")
    rad = pd.DataFrame(rng.normal(size=(len(ids), 6)), index=ids,
                       columns=[f"rad__f{j}" for j in range(6)])
    rad["rad__ld"] = truth["longest_diameter_mm"].to_numpy() * 0.9  # a perfect size proxy
    run.folder("radiomics")
    run.write("radiomics", rad)
    run.folder("metrics")
    run.write("metrics", pd.DataFrame({
        "protocol": ["honest", "honest", "paper"], "feature_set": ["radiomics"] * 3,
        "classifier": ["lr"] * 3, "split": ["cv", "test", "cv"], "metric": ["auc"] * 3,
        "value": [0.7, 0.65, 0.95], "lo": [0.6, 0.5, 0.9], "hi": [0.8, 0.8, 1.0],
        "n": [56, 24, 56]}))
    return RunConfig(cohort={"format": "synthetic", "path": str(cohort)}), run


def test_a_synthetic_run_gets_the_truth_and_the_table_then_reuses_them(tmp_path, caplog):
    truth = _truth_like(N)
    cfg, run = _run(tmp_path, truth)
    with caplog.at_level(logging.INFO, logger="workbench.pipeline.diagnostics"):
        table = known_truth_stage(cfg, run)
    assert table is not None and table.attrs["cached"] is False
    assert run.exists("truth") and run.exists("known_truth") and run.exists("known_truth_key")
    assert run.path("truth").read_bytes() == (tmp_path / "synthetic" / "truth.csv").read_bytes()
    written = run.read("known_truth")
    assert set(written["kind"]) == {"oracle", "learnable_bound", "clinical_reference",
                                    "proxy", "proxy_block", "model"}
    size = written[(written["kind"] == "proxy") & (written["latent"] == "log_ld")].iloc[0]
    assert size["feature"] == "rad__ld" and size["abs_rho"] == pytest.approx(1.0)
    models = written[written["kind"] == "model"]
    assert list(models["split"]) == ["cv", "test"] and set(models["protocol"]) == {"honest"}
    assert any("known truth: oracle AUC" in r.getMessage() for r in caplog.records)
    lines = known_truth_lines(written)
    assert len(lines) == 2 and "radiomics / lr" in lines[1] and "of the learnable gap" in lines[1]

    again = known_truth_stage(cfg, run)
    assert again.attrs["cached"] is True
    pd.testing.assert_frame_equal(again, written)
    metrics = run.read("metrics").assign(value=[0.72, 0.65, 0.95])
    run.write("metrics", metrics)  # a changed input recomputes
    changed = known_truth_stage(cfg, run)
    assert changed.attrs["cached"] is False
    assert changed.loc[changed["kind"] == "model", "auc"].iloc[0] == pytest.approx(0.72)


def test_real_cohorts_and_cohorts_without_truth_get_no_diagnostics(tmp_path, caplog):
    run = RunDir(tmp_path / "run")
    real = RunConfig(cohort={"format": "manifest", "path": str(tmp_path / "m.csv")})
    with caplog.at_level(logging.INFO, logger="workbench.pipeline.diagnostics"):
        assert known_truth_stage(real, run) is None
        assert "real cohort has no true" in caplog.text
        bare = RunConfig(cohort={"format": "synthetic", "path": str(tmp_path / "empty")})
        assert known_truth_stage(bare, run) is None
        assert "no truth.csv" in caplog.text.replace(str(tmp_path / "empty") + "/", "")
    assert not run.root.exists()  # nothing written


def test_a_tiny_cohort_gets_fewer_folds_and_one_class_none(tmp_path):
    truth = _truth_like(12, seed=3)
    truth["pcr"] = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]  # 3 pCR: 3-fold CV
    cfg, run = _run(tmp_path, truth)
    table = known_truth_stage(cfg, run)
    bound = table[table["kind"] == "learnable_bound"].iloc[0]
    assert "stratified 3-fold CV x 10 repeats" in bound["detail"]
    (tmp_path / "synthetic" / "truth.csv").write_text(truth.assign(pcr=0).to_csv(index=False))
    assert known_truth_stage(cfg, run) is None
    assert not run.exists("known_truth") and not run.exists("truth")  # no stale table kept


def test_a_truth_table_without_the_laws_columns_is_refused():
    from workbench.evaluation.truth import TruthError

    with pytest.raises(TruthError, match=r"lacks \['irregularity'\]"):
        law_drivers(_truth_like(10).drop(columns="irregularity"))
