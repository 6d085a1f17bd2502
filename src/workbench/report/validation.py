"""The standalone HTML report of one external validation (``workbench validate``).

:func:`build_validation_report` reads a validation folder
(:class:`~workbench.rundata.ValidationData`; files of :data:`~workbench.rundir.VALIDATION_FILES`)
and writes one page, Bokeh inline (works offline), on the run report's
:class:`~workbench.report.page.Page`:

1. the protocol of every number (what the model was fitted on, that these are external
   estimates, that the recalibrated variants are fitted on the external cohort itself and so
   optimistic for it), the model and the cohorts;
2. the warnings, prominently (predict-only first);
3. the headline: AUC with DeLong and bootstrap CIs, CITL and slope with CIs, Brier, O/E, and
   the generator's truth for a synthetic cohort;
4. the figures: ROC, reliability diagram (original vs recalibrated), decision curves;
5. threshold metrics at the stored threshold, the recalibration table (before / after);
6. transportability: the case mix sorted by |SMD| (imbalance flagged) with its dot plot, the
   membership model and its top separating features, the feature coverage (imputed features
   flagged).

A section that fails becomes a note; nothing here refits anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from workbench.evaluation import validation_display as D
from workbench.plots.validation import (
    case_mix_smd,
    validation_decision_curves,
    validation_histogram,
    validation_reliability,
    validation_roc,
)
from workbench.report.page import Page, escape
from workbench.rundata import ValidationData

log = logging.getLogger(__name__)

__all__ = ["build_validation_report"]


def _header(page: Page, val: ValidationData) -> None:
    summary = val.summary
    page.para(D.protocol_statement(summary))
    page.add('<dl class="prov">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>"
                                           for k, v in D.provenance_items(summary)) + "</dl>")
    skipped = summary.get("skipped") or []
    if skipped:
        page.add("<p>Skipped:</p><ul>" + "".join(f"<li>{escape(s)}</li>" for s in skipped)
                 + "</ul>")
    shown, total = D.problems(summary)
    if total:
        page.add(f"<details><summary>Problems recorded while scoring the cohort ({total}"
                 f"{'; first ' + str(len(shown)) if total > len(shown) else ''})</summary><ul>"
                 + "".join(f"<li>{escape(s)}</li>" for s in shown) + "</ul></details>")


def _headline(page: Page, val: ValidationData) -> None:
    summary = val.summary
    if not val.labelled:
        page.note("predict-only: no labels — no performance estimate exists for this cohort.")
        if val.has("predictions"):
            page.figure(validation_histogram(val.load("predictions")),
                        caption="What the model predicts for this cohort.")
        return
    page.table(D.headline_rows(summary, val.table("metrics")))
    page.note("Original model as saved, on every labelled external patient. CITL: "
              "calibration-in-the-large, logit(p) as offset (< 0: the model over-predicts "
              "pCR); slope < 1: predictions too extreme. O/E: observed over expected pCR.")
    if (truth := D.truth_line(summary)) is not None:
        page.add(f'<p class="weights">{escape(truth)}</p>')


def _figures(page: Page, val: ValidationData) -> None:
    if not val.labelled:
        page.note("predict-only: no labels — no ROC, calibration or decision curve.")
        return
    threshold = (val.summary.get("model") or {}).get("threshold")
    page.figure(validation_roc(val.load("predictions")),
                caption="Recalibration is monotone: this ROC is every variant's.")
    page.figure(validation_reliability(val.load("reliability")),
                caption="Observed pCR rate per bin with its Wilson 95% CI. The recalibrated "
                        "variants are fitted on these patients: their closeness to the "
                        "diagonal is optimistic.")
    page.figure(validation_decision_curves(val.load("decision_curve"), threshold=threshold),
                caption="Net benefit against the threshold probability; dotted-dashed line: "
                        "the model's stored threshold.")


def _thresholds(page: Page, val: ValidationData) -> None:
    if not val.has("thresholds"):
        page.note("predict-only: no labels — no threshold metrics." if not val.labelled
                  else "no threshold metrics recorded (thresholds.csv empty or absent).")
        return
    model = val.summary.get("model") or {}
    t = val.load("thresholds")
    thr = float(t["threshold"].iloc[0]) if "threshold" in t else model.get("threshold")
    page.para(f"At the model's stored threshold {D.fmt_num(thr)} "
              f"({model.get('threshold_rule') or 'rule not recorded'}); p ≥ threshold "
              "predicts pCR. 95% percentile bootstrap CIs.")
    page.table(D.threshold_rows(t))


def _recalibration(page: Page, val: ValidationData) -> None:
    if not val.has("metrics"):
        page.note("predict-only: no labels — nothing to recalibrate on.")
        return
    recal = val.summary.get("recalibration") or {}
    page.warning("The recalibrated variants are fitted on the external cohort itself and "
                 "evaluated on the same patients: optimistic for this cohort.")
    page.table(D.recalibration_rows(val.summary, val.load("metrics")))
    if recal.get("note"):
        page.note(f"Recalibration: {recal['note']}")


def _transport(page: Page, val: ValidationData) -> None:
    summary = val.summary
    page.heading("Case mix: development vs external", 3)
    if val.has("case_mix"):
        case_mix = val.load("case_mix")
        first = case_mix.iloc[0]
        page.para(f"Development n={first.get('n_development', '?')}, external "
                  f"n={first.get('n_external', '?')}; sorted by |standardised difference|, "
                  f"|SMD| ≥ {D.SMD_FLAG:g} flagged.")
        page.table(D.case_mix_rows(case_mix))
        page.figure(case_mix_smd(case_mix))
    else:
        page.note("not in this validation: " + (val.missing("case_mix") or "")
                  if summary.get("development") else
                  f"not in this validation: {D.development_missing(summary)}")
    page.heading("Membership model", 3)
    page.para(D.membership_line(summary))
    if val.has("membership"):
        page.table(D.membership_rows(val.load("membership")))
    page.heading("Feature coverage", 3)
    if val.has("coverage"):
        page.para("Per model input over the scored patients; an imputed feature carries the "
                  "training value for those patients (flagged).")
        page.table(D.coverage_rows(val.load("coverage")))
    else:
        page.note(f"not in this validation: {val.missing('coverage')}")


#: ``(heading, build)`` of every section, in page order.
SECTIONS: list[tuple[str, Callable[[Page, ValidationData], None]]] = [
    ("Headline — external performance of the original model", _headline),
    ("Discrimination, calibration, clinical utility", _figures),
    ("Threshold metrics", _thresholds),
    ("Recalibration: before and after", _recalibration),
    ("Transportability", _transport),
]


def build_validation_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the standalone HTML report of one external-validation folder.

    Parameters
    ----------
    folder
        The folder ``workbench validate --out`` wrote (or ``<run>/validation/<name>``).
    out
        Output file (default ``<folder>/report.html``); parent folders are created.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    workbench.rundir.RunDataError
        The folder has no ``summary.json``.
    """
    started = time.perf_counter()
    val = ValidationData(folder)
    summary = val.summary
    model = summary.get("model") or {}
    title = (f"External validation — {val.name}: {model.get('feature_set', '?')} / "
             f"{model.get('classifier', '?')} on {(summary.get('cohort') or {}).get('name', '?')}")
    page = Page(None)
    page.add(f"<h1>{escape(title)}</h1>")
    page.section("What these numbers are", lambda: _header(page, val))
    alerts = D.alerts(summary)
    if alerts:
        page.heading("Warnings")
        for text in alerts:
            page.warning(text)
    for heading, build in SECTIONS:
        page.section(heading, lambda build=build: build(page, val))
    path = Path(out) if out else val.path("report")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page.render(title), encoding="utf-8")
    log.info("validation report written to %s (%d figures, %.1f s)", path, len(page.figures),
             time.perf_counter() - started)
    return path
