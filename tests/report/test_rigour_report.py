"""The report's "Radiomics rigour" part: each section shown with its files and gone without
them, with the numbers, the protocol beside every AUC and the whole-cohort ComBat leak named;
and the rigour figures render (no tests/plots folder: figures are tested here)."""

from __future__ import annotations

import html
import shutil

import holoviews as hv
import pytest
from bokeh.models import Span

from fixtures.rigour_tables import (
    LEAKY_PCR_TEST_AUC,
    NULL_MEAN_LEAKY_PCR_TEST,
    PERTURBATION_NAMES,
    REAL_TEXTURE_TEST_AUC,
    SHUFFLED_TEXTURE_TEST_AUC,
    add_rigour,
    rigour_tables,
)
from workbench.evaluation.rigour_display import robust_count_rows
from workbench.features.robustness import feature_family
from workbench.pipeline.stages import REPORT_INPUTS
from workbench.plots import rigour as P
from workbench.report import build_report
from workbench.report.rigour import RIGOUR_PART, RIGOUR_SECTIONS

HEADINGS = {kind: heading for kind, (heading, _, _) in
            zip(("controls", "robustness", "harmonisation"), RIGOUR_SECTIONS, strict=True)}


def _run(run_dir, tmp_path, name="run"):
    run = tmp_path / name
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report*"))
    return run


def _part(text: str) -> str:
    start = text.index(f">{html.escape(RIGOUR_PART)}</h2>")
    return text[start:text.index("Full provenance</h2>")]


def test_every_rigour_file_is_in_the_report_cache_key():
    for _, _, files in RIGOUR_SECTIONS:
        assert set(files) <= set(REPORT_INPUTS), files


def test_rigour_part_absent_without_its_files(run_dir, tmp_path):
    run = _run(run_dir, tmp_path)
    text = build_report(run, tmp_path / "none.html").read_text(encoding="utf-8")
    assert html.escape(RIGOUR_PART) not in text
    for heading in HEADINGS.values():
        assert html.escape(heading) not in text


def test_rigour_sections_with_their_numbers(run_dir, tmp_path):
    run = _run(run_dir, tmp_path)
    tables = add_rigour(run)
    part = _part(build_report(run, tmp_path / "all.html").read_text(encoding="utf-8"))
    assert "could not build" not in part and "could not draw" not in part
    for heading in HEADINGS.values():
        assert html.escape(heading) in part, heading
    # negative controls: numbers, protocol, the explanation
    for number in (SHUFFLED_TEXTURE_TEST_AUC, REAL_TEXTURE_TEST_AUC):
        assert f"{number:.2f}" in part
    assert "honest protocol" in part
    assert "Shape features keep their AUC under shuffled, random and moved" in part
    assert "first-order features keep their AUC there" in part
    assert "scores about 0.5 on shuffled and random reads the spatial pattern" in part
    # robustness: perturbation set, counts per threshold, selected robust
    for name in PERTURBATION_NAMES:
        assert html.escape(name) in part
    assert "ICC ≥ 0.75" in part and "ICC ≥ 0.9" in part
    counts = robust_count_rows(tables["robust_counts"])
    assert list(counts["family"]) == ["all", "firstorder", "glcm", "shape"]
    for cell in counts.drop(columns="family").to_numpy().ravel():
        assert html.escape(cell) in part, cell
    assert "2 / 3" in part and "1 / 3" in part  # of the 3 selected: 2 at 0.75, 1 at 0.9
    # harmonisation: AUC, null mean, the leak
    assert f"{LEAKY_PCR_TEST_AUC:.2f}" in part and f"{NULL_MEAN_LEAKY_PCR_TEST:.2f} ± 0.04" in part
    assert "honest + ComBat on the whole cohort (LEAKY)" in part
    assert "LEAKY BY DESIGN" in part


@pytest.mark.parametrize("kind", ["controls", "robustness", "harmonisation"])
def test_each_rigour_section_alone(run_dir, tmp_path, kind):
    run = _run(run_dir, tmp_path, kind)
    add_rigour(run, kinds=(kind,))
    part = _part(build_report(run, tmp_path / f"{kind}.html").read_text(encoding="utf-8"))
    assert "could not build" not in part
    for other, heading in HEADINGS.items():
        assert (html.escape(heading) in part) == (other == kind), other


# --------------------------------------------------------------------------- figures
def _render(obj):
    return hv.render(obj, backend="bokeh")


def test_control_chart_per_family_with_chance_line():
    t = rigour_tables(("controls",))
    grid = _render(P.control_auc_chart(t["control_auc"], protocol="honest"))
    figs = [child[0] for child in grid.children]
    assert len(figs) == 4
    titles = [f.title.text.replace("\n", " ") for f in figs]
    assert [next(w for w in ("first_order", "texture", "shape", "volume") if w in x)
            for x in titles] == ["first_order", "texture", "shape", "volume"]
    assert all("honest protocol" in x for x in titles)
    for fig in figs:
        assert any(isinstance(r, Span) and r.location == 0.5 for r in fig.center + fig.renderers)


def test_icc_histogram_marks_thresholds_and_selected():
    t = rigour_tables(("robustness",))
    fig = _render(P.icc_histogram(t["icc"], t["robust_selected"]))
    assert {r.location for r in fig.center + fig.renderers if isinstance(r, Span)} == {0.75, 0.9}
    labels = [item.label.value for legend in fig.legend for item in legend.items]
    assert "selected (3)" in labels and any(x.startswith("glcm") for x in labels)


def test_harmonisation_chart_marks_leaky_variants():
    t = rigour_tables(("harmonisation",))
    fig = _render(P.harmonisation_auc_chart(t["harmonisation_auc"]))
    ticks = fig.xaxis[0].major_label_overrides
    assert "combat_whole_cohort_pcr (LEAKY)" in ticks.values()
    assert "combat_in_fold" in ticks.values()
    assert "honest" in fig.title.text
    boxes = P.site_feature_boxes(t["site_features"])
    assert len(boxes) == 2  # one panel per feature
    _render(boxes)


def test_radiomics_family_matches_the_feature_code():
    names = ["rad__t1__original_glcm_Contrast", "rad__dce_0__wavelet-LLH_firstorder_Mean",
             "rad__t1__log-sigma-2-0-mm-3D_gldm_X", "kin__ktrans", "clin__age"]
    assert [P.radiomics_family(n) for n in names] == [feature_family(n) for n in names]
