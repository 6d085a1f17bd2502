"""The dashboard in a real browser: ``panel serve apps/dashboard.py`` on a free localhost port,
driven by Playwright + Debian's chromium.

One session walks the main interactions and checks what only a browser shows: no console
errors, the ROC legend AUCs follow the classifier, the displayed sensitivity follows the
threshold slider, the SHAP beeswarm renders, a malicious patient id stays text. Each
interaction's latency — from the input event to the page showing the change, measured in the
browser — goes to ``test-artifacts/dashboard_latency.json`` with its p95; screenshots to
``test-artifacts/screenshots/``. Skipped only when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.browser import (
    ARTIFACTS,
    SCREENSHOTS,
    chromium_page,
    panel_serve,
    require_chromium,
)
from workbench.names import LEAKAGE_WARNING
from workbench.plots import PAPER_TITLE_WARNING

pytestmark = [pytest.mark.slow, pytest.mark.ui]

APP = Path(__file__).resolve().parents[2] / "apps" / "dashboard.py"
TARGET_P95_MS = 250.0

#: Page helpers: models reachable from the document roots (stale replaced figures are not),
#: and input-to-change timing (``mark`` on the input's pointer/key event, ``done`` when the
#: expected change shows).
HELPERS = """
window.__wb = {
  models(kind) {
    const out = [];
    for (const d of (window.Bokeh ? window.Bokeh.documents : [])) {
      const seen = new Set(), stack = [...d.roots()];
      while (stack.length) {
        const m = stack.pop();
        if (seen.has(m)) continue;
        seen.add(m);
        if (m.constructor.__name__ === kind) out.push(m);
        for (const r of m.references()) stack.push(r);
      }
    }
    return out;
  },
  legend() {
    return this.models('Legend').flatMap(l => l.items.filter(i => i.visible)
      .map(i => i.label.value))
      .filter(t => t.includes(': AUC') || t === 'chance');
  },
  titles() { return this.models('Title').map(t => t.text); },
  spans() { return this.models('Span').map(s => s.location); },
  text(selector) {
    const find = (root) => {
      const hit = root.querySelector(selector);
      if (hit) return hit;
      for (const el of root.querySelectorAll('*')) {
        if (el.shadowRoot) { const f = find(el.shadowRoot); if (f) return f; }
      }
      return null;
    };
    const el = find(document);
    return el ? el.textContent : null;
  },
  t0: null, t1: null,
};
for (const type of ['pointerdown', 'keydown']) {
  window.addEventListener(type, e => { if (window.__wb.t0 === null) window.__wb.t0 = e.timeStamp; },
                          true);
}
"""


class Recorder:
    """Runs an action, waits (polling each frame) for its effect, records the latency."""

    def __init__(self, page) -> None:
        self.page = page
        self.rows: list[dict] = []

    def measure(self, kind: str, name: str, action, done_js: str, arg=None) -> float:
        self.page.evaluate("() => { window.__wb.t0 = null; window.__wb.t1 = null; }")
        wall = time.perf_counter()
        action()
        self.page.wait_for_function(
            f"(arg) => {{ if (({done_js})(arg)) {{ window.__wb.t1 = performance.now(); "
            "return true; } return false; }", arg=arg, polling="raf", timeout=30_000)
        wall_ms = (time.perf_counter() - wall) * 1000
        t0, t1 = self.page.evaluate("() => [window.__wb.t0, window.__wb.t1]")
        ms = (t1 - t0) if t0 is not None else wall_ms
        self.rows.append({"kind": kind, "interaction": name, "ms": round(ms, 1),
                          "wall_ms": round(wall_ms, 1)})
        return ms

    def summary(self) -> dict:
        out: dict = {"target_p95_ms": TARGET_P95_MS, "machine_cpus": os.cpu_count(),
                     "measured": "input event -> changed DOM/Bokeh model, in the browser "
                                 "(performance.now, polled each animation frame)",
                     "interactions": self.rows}
        for kind in dict.fromkeys(r["kind"] for r in self.rows):
            values = [r["ms"] for r in self.rows if r["kind"] == kind]
            out[f"{kind}_p95_ms"] = round(float(np.percentile(values, 95)), 1)
        fine = [r["ms"] for r in self.rows if r["kind"] in ("classifier", "threshold",
                                                              "patient", "protocol",
                                                              "evaluation")]
        widgets = [r["ms"] for r in self.rows if r["kind"] != "tab switch"]
        out["p95_ms"] = round(float(np.percentile(fine, 95)), 1)
        out["p95_note"] = ("p95_ms: classifier, threshold, patient, protocol and evaluation "
                           "changes; first visits of a tab are reported apart")
        out["all_widgets_p95_ms"] = round(float(np.percentile(widgets, 95)), 1)
        return out


def _classifier_box(page, name: str):
    return page.locator(".wb-classifiers label").filter(
        has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).locator("input")


def _click_slider(page, fraction: float) -> None:
    """Tap the slider track; noUiSlider ignores a tap while the last one animates (300 ms),
    so wait that out first (not part of the measured latency: the clock starts at the
    pointer event)."""
    page.wait_for_timeout(400)
    base = page.locator(".noUi-base").first
    box = base.bounding_box()
    base.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})


def _tab(page, name: str):
    return page.locator(".bk-tab").filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))


def _shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_dashboard_in_a_real_browser(run_dir, run_facts):
    require_chromium()
    with panel_serve(APP, run_dir) as (url, _server), chromium_page() as (page, log):
        page.add_init_script(HELPERS)
        rec = Recorder(page)
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function("() => window.__wb.legend().length === 4 && "
                               "window.__wb.text('[data-metric=sensitivity]') !== null",
                               timeout=90_000)
        load_ms = (time.perf_counter() - started) * 1000
        _shot(page, "dashboard_performance")

        # ---- the classifier drives the ROC legend
        legend_lr = page.evaluate("() => window.__wb.legend()")
        assert all("/ lr: AUC" in t for t in legend_lr[:-1])
        has = "(name) => window.__wb.legend().some(t => t.includes('/ ' + name + ': AUC'))"
        lacks = "(name) => !window.__wb.legend().some(t => t.includes('/ ' + name + ': AUC'))"
        rec.measure("classifier", "check rf", lambda: _classifier_box(page, "rf").click(),
                    has, "rf")
        rec.measure("classifier", "uncheck lr", lambda: _classifier_box(page, "lr").click(),
                    lacks, "lr")
        legend_rf = page.evaluate("() => window.__wb.legend()")
        assert len(legend_rf) == 4 and all("/ rf: AUC" in t for t in legend_rf[:-1])
        aucs = [re.search(r"AUC (\S+)", t).group(1) for t in legend_lr[:-1] + legend_rf[:-1]]
        assert aucs[:3] != aucs[3:]  # the AUCs in the legend changed with the classifier
        rec.measure("classifier", "check lr", lambda: _classifier_box(page, "lr").click(),
                    has, "lr")
        rec.measure("classifier", "uncheck rf", lambda: _classifier_box(page, "rf").click(),
                    lacks, "rf")
        assert page.evaluate("() => window.__wb.legend()") == legend_lr

        # ---- the threshold drives the displayed sensitivity
        sens = {}
        changed = ("(prev) => window.__wb.text('[data-metric=threshold]') !== prev")
        for fraction in (0.9, 0.1, 0.7, 0.3, 0.5):
            before = page.evaluate("() => window.__wb.text('[data-metric=threshold]')")
            rec.measure("threshold", f"slider to {fraction:.0%}",
                        lambda f=fraction: _click_slider(page, f), changed, before)
            thr = float(page.evaluate("() => window.__wb.text('[data-metric=threshold]')"))
            sens[thr] = float(page.evaluate(
                "() => window.__wb.text('[data-metric=sensitivity]')"))
        low, high = min(sens), max(sens)
        assert high > 0.8 and low < 0.2, sens
        assert sens[low] > sens[high], sens  # a higher threshold finds fewer pCR patients
        _shot(page, "dashboard_threshold")

        # ---- the paper protocol carries the leakage warning
        for protocol in ("paper", "honest"):
            rec.measure("protocol", protocol, lambda p=protocol: page.locator(".bk-btn")
                        .filter(has_text=p).first.click(),
                        "(p) => window.__wb.titles().some(t => t.startsWith('ROC — ' + p))",
                        protocol)
            warning = page.evaluate("() => window.__wb.text('.wb-warning')") or ""
            roc_title = next(t for t in page.evaluate("() => window.__wb.titles()")
                             if t.startswith("ROC"))
            if protocol == "paper":
                assert LEAKAGE_WARNING in warning and PAPER_TITLE_WARNING in roc_title
                _shot(page, "dashboard_paper")
            else:
                assert not warning and PAPER_TITLE_WARNING not in roc_title

        # ---- the evaluated predictions switch in place too (no pointer event: wall clock)
        for split, label in (("cv", "CV out-of-fold (training)"), ("test", "test split")):
            rec.measure("evaluation", split, lambda lab=label: page.locator("select").first
                        .select_option(label=lab),
                        "(s) => window.__wb.titles().some(t => t.startsWith('ROC — honest "
                        "protocol, ' + s + ' split'))", split)

        # ---- the decision-curve marker follows the slider without redrawing
        rec.measure("tab switch", "Clinical utility", lambda: _tab(page, "Clinical utility")
                    .click(), "() => window.__wb.titles().some(t => t.startsWith('Decision'))")
        before = page.evaluate("() => window.__wb.spans()")
        rec.measure("threshold", "slider to 80% (decision curves)",
                    lambda: _click_slider(page, 0.8),
                    "(prev) => JSON.stringify(window.__wb.spans()) !== JSON.stringify(prev)",
                    before)
        _shot(page, "dashboard_utility")

        # ---- the SHAP beeswarm renders
        rec.measure("tab switch", "Explain", lambda: _tab(page, "Explain").click(),
                    "() => window.__wb.titles().some(t => t.startsWith('SHAP beeswarm'))")
        page.wait_for_function("() => window.__wb.models('Scatter').length > 0")
        _shot(page, "dashboard_explain")

        # ---- a malicious patient id is shown as text, never run
        bad = run_facts["malicious_id"]
        rec.measure("tab switch", "Patients", lambda: _tab(page, "Patients").click(),
                    "() => window.__wb.text('.tabulator-cell') !== null")
        assert page.evaluate("() => window.__wb.text('.wb-patient')") == bad  # the default
        cell = ".tabulator-cell[tabulator-field=patient_id]"
        other = page.evaluate(f"() => window.__wb.text('.tabulator-row:nth-child(2) {cell}')")
        shown = "(pid) => window.__wb.text('.wb-patient') === pid"
        assert other.startswith("P"), other
        rec.measure("patient", f"select {other}", lambda: page.locator(cell)
                    .filter(has_text=other).first.click(), shown, other)
        rec.measure("patient", "select the <script> patient",
                    lambda: page.locator(cell).filter(has_text=bad).first.click(), shown, bad)
        _shot(page, "dashboard_patients")
        for name in ("Signatures", "Cohort", "Audit"):
            _tab(page, name).click()
            page.wait_for_timeout(1500)
            _shot(page, f"dashboard_{name.lower()}")
        page.wait_for_function(f"() => (window.__wb.text('[data-ibsi]') || '').includes("
                               f"{json.dumps(run_facts['ibsi_line'])})")
        body = page.evaluate("() => document.body.innerText")
        page_errors, dialogs = list(log.errors), list(log.dialogs)

    summary = rec.summary()
    summary["initial_load_ms"] = round(load_ms, 1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard_latency.json").write_text(json.dumps(summary, indent=2))
    assert not page_errors, page_errors
    assert not dialogs, dialogs  # the <script> id never ran
    assert "could not" not in body
    # Latency is reported, not gated, on shared CI cores; set WORKBENCH_STRICT_LATENCY=1 to
    # enforce the target.
    if os.environ.get("WORKBENCH_STRICT_LATENCY"):
        assert summary["p95_ms"] <= TARGET_P95_MS, summary
