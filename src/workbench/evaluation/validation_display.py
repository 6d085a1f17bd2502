"""An external validation (``workbench validate``) as the report and the dashboard show it:
lines and small frames of formatted strings, pure pandas, from ``summary.json`` (a dict) and
the folder's tables (DataFrames; see :data:`workbench.rundir.VALIDATION_FILES`).

* :func:`protocol_statement` / :func:`provenance_items` — what every number is: the model's
  training data, external estimates, recalibration fitted on the external cohort itself.
* :func:`alerts` — the warnings to show prominently (predict-only, the model's warning, the
  validation's warnings); :func:`problems` — what went wrong while scoring the cohort.
* :func:`headline_rows` — AUC (DeLong and bootstrap CIs), CITL, slope, Brier, O/E, rates.
* :func:`truth_line` — the generator's true CITL and slope against the estimates.
* :func:`threshold_rows`, :func:`recalibration_rows` — threshold metrics per variant; the
  variants before / after recalibration.
* :func:`case_mix_rows`, :func:`membership_line`, :func:`membership_rows`,
  :func:`coverage_rows` — transportability: case mix sorted by |SMD|, the membership model,
  feature coverage with imputed features flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SMD_FLAG", "VARIANT_LABELS", "alerts", "case_mix_rows", "ci_text",
           "coverage_rows", "development_missing", "fmt_num", "headline_rows", "label_of",
           "membership_line", "membership_rows", "problems", "protocol_statement",
           "provenance_items", "recalibration_rows", "threshold_rows", "truth_line"]

#: Display names of the variants of the validation tables.
VARIANT_LABELS: dict[str, str] = {
    "original": "original (as saved)",
    "recalibrated_intercept": "recalibrated: intercept",
    "recalibrated_logistic": "recalibrated: intercept + slope",
    "treat_all": "treat all",
    "treat_none": "treat none",
}
#: |standardised difference| from which a case-mix variable is flagged as imbalanced.
SMD_FLAG = 0.1
_THRESHOLD_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "npv", "f1")
_COVERAGE_ORDER = {"unmappable": 0, "absent": 1, "partly missing": 2, "present": 3}


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def fmt_num(value: object, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals (a true minus sign), ``n/a`` when missing."""
    v = _num(value)
    if not np.isfinite(v):
        return "n/a"
    text = f"{v:.{digits}f}"
    if float(text) == 0:  # no "−0.00"
        text = text.lstrip("-")
    return text.replace("-", "−")


def ci_text(value: object, lo: object, hi: object, digits: int = 2) -> str:
    """``"0.72 (0.66–0.79)"``; ``"−0.80 (−1.09 to −0.51)"`` when a bound is negative; the
    interval left out when undefined, ``n/a`` without a value."""
    v, a, b = _num(value), _num(lo), _num(hi)
    if not np.isfinite(v):
        return "n/a"
    if not (np.isfinite(a) and np.isfinite(b)):
        return fmt_num(v, digits)
    sep = " to " if min(a, b) < 0 else "–"
    return f"{fmt_num(v, digits)} ({fmt_num(a, digits)}{sep}{fmt_num(b, digits)})"


def label_of(variant: str) -> str:
    """Display name of a variant (unknown names as they are)."""
    return VARIANT_LABELS.get(str(variant), str(variant))


# ---------------------------------------------------------------------- protocol, warnings
def protocol_statement(summary: dict) -> str:
    """What every number of the validation is, in one paragraph."""
    model, cohort = summary.get("model") or {}, summary.get("cohort") or {}
    name = f"{model.get('feature_set', '?')} / {model.get('classifier', '?')}"
    text = (f"The model {name} ({model.get('protocol', '?')} protocol) was fitted on "
            f"{model.get('fitted_on') or 'data not recorded'} and scored, unchanged, on "
            f"{cohort.get('n_scored', '?')} patients of the cohort "
            f"{cohort.get('name', '?')!s} that took no part in fitting it: every number here "
            "is an external estimate. ")
    if not summary.get("labelled") or summary.get("headline") is None:
        return text + ("The cohort has no pCR labels (predict-only): only the predictions, "
                       "the feature coverage and the case mix are shown.")
    return text + ("The recalibrated variants (intercept; intercept and slope) are fitted on "
                   "this external cohort itself and evaluated on the same patients: their "
                   "calibration is optimistic for this cohort (the intercept update is "
                   "perfect in the large by construction); cross-fitted rows, where recorded, "
                   "are what a new patient of this cohort would see. Recalibration is "
                   "monotone: it leaves the AUC unchanged.")


def provenance_items(summary: dict) -> list[tuple[str, str]]:
    """``(label, text)`` of the model, the cohort, the development cohort and the run of the
    validation."""
    model, cohort = summary.get("model") or {}, summary.get("cohort") or {}
    dev = summary.get("development")
    rate = cohort.get("observed_rate")
    items = [
        ("Model", f"{model.get('feature_set', '?')} / {model.get('classifier', '?')}, "
                  f"{model.get('protocol', '?')} protocol ({model.get('path', '?')})"),
        ("Fitted on", str(model.get("fitted_on") or "not recorded")),
        ("Development AUC", f"{fmt_num(model.get('development_auc'))} — "
                            f"{model.get('estimates_from') or 'source not recorded'}"),
        ("Threshold", f"{fmt_num(model.get('threshold'))} "
                      f"({model.get('threshold_rule') or 'rule not recorded'})"),
        ("External cohort", f"{cohort.get('name', '?')} ({cohort.get('source', '?')}): "
                            f"{cohort.get('n', '?')} patients, {cohort.get('n_scored', '?')} "
                            f"scored, {cohort.get('n_labelled', '?')} labelled, "
                            f"{cohort.get('n_pos', '?')} pCR"
                            + (f" (observed rate {fmt_num(rate)})" if rate is not None else "")
                            + f", mean predicted {fmt_num(cohort.get('mean_predicted'))}"),
        ("Development cohort",
         f"{dev.get('run', '?')}: {dev.get('n', '?')} patients, observed rate "
         f"{fmt_num(dev.get('observed_rate'))}" if dev else
         "not available — " + development_missing(summary)),
        ("Created", f"{summary.get('created', '?')} ({fmt_num(summary.get('seconds'), 1)} s)"),
    ]
    return items


def development_missing(summary: dict) -> str:
    """Why the validation has no development cohort (case mix, membership)."""
    membership = summary.get("membership") or {}
    if membership.get("skipped"):
        return str(membership["skipped"])
    return "; ".join(map(str, summary.get("skipped") or [])) or "reason not recorded"


def alerts(summary: dict) -> list[str]:
    """Warnings to show prominently, most important first: predict-only, the model's own
    warning, then the validation's."""
    out = []
    if not summary.get("labelled") or summary.get("headline") is None:
        out.append("Predict-only: no labels — the cohort has no pCR outcomes, so no "
                   "discrimination, calibration or clinical-utility estimate exists.")
    warning = (summary.get("model") or {}).get("warning")
    if warning:
        out.append(str(warning))
    out += [str(w) for w in summary.get("warnings") or []]
    return out


def problems(summary: dict, limit: int = 50) -> tuple[list[str], int]:
    """The first ``limit`` problems recorded while scoring the cohort (``summary.json`` →
    ``problems``, when the validation recorded them) and how many there are in all."""
    items = [str(x) for x in summary.get("problems") or []]
    return items[:limit], len(items)


# ---------------------------------------------------------------------- performance
def _by_metric(metrics: pd.DataFrame, variant: str = "original") -> dict[str, pd.Series]:
    if metrics is None or metrics.empty:
        return {}
    rows = metrics[metrics["variant"].astype(str) == variant]
    return {str(r["metric"]): r for _, r in rows.iterrows()}


def headline_rows(summary: dict, metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """The headline of the original model: ``Measure, Estimate (95% CI), CI method, Ideal``.

    From ``metrics.csv`` (variant ``original``) where it has the row, else from
    ``summary["headline"]``; empty for a predict-only validation.
    """
    head = summary.get("headline")
    if not head:
        return pd.DataFrame(columns=["Measure", "Estimate (95% CI)", "CI method", "Ideal"])
    rows = _by_metric(metrics)
    dev_auc = (summary.get("model") or {}).get("development_auc")
    spec = [("AUC (DeLong CI)", "auc", 2, "1 (0.5: chance)", ("auc", "auc_low", "auc_high"),
             "DeLong"),
            ("AUC (bootstrap CI)", "auc_bootstrap", 2, "1 (0.5: chance)", None, ""),
            ("Calibration-in-the-large (CITL)", "citl", 2, "0 (< 0: over-predicts)",
             ("citl", "citl_low", "citl_high"), "Wald"),
            ("Calibration slope", "slope", 2, "1 (< 1: too extreme)",
             ("slope", "slope_low", "slope_high"), "Wald"),
            ("Brier score", "brier", 3, "0 (lower is better)", ("brier", None, None), ""),
            ("Observed / expected (O/E)", "oe_ratio", 2, "1 (< 1: over-predicts)", None, ""),
            ("Observed pCR rate", "observed_rate", 3, "", ("observed_rate", None, None), ""),
            ("Mean predicted probability", "mean_predicted", 3, "",
             ("mean_predicted", None, None), "")]
    out = []
    for label, metric, digits, ideal, keys, method in spec:
        if metric in rows:
            r = rows[metric]
            text = ci_text(r["estimate"], r["ci_low"], r["ci_high"], digits)
            method = "" if pd.isna(r.get("ci_method")) else str(r["ci_method"])
        elif keys is not None:
            text = ci_text(*(head.get(k) if k else None for k in keys), digits)
        else:
            continue
        out.append({"Measure": label, "Estimate (95% CI)": text, "CI method": method,
                    "Ideal": ideal})
    if dev_auc is not None:
        out.insert(0, {"Measure": "AUC in development (for comparison)",
                       "Estimate (95% CI)": fmt_num(dev_auc), "CI method": "",
                       "Ideal": "not an external estimate"})
    return pd.DataFrame(out)


def truth_line(summary: dict) -> str | None:
    """The generator's true CITL and slope (synthetic cohorts) and whether the estimated
    95 % CIs contain them; ``None`` without a truth."""
    truth = summary.get("truth")
    if not truth:
        return None
    text = (f"Known truth (synthetic cohort): true CITL {fmt_num(truth.get('citl'))}, "
            f"true calibration slope {fmt_num(truth.get('slope'))} — {truth.get('how', '')}.")
    head = summary.get("headline")
    if head:
        verdicts = []
        for key, label in (("citl", "CITL"), ("slope", "slope")):
            lo, hi, true = (_num(head.get(f"{key}_low")), _num(head.get(f"{key}_high")),
                            _num(truth.get(key)))
            if np.isfinite(lo) and np.isfinite(hi) and np.isfinite(true):
                verdicts.append(f"the {label} CI {'contains' if lo <= true <= hi else 'MISSES'}"
                                " it")
        if verdicts:
            text += " Estimated: " + "; ".join(verdicts) + "."
    return text


def threshold_rows(thresholds: pd.DataFrame) -> pd.DataFrame:
    """Threshold metrics with CIs: one row per metric, one column per variant."""
    if thresholds is None or thresholds.empty:
        return pd.DataFrame()
    t = thresholds.assign(variant=thresholds["variant"].astype(str),
                          metric=thresholds["metric"].astype(str))
    variants = list(dict.fromkeys(t["variant"]))
    metrics = [m for m in _THRESHOLD_METRICS if m in set(t["metric"])]
    metrics += [m for m in dict.fromkeys(t["metric"]) if m not in metrics]
    cells = {(r.variant, r.metric): ci_text(r.estimate, r.ci_low, r.ci_high)
             for r in t.itertuples(index=False)}
    return pd.DataFrame([{"Metric": m, **{label_of(v): cells.get((v, m), "n/a")
                                           for v in variants}} for m in metrics])


def recalibration_rows(summary: dict, metrics: pd.DataFrame) -> pd.DataFrame:
    """The variants before and after recalibration: the update fitted on the external cohort,
    AUC, CITL and slope (in-sample, and cross-fitted where recorded), Brier and O/E."""
    if metrics is None or metrics.empty:
        return pd.DataFrame()
    recal = summary.get("recalibration") or {}
    a_i = (recal.get("intercept") or {}).get("a")
    logistic = recal.get("logistic") or {}
    updates = {"original": "none: the model as saved",
               "recalibrated_intercept": f"logit p′ = a + logit p, a = {fmt_num(a_i)}",
               "recalibrated_logistic": f"logit p′ = a + b·logit p, a = "
                                        f"{fmt_num(logistic.get('a'))}, b = "
                                        f"{fmt_num(logistic.get('b'))}"}
    crossed = bool(metrics["metric"].astype(str).isin(["citl_cv", "slope_cv"]).any())
    columns = [("AUC", "auc", 2), ("CITL", "citl", 2), ("Slope", "slope", 2)]
    if crossed:
        columns += [("CITL cross-fitted", "citl_cv", 2), ("Slope cross-fitted", "slope_cv", 2)]
    columns += [("Brier", "brier", 3), ("O/E", "oe_ratio", 2)]
    out = []
    for variant in dict.fromkeys(metrics["variant"].astype(str)):
        rows = _by_metric(metrics, variant)
        row = {"Variant": label_of(variant), "Update (fitted on the external cohort)":
               updates.get(variant, "")}
        for heading, metric, digits in columns:
            r = rows.get(metric)
            row[heading] = ("—" if r is None else
                            ci_text(r["estimate"], r["ci_low"], r["ci_high"], digits))
        out.append(row)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------- transportability
def case_mix_rows(case_mix: pd.DataFrame, flag: float = SMD_FLAG) -> pd.DataFrame:
    """The case mix sorted by |SMD| (largest first), imbalanced variables flagged."""
    if case_mix is None or case_mix.empty:
        return pd.DataFrame()
    t = case_mix.assign(abs_smd=case_mix["smd"].astype(float).abs()).sort_values(
        "abs_smd", ascending=False, kind="stable")
    return pd.DataFrame({
        "Variable": t["variable"].astype(str).to_numpy(),
        "Level": t["level"].fillna("").astype(str).to_numpy(),
        "Development": t["development"].astype(str).to_numpy(),
        "External": t["external"].astype(str).to_numpy(),
        "SMD": [fmt_num(v) for v in t["smd"]],
        "Flag": [f"⚠ |SMD| ≥ {flag:g}" if v >= flag else "" for v in t["abs_smd"]],
    })


def membership_line(summary: dict) -> str:
    """The membership model's AUC with its reading, or why it was skipped."""
    m = summary.get("membership") or {}
    if not m or m.get("skipped"):
        return f"Membership model: skipped — {m.get('skipped') or 'not recorded'}."
    auc = _num(m.get("auc"))
    reading = ("not estimable on these inputs" if not np.isfinite(auc) else
               "the cohorts are hard to tell apart: the external estimates mostly measure "
               "reproducibility" if auc < 0.6 else
               "the case mix differs clearly: the external estimates measure "
               "transportability to a different population" if auc < 0.8 else
               "the cohorts are very different: expect the model to transport poorly, and "
               "read its external performance as a test on a new population")
    return (f"Membership model (can a classifier tell the development cohort from the "
            f"external one?): AUC {ci_text(m.get('auc'), m.get('auc_low'), m.get('auc_high'))}"
            f" on {m.get('n_development', '?')} development and {m.get('n_external', '?')} "
            f"external patients ({m.get('method', 'method not recorded')}) — {reading}.")


def membership_rows(membership: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` features that separate the cohorts most (standardised log-odds of
    *external*)."""
    if membership is None or membership.empty:
        return pd.DataFrame()
    t = membership.sort_values("abs_coefficient", ascending=False, kind="stable").head(top)
    return pd.DataFrame({
        "Feature": t["feature"].astype(str).to_numpy(),
        "Coefficient": [fmt_num(v) for v in t["coefficient"]],
        "Direction": ["higher / more frequent in the external cohort" if v > 0 else
                      "higher / more frequent in the development cohort"
                      for v in t["coefficient"].astype(float)]})


def coverage_rows(coverage: pd.DataFrame) -> pd.DataFrame:
    """Feature coverage, problems first; features imputed for some patient flagged."""
    if coverage is None or coverage.empty:
        return pd.DataFrame()
    t = coverage.assign(_order=coverage["status"].astype(str).map(_COVERAGE_ORDER).fillna(4))
    t = t.sort_values(["_order", "feature"], kind="stable")

    def flag(r) -> str:
        status, imputed = str(r["status"]), int(_num(r["n_imputed"]) or 0)
        if status == "absent":
            return "⚠ absent: every patient gets the imputed constant"
        if status == "unmappable":
            return f"⚠ unreadable values: {imputed} imputed"
        return f"⚠ imputed for {imputed}" if imputed > 0 else ""

    def count(v) -> str:
        return str(int(v)) if np.isfinite(_num(v)) else ""

    return pd.DataFrame({
        "Feature": t["feature"].astype(str).to_numpy(),
        "Source": t["source"].fillna("").astype(str).to_numpy(),
        "Status": t["status"].astype(str).to_numpy(),
        "Present": [count(v) for v in t["n_present"]],
        "Missing": [count(v) for v in t["n_missing"]],
        "Unreadable": [count(v) for v in t["n_unmappable"]],
        "Imputed": [count(v) for v in t["n_imputed"]],
        "Imputed with": ["" if not np.isfinite(_num(v)) else f"{_num(v):.4g}"
                         for v in t["imputed_with"]],
        "Flag": [flag(r) for _, r in t.iterrows()],
        "Note": t["note"].astype(object).fillna("").astype(str).to_numpy(),
    })
