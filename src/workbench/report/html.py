"""One standalone HTML report of a run directory (Bokeh JS/CSS inline: works offline).

:func:`build_report` reads the run through :class:`~workbench.rundata.RunData` and writes
provenance, Table 1, the selection funnel, Table 2 per protocol, the ablation table
(Table S2), ROC, decision curves, calibration, signature boxplots, SHAP, the null audit, the
IBSI result, the radiomics-rigour part (:mod:`.rigour`, when the run holds its files) and the
full manifest. The sections are built in :mod:`.sections` onto the page of
:mod:`.page`, which escapes every text and turns a failing section or figure into a note.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from workbench.names import LEAKAGE_WARNING
from workbench.report.page import Page, escape
from workbench.report.rigour import add_rigour
from workbench.report.sections import SECTIONS, SHOWN_ONLY_WITH
from workbench.rundata import RunData

log = logging.getLogger(__name__)

__all__ = ["build_report"]


def build_report(run_dir: str | Path, out_html: str | Path | None = None, *,
                 title: str | None = None) -> Path:
    """Write one standalone HTML report of a run directory.

    Parameters
    ----------
    run_dir
        The run directory (``data/runs/<name>``).
    out_html
        Output file (default ``<run_dir>/report.html``); parent folders are created.
    title
        Page title (default from the config name).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    workbench.rundir.RunDataError
        The run directory, its manifest or its model tables are missing.
    """
    run = RunData(run_dir)
    for required in ("manifest", "metrics", "predictions"):
        run.load(required)  # fail early, naming the file, when the run is incomplete
    name = (run.manifest.get("config") or {}).get("name") or run.run_dir.name
    title = title or f"pCR fusion workbench — run report: {name}"
    page = Page(run.weights_label)
    page.add(f"<h1>{escape(title)}</h1>")
    if "paper" in run.protocols:
        page.warning("This run includes the study's paper protocol. " + LEAKAGE_WARNING)
    if run.weights_label and "RANDOM" in run.weights_label:
        page.warning(f"Deep features: {run.weights_label}")
    if run.weights_label and "fine-tuned" in run.weights_label:
        page.warning("Deep features were fine-tuned on the pCR labels of the training split: "
                     "the honest protocol's cross-validation estimates of feature sets with "
                     "deep features are not reported (every fold's evaluation patients shaped "
                     "their features; reason in models/metrics.parquet), its test estimates "
                     "are (test patients took no part in tuning), and the null audit refuses "
                     "those sets.")
    for heading, build in SECTIONS:
        if heading in SHOWN_ONLY_WITH and not run.has(SHOWN_ONLY_WITH[heading]):
            continue
        page.section(heading, lambda build=build: build(page, run))
    add_rigour(page, run)  # negative controls, robustness, harmonisation: when present
    page.heading("Full provenance")
    page.note("run_manifest.json as written by the run that built this report. A later run "
              "that changed nothing this report shows keeps the report, so the creation "
              "time, command line, git commit, stage timings and cache counts here are that "
              "run's.")
    page.add("<details><summary>run_manifest.json</summary><pre>"
             f"{escape(json.dumps(run.manifest, indent=2, default=str))}</pre></details>")
    out = Path(out_html) if out_html else run.run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.render(title), encoding="utf-8")
    log.info("report written to %s (%d figures)", out, len(page.figures))
    return out
