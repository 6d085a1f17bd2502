"""The dashboard in a real browser, on a run of the demo's size: ``panel serve
apps/dashboard.py`` on a free localhost port, driven by Playwright + Debian's chromium.

The run (``demo_run_dir``: 163 patients, 12 feature sets × 10 classifiers, both protocols) is
built once per test session. One browser session walks what a user does and checks, after
every switch, what the page *draws*: the ROC and the decision curves hold exactly the chosen
protocol × evaluation × feature sets × classifiers — one curve renderer, no curve of another
protocol or evaluation, no stray line. It also checks the leakage warning, the threshold
(sensitivity, decision-curve marker), every tab without console errors, and that a
``<script>`` patient id stays text.

First load and the latency of every interaction (input event → changed page, measured in the
browser) go to ``test-artifacts/dashboard_latency.json``, screenshots of every tab to
``test-artifacts/screenshots/``. The test fails above 4× the targets (first load 5 s,
p95 250 ms per interaction kind; preset buttons 500 ms and first visits of a tab 2 s, see
``fixtures.browser.BULK_TARGETS_MS``): generous for shared CI cores, tight enough that a 30 s
load cannot pass. ``benchmarks/dashboard.py`` holds the targets themselves. Chromium is
required: ``.ci/run`` installs it; without it the test fails, saying how to install it
(``-m "not ui"`` leaves the browser tests out).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fixtures.browser import (
    ARTIFACTS,
    EXACT,
    LOAD_TARGET_S,
    DashboardPage,
    Selection,
    assert_exact,
    chromium_page,
    p95_target,
    panel_serve,
    require_chromium,
)
from fixtures.validation_folder import write_validation_folder
from workbench.app.store import DataStore
from workbench.names import CLASSIFIER_NAMES, LEAKAGE_WARNING, MODEL_STRATEGIES

pytestmark = [pytest.mark.slow, pytest.mark.ui]

APP = Path(__file__).resolve().parents[2] / "apps" / "dashboard.py"
CEILING = 4.0  # the test fails above CEILING x target

def test_dashboard_at_demo_size_in_a_real_browser(demo_run_dir, demo_run_facts, tmp_path):
    require_chromium()
    # the demo's shape, plus an external validation of the demo's size (1,000 patients), in a
    # copy: the other tests of the session see the run as committed
    demo_run_dir = Path(shutil.copytree(demo_run_dir, tmp_path / "run"))
    write_validation_folder(demo_run_dir / "validation" / "external-site", n=1000)
    store = DataStore(demo_run_dir)
    assert store.validations == ["external-site"]
    sel = Selection(store)
    # 12 feature sets; 10 classifiers, then the 4 strategy models (registry order)
    assert len(store.feature_sets) == 12 and store.feature_sets[0] == "clinical"
    assert store.classifiers == [*CLASSIFIER_NAMES, *MODEL_STRATEGIES]
    with panel_serve(APP, demo_run_dir) as (url, server), chromium_page() as (page, log):
        server_start_s = server.started_s  # panel serve --warm: until the port opens
        dash = DashboardPage(page)
        load_s = dash.open(url)
        rec = dash.rec

        def switch(kind: str, name: str, action, prefix: str = "ROC") -> None:
            rec.measure(kind, name, action, EXACT, sel.expected(prefix))
            assert_exact(dash, sel, prefix)

        # ---- the default view: the clinical reference + each family's best, with a legend
        fig = assert_exact(dash, sel, "ROC")
        assert 2 <= len(fig["rows"]) <= 6, fig["rows"]
        legend = dash.js("() => window.__wb.legend()")
        assert all(any(lab.startswith(r["model"] + ": AUC ") for lab in legend)
                   for r in fig["rows"]), legend
        assert "chance" in legend
        dash.shot("performance")

        # ---- classifiers and feature sets: exactly the ticked ones
        other_clf = next(c for c in store.classifiers if c not in sel.clfs)
        other_set = next(s for s in store.feature_sets if s not in sel.sets)
        for what, name in (("classifiers", other_clf), ("feature-sets", other_set),
                           ("classifiers", other_clf), ("feature-sets", other_set)):
            sel.toggle(what, name)
            switch(what.replace("-", " ").rstrip("s"), f"toggle {name}",
                   lambda w=what, n=name: dash.box(w, n).click())

        # ---- protocol back and forth: never a curve of the other protocol
        for protocol in ("paper", "honest", "paper", "honest"):
            sel.protocol = protocol
            switch("protocol", protocol,
                   lambda p=protocol: page.locator(".bk-btn").filter(has_text=p).first.click())
            warning = dash.js("() => window.__wb.text('.wb-warning')") or ""
            assert (LEAKAGE_WARNING in warning) == (protocol == "paper")
            if protocol == "paper" and not (ARTIFACTS / "screenshots" / "paper.png").exists():
                dash.shot("paper")

        # ---- the evaluated predictions
        for split, label in (("cv", "CV out-of-fold (training)"), ("test", "test split")):
            sel.split = split
            switch("evaluation", split,
                   lambda lab=label: page.locator("select").first.select_option(label=lab))

        # ---- one click to everything, one click back
        for css, change in (("wb-all-classifiers", {"clfs": list(store.classifiers)}),
                            ("wb-default-models", {"sets": sel.default[0],
                                                   "clfs": sel.default[1]}),
                            ("wb-all-feature-sets", {"sets": list(store.feature_sets)}),
                            ("wb-default-models", {"sets": sel.default[0],
                                                   "clfs": sel.default[1]})):
            sel.sets = list(change.get("sets", sel.sets))
            sel.clfs = list(change.get("clfs", sel.clfs))
            switch("preset button", css, lambda c=css: dash.button(c).click())

        # ---- the threshold drives the displayed sensitivity
        sens = {}
        changed = "(prev) => window.__wb.text('[data-metric=threshold]') !== prev"
        for fraction in (0.9, 0.1, 0.7, 0.3, 0.5):
            before = dash.js("() => window.__wb.text('[data-metric=threshold]')")
            rec.measure("threshold", f"slider to {fraction:.0%}",
                        lambda f=fraction: dash.slide(f), changed, before)
            thr = float(dash.js("() => window.__wb.text('[data-metric=threshold]')"))
            sens[thr] = float(dash.js("() => window.__wb.text('[data-metric=sensitivity]')"))
        assert sens[min(sens)] >= sens[max(sens)], sens

        # ---- decision curves: exact too, and the marker follows the slider
        rec.measure("tab (first visit)", "Clinical utility",
                    lambda: dash.tab("Clinical utility").click(), EXACT,
                    sel.expected("Decision curves"))
        assert_exact(dash, sel, "Decision curves")
        before = dash.js("() => window.__wb.spans()")
        rec.measure("threshold", "slider to 80% (decision curves)", lambda: dash.slide(0.8),
                    "(prev) => JSON.stringify(window.__wb.spans()) !== JSON.stringify(prev)",
                    before)
        for protocol in ("paper", "honest"):
            sel.protocol = protocol
            switch("protocol", f"{protocol} (decision curves)",
                   lambda p=protocol: page.locator(".bk-btn").filter(has_text=p).first.click(),
                   prefix="Decision curves")
        dash.shot("clinical_utility")

        # ---- the other tabs draw, without errors
        cell = ".tabulator-cell[tabulator-field=patient_id]"
        shown = "(pid) => window.__wb.text('.wb-patient') === pid"
        for name, ready in (
                ("Signatures", "() => window.__wb.titles().some(t => t.includes('selection'))"),
                ("Explain", "() => window.__wb.titles().some(t => t.startsWith('SHAP'))"),
                ("Patients", "() => window.__wb.text('.tabulator-cell') !== null"),
                ("Cohort", "() => window.__wb.text('.wb-table') !== null"),
                ("Audit", "() => window.__wb.text('[data-ibsi]') !== null"),
                ("Validation", "() => window.__wb.text('[data-headline]') !== null")):
            rec.measure("tab (first visit)", name, lambda n=name: dash.tab(n).click(), ready)
            page.wait_for_timeout(300)
            dash.shot(name.lower())
            if name == "Patients":
                for row in (2, 3):
                    pid = dash.js(f"() => window.__wb.text('.tabulator-row:nth-child({row}) "
                                  f"{cell}')")
                    rec.measure("patient", f"select {pid}", lambda p=pid: page.locator(cell)
                                .filter(has_text=p).first.click(), shown, pid)
                bad = demo_run_facts["malicious_id"]
                rec.measure("patient", "select the <script> patient", lambda b=bad: page
                            .locator(cell).filter(has_text=b).first.click(), shown, bad)

        # ---- after idling, the Performance tab still draws exactly the selection
        dash.tab("Performance").click()
        page.wait_for_timeout(2000)
        assert_exact(dash, sel, "ROC")
        body = dash.js("() => document.body.innerText")
        page_errors, dialogs = list(log.errors), list(log.dialogs)

    p95 = rec.p95()
    summary = {
        "run": "demo-size fixture: 163 patients, 12 feature sets x 10 classifiers, honest + "
               "paper, + 4 strategies x 4 feature sets (honest)",
        "machine_cpus": os.cpu_count(),
        "targets": {"first_load_s": LOAD_TARGET_S,
                    "p95_ms": {k: p95_target(k) for k in p95}},
        "ceiling": f"test fails above {CEILING} x target",
        "server_start_s": server_start_s, "first_load_s": round(load_s, 2),
        "p95_ms_by_kind": p95,
        "measured": "input event -> changed Bokeh model / DOM, in the browser "
                    "(performance.now, polled each animation frame)",
        "interactions": rec.rows}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard_latency.json").write_text(json.dumps(summary, indent=2))
    assert not page_errors, page_errors
    assert not dialogs, dialogs  # the <script> id never ran
    assert "could not" not in body
    assert load_s <= CEILING * LOAD_TARGET_S, summary
    slow = {k: v for k, v in p95.items() if v > CEILING * p95_target(k)}
    assert not slow, summary
