"""One standalone HTML report of a run directory (Bokeh JS/CSS inline: works offline).

:func:`build_report` reads the run through :class:`~workbench.report.data.RunData` and writes
provenance, Table 1, the selection funnel, Table 2 per protocol, the ablation table
(Table S2), ROC, decision curves, calibration, signature boxplots, SHAP, the null audit, the
IBSI result and the full manifest. Every text is HTML-escaped; a part the run lacks becomes a
"not in this run" note, and a figure that fails to draw becomes a note naming the error.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from workbench.models.protocols import LEAKAGE_WARNING
from workbench.report.data import RunData

log = logging.getLogger(__name__)

__all__ = ["build_report", "headline_model"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.warning{background:#fff3cd;border:1px solid #e0b000;padding:.6em;
margin:.6em 0}.note{color:#666;font-style:italic}.weights{background:#eef4ff;
border:1px solid #99b;padding:.4em;margin:.4em 0}figure{margin:1.2em 0}
figcaption{font-size:.9em;max-width:900px}dl.prov{display:grid;grid-template-columns:
max-content auto;gap:.2em 1em}dl.prov dt{font-weight:600}pre{background:#f7f7f7;
padding:.6em;overflow-x:auto;font-size:.85em}
"""

_PREFERRED_SETS = ("fusion_clinical_kinetic", "fusion_clinical", "fusion", "deep", "resnet50",
                   "radiomics", "kinetic", "clinical")


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


class _Page:
    """HTML parts plus HoloViews figures, rendered together at the end."""

    def __init__(self, weights_label: str | None) -> None:
        self.parts: list[str] = []
        self.figures: list[object] = []
        self.weights_label = weights_label
        self._anchors: dict[str, int] = {}

    def add(self, raw_html: str) -> None:
        self.parts.append(raw_html)

    def heading(self, text: str, level: int = 2) -> None:
        anchor = "".join(c if c.isalnum() else "-" for c in text.lower())[:40]
        seen = self._anchors.get(anchor, 0)
        self._anchors[anchor] = seen + 1
        anchor = f"{anchor}-{seen}" if seen else anchor
        self.add(f'<h{level} id="{_e(anchor)}">{_e(text)}</h{level}>')

    def para(self, text: str, cls: str | None = None) -> None:
        self.add(f'<p{f" class={cls!r}" if cls else ""}>{_e(text)}</p>')

    def note(self, text: str) -> None:
        self.para(text, "note")

    def warning(self, text: str) -> None:
        self.add(f'<div class="warning"><strong>⚠</strong> {_e(text)}</div>')

    def table(self, frame: pd.DataFrame, *, max_rows: int = 500) -> None:
        head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
        body = "".join("<tr>" + "".join(f"<td>{_e(_cell(v))}</td>" for v in row) + "</tr>"
                       for row in frame.head(max_rows).itertuples(index=False))
        self.add(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if len(frame) > max_rows:
            self.note(f"{len(frame) - max_rows} more rows not shown.")

    def figure(self, obj: object, *, paper: bool = False, deep: bool = False,
               caption: str = "") -> None:
        self.figures.append(obj)
        lines = [f"<span>{_e(caption)}</span>"] if caption else []
        if paper:
            lines.append(f'<div class="warning">⚠ {_e(LEAKAGE_WARNING)}</div>')
        if deep:
            lines.append(f'<div class="weights">Deep features: '
                         f'{_e(self.weights_label or "weights not recorded")}</div>')
        self.add(f"<figure><!--FIGURE {len(self.figures) - 1}--><figcaption>"
                 f"{''.join(lines)}</figcaption></figure>")

    def section(self, title: str, build: Callable[[], None]) -> None:
        """Heading, then ``build()``; an error becomes a note, never a lost report."""
        self.heading(title)
        try:
            build()
        except Exception as exc:  # one broken section must not lose the whole report
            log.warning("report section %r failed: %s", title, exc, exc_info=True)
            self.note(f"could not build this section: {type(exc).__name__}: {exc}")

    def render(self, title: str) -> str:
        """The whole page, BokehJS inline.

        Only BokehJS itself is inlined (``Resources.js_raw`` / ``css_raw``); the
        ``js_files`` URLs other libraries' model classes declare (Panel's ES-module shim,
        say) are left out on purpose: the figures are plain Bokeh models, and the page must
        load nothing from anywhere.
        """
        import holoviews as hv
        from bokeh.embed import components
        from bokeh.resources import Resources

        models, slots = [], {}
        for i, obj in enumerate(self.figures):
            try:
                models.append(hv.render(obj, backend="bokeh"))
                slots[i] = len(models) - 1
            except Exception as exc:
                log.warning("figure %d failed to render: %s", i, exc, exc_info=True)
                slots[i] = f'<p class="note">could not draw this figure: {_e(exc)}</p>'
        script, divs = components(models) if models else ("", [])
        body = "\n".join(self.parts)
        for i, slot in slots.items():
            body = body.replace(f"<!--FIGURE {i}-->",
                                divs[slot] if isinstance(slot, int) else slot, 1)
        bokeh = Resources(mode="inline", components=["bokeh"])
        assets = "".join(f"<style>{css}</style>\n" for css in bokeh.css_raw)
        assets += "".join(f'<script type="text/javascript">\n{js}\n</script>\n'
                          for js in bokeh.js_raw)
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n{assets}{script}\n"
                f"</head>\n<body>\n{body}\n</body>\n</html>\n")


def _cell(value: object) -> str:
    try:
        if value is None or pd.isna(value):  # None, NaN, pd.NA, NaT
            return ""
    except (TypeError, ValueError):  # array-like cell: shown as text
        pass
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def headline_model(run: RunData) -> tuple[str, str]:
    """``(feature_set, classifier)`` shown where the report draws one model: the richest
    feature set present, logistic regression when it ran."""
    m = run.metrics
    sets = list(dict.fromkeys(m["feature_set"].astype(str)))
    fs = next((s for s in _PREFERRED_SETS if s in sets), sets[-1])
    clfs = list(dict.fromkeys(m.loc[m["feature_set"].astype(str) == fs, "classifier"]
                              .astype(str)))
    return fs, ("lr" if "lr" in clfs else clfs[0])


def _threshold(run: RunData, protocol: str, fs: str, clf: str) -> float:
    m = run.metrics
    hit = m[(m["protocol"] == protocol) & (m["feature_set"] == fs) & (m["classifier"] == clf)
            & (m["split"] == "test")]
    return float(hit["threshold"].iloc[0]) if len(hit) else 0.5


def _protocol_heading(protocol: str) -> str:
    return f"{protocol} protocol" + (" — LEAKY (study order)" if protocol == "paper" else "")


# ---------------------------------------------------------------------------- sections
def _provenance(page: _Page, run: RunData) -> None:
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
    page.add('<dl class="prov">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>"
                                           for k, v in items) + "</dl>")


def _table1(page: _Page, run: RunData) -> None:
    if (why := run.missing("table1")) is not None:
        page.note(f"not in this run: {why}")
        return
    page.table(run.table1)
    if run.has("problems"):
        problems = run.problems
        page.para(f"Cohort problems recorded ({len(problems)}; first 50):")
        page.table(problems, max_rows=50)


def _selection(page: _Page, run: RunData) -> None:
    from workbench.plots import lasso_coefficients, selection_funnel, univariate_pvalues
    from workbench.report.tables import funnel_table

    sel = run.selection
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
    from workbench.plots import uses_deep

    return uses_deep([str(n) for n in names])


def _table2(page: _Page, run: RunData) -> None:
    from workbench.report.tables import table2

    for protocol in run.protocols:
        page.heading(f"Table 2 — test split, {_protocol_heading(protocol)}", 3)
        if protocol == "paper":
            page.warning(LEAKAGE_WARNING)
        t = table2(run.metrics, protocol)
        page.table(t)
        if _deep(t["Feature set"]):
            page.add(f'<div class="weights">Deep features: {_e(run.weights_label)}</div>')
    page.note("AUC: DeLong 95% CI; other metrics: percentile bootstrap 95% CI at the "
              "threshold recorded in models/metrics.parquet.")


def _ablation(page: _Page, run: RunData) -> None:
    from workbench.report.tables import ablation_table

    for protocol in run.protocols:
        t = ablation_table(run.metrics, protocol)
        page.heading(f"Table S2 — AUC (95% CI), test split, {_protocol_heading(protocol)}", 3)
        if t.empty:
            page.note("not in this run: no radiomics, deep or fusion feature set was modelled")
            continue
        if protocol == "paper":
            page.warning(LEAKAGE_WARNING)
        page.table(t)


def _performance(page: _Page, run: RunData) -> None:
    from workbench.plots import auc_heatmap, roc_curves

    deep = _deep(run.metrics["feature_set"].unique())
    for protocol in run.protocols:
        page.heading(_protocol_heading(protocol), 3)
        kw = {"protocol": protocol, "weights_label": run.weights_label}
        page.figure(roc_curves(run.predictions, **kw), paper=protocol == "paper", deep=deep)
        page.figure(auc_heatmap(run.metrics, **kw), paper=protocol == "paper", deep=deep)


def _utility(page: _Page, run: RunData) -> None:
    from workbench.plots import calibration_curve, confusion_matrix_plot, decision_curves

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


def _signatures(page: _Page, run: RunData) -> None:
    from workbench.plots import signature_boxplots

    sig = run.signatures
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


def _lasso_curves(page: _Page, run: RunData, protocol: str) -> None:
    from workbench.plots import lasso_cv_curve

    cv = run.lasso_cv
    final = cv[(cv["protocol"] == protocol) & (cv["repeat"] == -1)]
    for block in sorted(final["block"].unique()):
        page.figure(lasso_cv_curve(cv, protocol=protocol, block=block,
                                   weights_label=run.weights_label),
                    paper=protocol == "paper", deep=_deep([block]),
                    caption=f"LASSO penalty chosen by CV for block {block} (final fit; "
                            "dashed: the chosen alpha).")


def _shap(page: _Page, run: RunData) -> None:
    from workbench.plots import shap_beeswarm, shap_importance

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


def _audit(page: _Page, run: RunData) -> None:
    from workbench.plots import null_audit_histogram

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


def _ibsi(page: _Page, run: RunData) -> None:
    page.para(run.ibsi_line)
    if run.has("ibsi_report"):
        page.add(f"<pre>{_e(run.load('ibsi_report'))}</pre>")
    else:
        page.note(f"not in this run: {run.missing('ibsi_report')}")


def _skipped(page: _Page, run: RunData) -> None:
    if run.has("skipped"):
        page.table(run.load("skipped"))
    else:
        page.note("nothing was skipped.")


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
    workbench.report.data.RunDataError
        The run directory, its manifest or its model tables are missing.
    """
    run = RunData(run_dir)
    for required in ("manifest", "metrics", "predictions"):
        run.load(required)  # fail early, naming the file, when the run is incomplete
    name = (run.manifest.get("config") or {}).get("name") or run.run_dir.name
    title = title or f"pCR fusion workbench — run report: {name}"
    page = _Page(run.weights_label)
    page.add(f"<h1>{_e(title)}</h1>")
    if "paper" in run.protocols:
        page.warning("This run includes the study's paper protocol. " + LEAKAGE_WARNING)
    if run.weights_label and "RANDOM" in run.weights_label:
        page.warning(f"Deep features: {run.weights_label}")
    sections: list[tuple[str, Callable[[_Page, RunData], None]]] = [
        ("Provenance", _provenance), ("Table 1 — cohort characteristics", _table1),
        ("Feature selection", _selection), ("Table 2 — performance on the test split", _table2),
        ("Table S2 — ablation: radiomics, deep, fusion", _ablation),
        ("Discrimination: ROC curves and AUC", _performance),
        ("Clinical utility and calibration", _utility), ("Signatures: pCR vs non-pCR",
                                                         _signatures),
        ("Explanations: SHAP", _shap), ("Null audit: permuted labels", _audit),
        ("IBSI conformance", _ibsi), ("Skipped models and blocks", _skipped),
    ]
    for heading, build in sections:
        page.section(heading, lambda build=build: build(page, run))
    page.heading("Full provenance")
    page.add("<details><summary>run_manifest.json</summary><pre>"
             f"{_e(json.dumps(run.manifest, indent=2, default=str))}</pre></details>")
    out = Path(out_html) if out_html else run.run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.render(title), encoding="utf-8")
    log.info("report written to %s (%d figures)", out, len(page.figures))
    return out
