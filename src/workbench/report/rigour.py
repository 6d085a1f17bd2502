"""The report's "Radiomics rigour" part: negative controls, perturbation robustness and ComBat
harmonisation, each a section shown only when the run holds its files.

:func:`add_rigour` appends the part to a :class:`~workbench.report.page.Page`;
:data:`RIGOUR_SECTIONS` lists the sections with the run files that make each appear. The
tables and texts come from :mod:`workbench.evaluation.rigour_display` (the dashboard shows the
same), the figures from :mod:`workbench.plots.rigour`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from workbench.evaluation.rigour_display import (
    CONTROLS_TEXT,
    HARMONISATION_LEAK,
    HARMONISATION_TEXT,
    ROBUSTNESS_TEXT,
    control_rows,
    harmonisation_rows,
    perturbation_rows,
    robust_count_rows,
    selected_robust_rows,
)
from workbench.plots.rigour import (
    control_auc_chart,
    harmonisation_auc_chart,
    icc_histogram,
    site_feature_boxes,
)
from workbench.report.page import Page
from workbench.rundata import RunData

log = logging.getLogger(__name__)

__all__ = ["RIGOUR_PART", "RIGOUR_SECTIONS", "add_rigour", "present_sections"]

RIGOUR_PART = "Radiomics rigour"


def _controls(page: Page, run: RunData) -> None:
    summary = run.load("controls_summary") if run.has("controls_summary") else {}
    protocol = str(summary.get("protocol") or "honest")
    page.para(CONTROLS_TEXT)
    if summary:
        page.para(f"{summary.get('patients', '?')} patients ({summary.get('pcr', '?')} pCR), "
                  f"phases {', '.join(map(str, summary.get('phases') or [])) or '?'}, "
                  f"{protocol} protocol with the study's selection chain and "
                  f"{summary.get('classifier', '?')}; seed {summary.get('seed', '?')}; "
                  f"{summary.get('seconds', '?')} s.")
    if (why := run.missing("control_auc")) is not None:
        page.note(f"not in this run: {why}")
        return
    auc = run.load("control_auc")
    page.table(control_rows(auc, protocol))
    page.figure(control_auc_chart(auc, protocol=protocol),
                caption=f"AUC (DeLong 95% CI) under the {protocol} protocol; dashed: chance.")


def _robustness(page: Page, run: RunData) -> None:
    summary = run.load("robustness_summary") if run.has("robustness_summary") else {}
    thresholds = summary.get("thresholds") or [0.75, 0.9]
    page.para(ROBUSTNESS_TEXT)
    if summary:
        page.para(f"{summary.get('patients_used', '?')} of {summary.get('patients_sampled', '?')}"
                  f" sampled patients used, {len(summary.get('copies') or [])} copies (the "
                  f"original and each perturbation), reference phase "
                  f"{summary.get('reference_phase', '?')}, seed {summary.get('seed', '?')}, "
                  f"{summary.get('features', '?')} features; {summary.get('seconds', '?')} s.")
        page.heading("Perturbation set", 3)
        page.table(perturbation_rows(summary))
    if run.has("robust_counts"):
        page.heading("Robust features per threshold and family", 3)
        page.table(robust_count_rows(run.load("robust_counts")))
    selected = run.load("robust_selected") if run.has("robust_selected") else None
    if selected is not None:
        page.heading("How many of the selected features are robust", 3)
        page.table(selected_robust_rows(selected, thresholds))
    if (why := run.missing("icc")) is not None:
        page.note(f"not in this run: {why}")
        return
    page.figure(icc_histogram(run.load("icc"), selected, thresholds=thresholds),
                caption="ICC(3,1) of every radiomics feature; ticks: the features the final "
                        "models selected.")


def _harmonisation(page: Page, run: RunData) -> None:
    page.para(HARMONISATION_TEXT)
    page.warning(HARMONISATION_LEAK)
    if run.has("harmonisation_auc"):
        auc = run.load("harmonisation_auc")
        page.table(harmonisation_rows(auc))
        page.figure(harmonisation_auc_chart(auc),
                    caption="AUC (DeLong 95% CI) per variant; grey: mean ± SD of the null "
                            "audit (permuted labels).")
    else:
        page.note(f"not in this run: {run.missing('harmonisation_auc')}")
    if run.has("site_features"):
        page.figure(site_feature_boxes(run.load("site_features")),
                    caption="The features most affected by site (largest standardised mean "
                            "difference before ComBat), per site, before and after ComBat "
                            "fitted on the whole cohort: a picture of what ComBat does, not "
                            "an estimate.")


#: ``(heading, build, files)`` of every section, in page order; a section appears when the
#: run holds at least one of its files.
RIGOUR_SECTIONS: list[tuple[str, Callable[[Page, RunData], None], tuple[str, ...]]] = [
    ("Negative controls: does the signature need the tumour?", _controls,
     ("control_auc", "controls_summary")),
    ("Robustness to perturbation (ICC)", _robustness,
     ("icc", "robust_counts", "robust_selected", "robustness_summary")),
    ("Harmonisation across sites (ComBat)", _harmonisation,
     ("harmonisation_auc", "harmonisation_audit", "site_features")),
]


def present_sections(run: RunData) -> list[str]:
    """Headings of the rigour sections whose files the run holds."""
    return [heading for heading, _, files in RIGOUR_SECTIONS
            if any(run.exists(name) for name in files)]


def add_rigour(page: Page, run: RunData) -> None:
    """The "Radiomics rigour" part: nothing when the run holds none of its files; else a
    heading and each present section (a failing one becomes a note)."""
    shown = present_sections(run)
    if not shown:
        return
    page.heading(RIGOUR_PART)
    page.para("Three checks of the radiomics themselves, run after modelling: negative "
              "controls, robustness to perturbation and harmonisation across sites. Every "
              "AUC states the protocol it was estimated under.")
    for heading, build, _ in RIGOUR_SECTIONS:
        if heading not in shown:
            continue
        page.heading(heading, 3)
        try:
            build(page, run)
        except Exception as exc:  # one broken section must not lose the whole report
            log.warning("report section %r failed: %s", heading, exc)
            log.debug("report section %r: the traceback", heading, exc_info=True)
            page.note(f"could not build this section: {type(exc).__name__}: {exc}")
