"""The report's known-truth section: shown with ``diagnostics/known_truth.csv`` (synthetic
cohorts), absent without it."""

from __future__ import annotations

import html
import shutil

from fixtures.known_truth import LATENTS, add_known_truth
from workbench.report import build_report
from workbench.report.sections import SHOWN_ONLY_WITH

HEADING = "Known truth (synthetic cohort)"


def test_known_truth_section_only_when_the_run_has_it(run_dir, tmp_path):
    assert SHOWN_ONLY_WITH[HEADING] == "known_truth"
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report*"))
    without = build_report(run, tmp_path / "without.html").read_text(encoding="utf-8")
    assert html.escape(HEADING) not in without

    copied = add_known_truth(run)
    text = build_report(run, tmp_path / "with.html").read_text(encoding="utf-8")
    section = text[text.index(html.escape(HEADING)):text.index("IBSI conformance</h2>")]
    assert "could not build" not in section and "not in this run" not in section
    for part in ("Oracle: true probability", "Learnable bound", "Clinical reference",
                 "Latent drivers and their closest features", "share of the learnable gap",
                 "CV gap closed", copied, *LATENTS):
        assert html.escape(part) in section, part
