"""The standalone HTML report and the RunData reader, on the small run of conftest.py."""

from __future__ import annotations

import html
import json
import re
import shutil

import pandas as pd
import pytest

from workbench.names import LEAKAGE_WARNING
from workbench.report import ablation_table, build_report, table2
from workbench.rundata import RunData, RunDataError


@pytest.fixture(scope="module")
def report_html(run_dir, tmp_path_factory) -> str:
    out = build_report(run_dir, tmp_path_factory.mktemp("report") / "sub" / "report.html")
    assert out.is_file()
    return out.read_text(encoding="utf-8")


def test_report_is_standalone(report_html):
    assert report_html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\ssrc=", report_html)  # BokehJS inline, nothing fetched
    assert not re.search(r"<link[^>]*\shref=", report_html)
    assert "Bokeh.embed" in report_html or "embed_items" in report_html


def test_report_has_every_section_and_figure(report_html):
    for heading in ("Provenance", "Table 1 — cohort characteristics",
                    "Table 2 — test split, honest protocol",
                    "Table 2 — test split, paper protocol", "Table S2", "ROC curves",
                    "Clinical utility", "Signatures", "SHAP", "Null audit",
                    "IBSI conformance", "Full provenance"):
        assert html.escape(heading) in report_html, heading
    assert "could not build" not in report_html and "could not draw" not in report_html
    assert "not in this run" not in report_html  # the fixture run has every part
    figures = report_html.count("data-root-id=")
    assert figures >= 20
    assert "<details><summary>run_manifest.json</summary>" in report_html


def test_report_states_warnings_weights_and_ibsi(report_html, run_facts):
    assert html.escape(LEAKAGE_WARNING) in report_html
    assert html.escape(run_facts["weights_label"]) in report_html
    assert html.escape(run_facts["ibsi_line"]) in report_html
    assert "Git commit" in report_html and "Seed" in report_html


def test_report_escapes_patient_ids(report_html, run_facts):
    bad = run_facts["malicious_id"]
    assert bad not in report_html
    assert html.escape(bad) in report_html  # shown, as text, in the cohort problems table
    assert "mask &lt;b&gt;touches&lt;/b&gt; the border" in report_html


def test_report_notes_missing_optional_parts(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("audit", "ibsi"))
    pd.DataFrame().to_parquet(run / "models" / "shap.parquet")
    manifest = json.loads((run / "run_manifest.json").read_text())
    manifest.update(deep_weights=None, audit=None, ibsi=None)
    (run / "run_manifest.json").write_text(json.dumps(manifest))
    (run / "features" / "deep_weights.json").unlink()
    text = build_report(run).read_text(encoding="utf-8")
    assert (run / "report.html").is_file()
    assert "not in this run: models/shap.parquet is empty" in text
    assert "not in this run: audit/null_audit.parquet not found" in text
    assert "IBSI check: not in this run" in text
    assert "weights not recorded" in text  # resnet50 was modelled, its weights unknown
    assert "could not build" not in text


def test_rundata_names_the_missing_file(tmp_path):
    with pytest.raises(RunDataError, match="run directory not found"):
        RunData(tmp_path / "nope")
    run = RunData(tmp_path)
    with pytest.raises(RunDataError, match=r"models/predictions\.parquet not found.*models "
                                           r"stage"):
        _ = run.predictions
    assert run.missing("audit") == "audit/null_audit.parquet not found (written by the " \
                                   "audit stage)"
    with pytest.raises(RunDataError, match="unknown run file"):
        run.load("nonsense")
    with pytest.raises(RunDataError, match="run_manifest.json not found"):
        build_report(tmp_path)


def test_rundata_reads_each_file_once(run_dir):
    run = RunData(run_dir)
    assert run.metrics is run.metrics
    assert run.protocols == ["honest", "paper"]
    assert run.labels.dtype.kind == "i" and run.labels.index.is_unique
    assert run.load("skipped").empty or isinstance(run.load("skipped"), pd.DataFrame)


def test_table2_and_ablation_layout(run_dir):
    metrics = RunData(run_dir).metrics
    t2 = table2(metrics, "honest")
    assert list(t2.columns) == ["Feature set", "Classifier", "n (pCR)", "AUC (95% CI)",
                                "Accuracy", "Sensitivity", "Specificity", "Precision", "F1"]
    assert len(t2) == 6
    assert all(re.fullmatch(r"\d\.\d\d \(\d\.\d\d–\d\.\d\d\)", c) for c in t2["AUC (95% CI)"])
    s2 = ablation_table(metrics, "paper")
    assert list(s2["Feature set"]) == ["radiomics", "resnet50"]  # clinical is no ablation row
    assert list(s2.columns) == ["Feature set", "Logistic regression", "Random forest"]
