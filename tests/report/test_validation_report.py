"""The external-validation report (``workbench validate``'s report.html), its reader and its
figures, on the folders of :mod:`fixtures.validation_folder`: labelled with a development
cohort and a known truth, predict-only, and without a development cohort."""

from __future__ import annotations

import html
import json
import re
import shutil
import time

import holoviews as hv
import pytest

from fixtures.validation_folder import INJECTION, write_validation_folder
from workbench.evaluation import validation_display as D
from workbench.plots.validation import (
    case_mix_smd,
    validation_decision_curves,
    validation_histogram,
    validation_reliability,
    validation_roc,
)
from workbench.report.validation import build_validation_report
from workbench.rundata import RunDataError, ValidationData


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    return {"full": write_validation_folder(root / "full"),
            "predict_only": write_validation_folder(root / "predict_only", labelled=False),
            "no_development": write_validation_folder(root / "no_development",
                                                      with_development=False,
                                                      with_truth=False)}


@pytest.fixture(scope="module")
def pages(folders):
    return {k: build_validation_report(f).read_text(encoding="utf-8")
            for k, f in folders.items()}


def _summary(folder) -> dict:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def _body(page: str) -> str:
    return page[page.rindex("<body>"):]


def test_report_is_standalone_and_complete(folders, pages):
    page = pages["full"]
    assert (folders["full"] / "report.html").is_file()  # the default place
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\ssrc=", page)  # BokehJS inline, nothing fetched
    assert not re.search(r"<link[^>]*\shref=", page)
    body = _body(page)
    assert "could not build" not in body and "could not draw" not in body
    for heading in ("What these numbers are", "Warnings", "Headline", "Threshold metrics",
                    "Recalibration: before and after", "Transportability",
                    "Case mix: development vs external", "Membership model",
                    "Feature coverage"):
        assert html.escape(heading) in body, heading
    assert body.count("<figure>") == 4  # ROC, reliability, decision curves, case mix


def test_report_states_the_protocol_and_the_headline_numbers(folders, pages):
    body, summary = _body(pages["full"]), _summary(folders["full"])
    head, model = summary["headline"], summary["model"]
    assert html.escape(model["fitted_on"]) in body
    assert f"Problems recorded while scoring the cohort ({len(summary['problems'])})" in body
    assert "every number here is an external estimate" in body
    assert "fitted on this external cohort itself" in body
    for key in ("auc", "citl", "slope"):
        text = D.ci_text(head[key], head[f"{key}_low"], head[f"{key}_high"])
        assert html.escape(text) in body, (key, text)
    assert f"{head['brier']:.3f}" in body
    assert "DeLong" in body and "bootstrap percentile" in body  # both AUC intervals
    assert "O/E" in body and "AUC in development (for comparison)" in body
    truth = summary["truth"]
    assert f"true CITL {D.fmt_num(truth['citl'])}" in body
    assert f"true calibration slope {D.fmt_num(truth['slope'])}" in body


def test_warnings_are_prominent_and_escaped(folders, pages):
    body, summary = _body(pages["full"]), _summary(folders["full"])
    warnings = re.findall(r'<div class="warning"><strong>⚠</strong> (.*?)</div>', body)
    for text in summary["warnings"]:
        assert html.escape(text) in warnings
    assert INJECTION not in body and html.escape(INJECTION) in body


def test_transportability_tables(folders, pages):
    body = _body(pages["full"])
    val = ValidationData(folders["full"])
    rows = D.case_mix_rows(val.load("case_mix"))
    smd = [abs(float(v.replace("−", "-"))) for v in rows["SMD"]]
    assert smd == sorted(smd, reverse=True)  # largest imbalance first
    assert (rows["Flag"] != "").sum() == sum(s >= D.SMD_FLAG for s in
                                             val.load("case_mix")["smd"].abs())
    assert html.escape(f"⚠ |SMD| ≥ {D.SMD_FLAG:g}") in body
    top = val.load("membership").sort_values("abs_coefficient").iloc[-1]["feature"]
    assert html.escape(str(top)) in body and "Membership model (can a classifier" in body
    coverage = D.coverage_rows(val.load("coverage"))
    assert coverage["Status"].iloc[0] == "unmappable"  # problems first
    assert "⚠ imputed for 12" in set(coverage["Flag"]) and "⚠ imputed for 12" in body


def test_predict_only_report(pages, folders, tmp_path):
    body = _body(pages["predict_only"])
    assert "Predict-only: no labels" in body and "predict-only: no labels" in body
    assert "AUC (DeLong CI)" not in body and "Calibration slope" not in body
    assert "could not build" not in body and "could not draw" not in body
    assert body.count("<figure>") == 2  # the histogram of predictions and the case mix
    assert "Membership model (can a classifier" in body  # case mix needs no labels
    assert not ValidationData(folders["predict_only"]).labelled
    # the performance tables may also be absent rather than empty
    bare = shutil.copytree(folders["predict_only"], tmp_path / "bare")
    for name in ("metrics", "thresholds", "reliability", "decision_curve"):
        (bare / f"{name}.csv").unlink()
    again = _body(build_validation_report(bare).read_text(encoding="utf-8"))
    assert "predict-only: no labels" in again and again.count("<figure>") == 2
    assert "could not build" not in again and "could not draw" not in again


def test_no_development_report(pages, folders):
    body, summary = _body(pages["no_development"]), _summary(folders["no_development"])
    reason = summary["membership"]["skipped"]
    assert html.escape(reason) in body and "Membership model: skipped" in body
    assert "⚠ |SMD|" not in body and "Known truth" not in body
    assert "could not build" not in body and "could not draw" not in body
    assert body.count("<figure>") == 3  # no case-mix plot
    assert "AUC (DeLong CI)" in body


def test_reader_and_formatting(folders, tmp_path):
    val = ValidationData(folders["predict_only"])
    assert val.missing("metrics") == "metrics.csv holds no rows"
    assert val.missing("case_mix") is None and val.name == "external-site"
    assert val.load("predictions")["patient_id"].iloc[0] == "EXT0001"
    with pytest.raises(RunDataError, match="unknown validation file"):
        val.load("nope")
    with pytest.raises(RunDataError, match="summary.json not found"):
        ValidationData(tmp_path)
    assert D.ci_text(-0.8, -1.09, -0.51) == "−0.80 (−1.09 to −0.51)"
    assert D.ci_text(0.72, 0.66, 0.79) == "0.72 (0.66–0.79)"
    assert D.fmt_num(-0.001) == "0.00" and D.ci_text(float("nan"), 0, 1) == "n/a"
    assert "not estimable" in D.membership_line({"membership": {"auc": float("nan")}})


def test_figures_render(folders):
    val = ValidationData(folders["full"])
    figures = [validation_reliability(val.load("reliability")),
               validation_decision_curves(val.load("decision_curve"), threshold=0.31),
               validation_roc(val.load("predictions")), case_mix_smd(val.load("case_mix")),
               validation_histogram(val.load("predictions"))]
    for fig in figures:
        hv.render(fig, backend="bokeh")
    roc = hv.render(figures[2], backend="bokeh")
    auc = _summary(folders["full"])["headline"]["auc"]
    assert f"AUC {auc:.2f}" in " ".join(i.label["value"] for i in roc.legend[0].items)


def test_report_of_1000_patients_renders_in_seconds(tmp_path):
    folder = write_validation_folder(tmp_path / "big", n=1000, n_boot=50)
    started = time.perf_counter()
    build_validation_report(folder, tmp_path / "out" / "big.html")
    seconds = time.perf_counter() - started
    assert (tmp_path / "out" / "big.html").is_file()
    assert seconds < 20, f"the 1,000-patient report took {seconds:.1f} s (measured ~2 s)"
