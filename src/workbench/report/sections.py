"""The sections of the run report, each ``build(page, run)`` filling one :class:`Page`.

:data:`SECTIONS` lists them in page order: provenance, Table 1, the selection funnel, Table 2
per protocol, the ablation table (Table S2), ROC, decision curves, calibration, signature
boxplots, SHAP, the null audit, the known-truth diagnostics of a synthetic cohort, the IBSI
result and the skipped models. A part the run lacks becomes a "not in this run" note; a
section of :data:`SHOWN_ONLY_WITH` is left out altogether when the run lacks its file.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from workbench.evaluation import display
from workbench.evaluation.truth_display import model_rows, proxy_rows, reference_rows
from workbench.names import LEAKAGE_WARNING
from workbench.plots import (
    auc_heatmap,
    calibration_curve,
    confusion_matrix_plot,
    decision_curves,
    lasso_coefficients,
    lasso_cv_curve,
    null_audit_histogram,
    roc_curves,
    selection_funnel,
    shap_beeswarm,
    shap_importance,
    signature_boxplots,
    univariate_pvalues,
    uses_deep,
)
from workbench.report.page import Page, escape
from workbench.report.tables import ablation_table, funnel_table, table2
from workbench.rundata import RunData


def headline_model(run: RunData) -> tuple[str, str]:
    """``(feature_set, classifier)`` shown where the report draws one model: the richest
    feature set present, logistic regression when it ran on it (the rule, and its one copy:
    :func:`workbench.evaluation.display.headline_model`, which the dashboard uses too)."""
    return display.headline_model(run.metrics)


def _threshold(run: RunData, protocol: str, fs: str, clf: str) -> float:
    m = run.metrics
    hit = m[(m["protocol"] == protocol) & (m["feature_set"] == fs) & (m["classifier"] == clf)
            & (m["split"] == "test")]
    return float(hit["threshold"].iloc[0]) if len(hit) else 0.5


def _protocol_heading(protocol: str) -> str:
    return f"{protocol} protocol" + (" — LEAKY (study order)" if protocol == "paper" else "")


def _provenance(page: Page, run: RunData) -> None:
    man = run.manifest
    cfg = man.get("config") or {}
    git = man.get("git") or {}
    inputs = man.get("inputs") or {}
    packages = {k: v for k, v in (man.get("packages") or {}).items() if v}
    commit = git.get("commit") or "not recorded"
    if git.get("dirty"):
        commit += " (uncommitted changes)"
    items = [
        ("Config", f"{cfg.get('name', '?')} ({man.get('config_file') or 'inline config'})"),
        ("Seed", man.get("seed", cfg.get("seed"))),
        ("Git commit", commit),
        ("Created (UTC)", man.get("created_utc")),
        ("Command", " ".join(map(str, man.get("command") or []))),
        ("Python / platform", f"{man.get('python')} / {man.get('platform')}"),
        ("Packages", ", ".join(f"{k} {v}" for k, v in packages.items())),
        ("Input data hashes", f"{sum(v is not None for v in inputs.values())} files hashed "
                              f"(sha256), {sum(v is None for v in inputs.values())} missing"),
        ("Deep weights", run.weights_label or "no deep features in this run"),
        ("IBSI", run.ibsi_line),
    ]
    page.add('<dl class="prov">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>"
                                           for k, v in items) + "</dl>")


def _table1(page: Page, run: RunData) -> None:
    if (why := run.missing("table1")) is not None:
        page.note(f"not in this run: {why}")
        return
    page.table(run.table1)
    if run.has("problems"):
        problems = run.problems
        page.para(f"Cohort problems recorded ({len(problems)}; first 50):")
        page.table(problems, max_rows=50)


def _no_blocks(page: Page, table: pd.DataFrame) -> bool:
    """Say so when a run selected no feature block (a clinical-only run)."""
    if table.empty or "protocol" not in table.columns:
        page.note("No feature block was selected: the run's feature sets hold clinical "
                  "columns only, which enter the classifiers as they are.")
        return True
    return False


def _selection(page: Page, run: RunData) -> None:
    sel = run.selection
    if _no_blocks(page, sel):
        return
    for protocol in run.protocols:
        if not (sel["protocol"] == protocol).any():
            continue
        page.heading(f"Feature counts through selection — {_protocol_heading(protocol)}", 3)
        page.table(funnel_table(sel, protocol))
        blocks = list(dict.fromkeys(sel.loc[sel["protocol"] == protocol, "block"].astype(str)))
        page.figure(selection_funnel(sel, protocol=protocol, weights_label=run.weights_label),
                    paper=protocol == "paper", deep=_deep(blocks))
    protocol = run.protocols[0]
    for block in dict.fromkeys(sel.loc[sel["protocol"] == protocol, "block"].astype(str)):
        page.heading(f"Block {block} — {_protocol_heading(protocol)}, final fit", 3)
        for plot in (univariate_pvalues, lasso_coefficients):
            page.figure(plot(sel, protocol=protocol, block=block,
                             weights_label=run.weights_label),
                        paper=protocol == "paper", deep=_deep([block]))


def _deep(names) -> bool:
    return uses_deep([str(n) for n in names])


def _table2(page: Page, run: RunData) -> None:
    for protocol in run.protocols:
        page.heading(f"Table 2 — test split, {_protocol_heading(protocol)}", 3)
        if protocol == "paper":
            page.warning(LEAKAGE_WARNING)
        t = table2(run.metrics, protocol)
        page.table(t)
        if _deep(t["Feature set"]):
            page.add(f'<div class="weights">Deep features: {escape(run.weights_label)}</div>')
    page.note("AUC: DeLong 95% CI; other metrics: percentile bootstrap 95% CI at the "
              "threshold recorded in models/metrics.parquet.")


def _ablation(page: Page, run: RunData) -> None:
    for protocol in run.protocols:
        t = ablation_table(run.metrics, protocol)
        page.heading(f"Table S2 — AUC (95% CI), test split, {_protocol_heading(protocol)}", 3)
        if t.empty:
            page.note("not in this run: no radiomics, deep or fusion feature set was modelled")
            continue
        if protocol == "paper":
            page.warning(LEAKAGE_WARNING)
        page.table(t)


def _performance(page: Page, run: RunData) -> None:
    deep = _deep(run.metrics["feature_set"].unique())
    for protocol in run.protocols:
        page.heading(_protocol_heading(protocol), 3)
        kw = {"protocol": protocol, "weights_label": run.weights_label}
        page.figure(roc_curves(run.predictions, **kw), paper=protocol == "paper", deep=deep)
        page.figure(auc_heatmap(run.metrics, **kw), paper=protocol == "paper", deep=deep)


def _utility(page: Page, run: RunData) -> None:
    fs, clf = headline_model(run)
    deep_all = _deep(run.metrics["feature_set"].unique())
    page.para(f"Calibration and confusion matrix: {fs} / {clf} (the richest feature set "
              "modelled), at the threshold the run recorded for it.")
    for protocol in run.protocols:
        thr = _threshold(run, protocol, fs, clf)
        kw = {"protocol": protocol, "weights_label": run.weights_label}
        page.heading(_protocol_heading(protocol), 3)
        page.figure(decision_curves(run.predictions, threshold=thr, **kw),
                    paper=protocol == "paper", deep=deep_all,
                    caption="Net benefit vs threshold probability; dotted-dashed line: the "
                            "decision threshold.")
        one = {"feature_set": fs, "classifier": clf, **kw}
        page.figure(calibration_curve(run.predictions, **one), paper=protocol == "paper",
                    deep=_deep([fs]))
        page.figure(confusion_matrix_plot(run.predictions, threshold=thr, **one),
                    paper=protocol == "paper", deep=_deep([fs]))


def _signatures(page: Page, run: RunData) -> None:
    sig = run.signatures
    if _no_blocks(page, sig):
        return
    for protocol in run.protocols:
        if not ((sig["protocol"] == protocol) & (sig["split"] == "test")).any():
            continue
        page.heading(_protocol_heading(protocol), 3)
        page.figure(signature_boxplots(sig, run.labels, protocol=protocol,
                                       weights_label=run.weights_label),
                    paper=protocol == "paper", deep=_deep(sig["block"].unique()),
                    caption="Signature values of the test patients (final model); p: "
                            "two-sided Mann-Whitney U.")
        if run.has("lasso_cv"):
            _lasso_curves(page, run, protocol)


def _lasso_curves(page: Page, run: RunData, protocol: str) -> None:
    cv = run.lasso_cv
    final = cv[(cv["protocol"] == protocol) & (cv["repeat"] == -1)]
    for block in sorted(final["block"].unique()):
        page.figure(lasso_cv_curve(cv, protocol=protocol, block=block,
                                   weights_label=run.weights_label),
                    paper=protocol == "paper", deep=_deep([block]),
                    caption=f"LASSO penalty chosen by CV for block {block} (final fit; "
                            "dashed: the chosen alpha).")


def _shap(page: Page, run: RunData) -> None:
    if (why := run.missing("shap")) is not None:
        page.note(f"not in this run: {why} (no SHAP values were computed)")
        return
    shap = run.shap
    protocols = [p for p in run.protocols if (shap["protocol"] == p).any()]
    protocol = protocols[0]
    rows = shap[shap["protocol"] == protocol]
    page.para(f"Final models of the {protocol} protocol on the test patients.")
    for fs in dict.fromkeys(rows["feature_set"].astype(str)):
        clfs = list(dict.fromkeys(rows.loc[rows["feature_set"] == fs, "classifier"]
                                  .astype(str)))
        clf = "lr" if "lr" in clfs else clfs[0]
        kw = {"protocol": protocol, "feature_set": fs, "classifier": clf,
              "weights_label": run.weights_label}
        page.figure(shap_beeswarm(shap, **kw), paper=protocol == "paper", deep=_deep([fs]),
                    caption="One point per test patient and feature; colour: the feature's "
                            "value scaled within the feature (blue low, red high).")
        page.figure(shap_importance(shap, **kw), paper=protocol == "paper", deep=_deep([fs]))


def _audit(page: Page, run: RunData) -> None:
    if (why := run.missing("audit")) is not None:
        page.note(f"not in this run: {why} (audit.permutations = 0 or the stage was skipped)")
        return
    summary = (run.audit_summary if run.has("audit_summary") else
               run.audit.groupby(["protocol", "split"])["auc"].agg(["mean", "std", "count"])
               .reset_index())
    page.para("AUC on permuted labels: an honest protocol centres on 0.5; the paper "
              "protocol's excess is what selecting on the whole cohort manufactures.")
    page.table(summary)
    page.figure(null_audit_histogram(run.audit, weights_label=run.weights_label),
                paper=bool((run.audit["protocol"] == "paper").any()),
                deep=_deep(run.audit["feature_set"].unique()))


def _known_truth(page: Page, run: RunData) -> None:
    table = run.load("known_truth")
    page.para("The synthetic cohort records each patient's true probability of pCR and the "
              "latent variables that drive it, so this run can be measured against what its "
              "data allow. Oracle: the AUC of the true probability (no model can beat it in "
              "expectation). Learnable bound: a logistic regression on the true latents "
              "plus the clinical covariates, cross-validated on the cohort. Clinical "
              "reference: the same on the clinical covariates alone.")
    page.table(reference_rows(table))
    proxies = proxy_rows(table)
    page.heading("Latent drivers and their closest features", 3)
    if proxies.empty:
        page.note("not in this run: no feature table to compare with the latents.")
    else:
        page.para("The feature most rank-correlated with each latent driver (Spearman), "
                  "over every block and within each block. A driver no feature follows is "
                  "information the models cannot use.")
        page.table(proxies)
    page.heading("Models: share of the learnable gap closed — honest protocol", 3)
    models = model_rows(table, "honest")
    if models.empty:
        page.note("not in this run: no honest-protocol model AUC was recorded.")
        return
    page.para("Gap closed = (AUC − clinical reference) / (learnable bound − clinical "
              "reference): 0 adds nothing to the clinical covariates, 1 matches a model of the "
              "true latents. The five best honest models by cross-validated AUC (the test "
              "split does not choose); the references use every patient, the CV AUCs the "
              "training split and the test AUCs the smaller test split, so read the "
              "fractions as approximate.")
    page.table(models)


def _ibsi(page: Page, run: RunData) -> None:
    page.para(run.ibsi_line)
    if run.has("ibsi_report"):
        page.add(f"<pre>{escape(run.load('ibsi_report'))}</pre>")
    else:
        page.note(f"not in this run: {run.missing('ibsi_report')}")


def _skipped(page: Page, run: RunData) -> None:
    if run.has("skipped"):
        page.table(run.load("skipped"))
    else:
        page.note("nothing was skipped.")


#: ``(heading, build)`` of every section, in page order.
SECTIONS: list[tuple[str, Callable[[Page, RunData], None]]] = [
    ("Provenance", _provenance), ("Table 1 — cohort characteristics", _table1),
    ("Feature selection", _selection), ("Table 2 — performance on the test split", _table2),
    ("Table S2 — ablation: radiomics, deep, fusion", _ablation),
    ("Discrimination: ROC curves and AUC", _performance),
    ("Clinical utility and calibration", _utility), ("Signatures: pCR vs non-pCR",
                                                     _signatures),
    ("Explanations: SHAP", _shap), ("Null audit: permuted labels", _audit),
    ("Known truth (synthetic cohort)", _known_truth),
    ("IBSI conformance", _ibsi), ("Skipped models and blocks", _skipped),
]
#: Sections shown only when the run holds a file (heading → run-file name): the known-truth
#: diagnostics exist for synthetic cohorts only, so a real cohort's report says nothing.
SHOWN_ONLY_WITH: dict[str, str] = {"Known truth (synthetic cohort)": "known_truth"}
