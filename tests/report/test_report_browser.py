"""The standalone HTML report in a real browser (Debian's chromium via Playwright): it loads
from a file with no network, raises no console error, draws every Bokeh figure on a canvas
and runs no injected script. Screenshot: ``test-artifacts/screenshots/report.png``."""

from __future__ import annotations

import pytest

from fixtures.browser import SCREENSHOTS, chromium_page, require_chromium
from workbench.report import build_report

pytestmark = [pytest.mark.slow, pytest.mark.ui]

#: Canvases inside Bokeh's shadow roots, and the figures BokehJS rendered.
COUNT_JS = """() => {
  let canvases = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) canvases++;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  const views = window.Bokeh ? Object.keys(window.Bokeh.index).length : 0;
  return {canvases, views, slots: document.querySelectorAll('[data-root-id]').length};
}"""


def test_report_renders_in_a_real_browser(run_dir, run_facts, tmp_path):
    require_chromium()
    report = build_report(run_dir, tmp_path / "report.html")
    with chromium_page(1400, 1000) as (page, log):
        page.goto(report.as_uri())
        page.wait_for_function("() => window.Bokeh && Object.keys(window.Bokeh.index).length"
                               " >= document.querySelectorAll('[data-root-id]').length",
                               timeout=60_000)
        page.wait_for_timeout(500)  # let the last canvases paint
        counts = page.evaluate(COUNT_JS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
        text = page.evaluate("() => document.body.innerText")
    assert not log.errors, log.errors
    assert not log.dialogs, log.dialogs  # the <script> patient id stayed text
    assert counts["slots"] >= 20 and counts["views"] >= counts["slots"], counts
    assert counts["canvases"] >= counts["slots"], counts  # every figure drawn on a canvas
    assert run_facts["malicious_id"] in text and run_facts["ibsi_line"] in text
