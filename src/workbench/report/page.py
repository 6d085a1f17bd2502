"""The HTML page of the report: escaped text, tables and HoloViews figures, rendered into
one standalone file (Bokeh JS/CSS inline: works offline).

Every text is HTML-escaped (:func:`escape`); a section that fails to build becomes a note
(:meth:`Page.section`), and a figure that fails to draw becomes a note naming the error.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

import pandas as pd

from workbench.names import LEAKAGE_WARNING

log = logging.getLogger(__name__)

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


def escape(text: object) -> str:
    """``text`` (``None`` = empty) with ``& < > " '`` escaped for HTML."""
    return html.escape("" if text is None else str(text), quote=True)


class Page:
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
        self.add(f'<h{level} id="{escape(anchor)}">{escape(text)}</h{level}>')

    def para(self, text: str, cls: str | None = None) -> None:
        self.add(f'<p{f" class={cls!r}" if cls else ""}>{escape(text)}</p>')

    def note(self, text: str) -> None:
        self.para(text, "note")

    def warning(self, text: str) -> None:
        self.add(f'<div class="warning"><strong>⚠</strong> {escape(text)}</div>')

    def table(self, frame: pd.DataFrame, *, max_rows: int = 500) -> None:
        head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>"
                       for row in frame.head(max_rows).itertuples(index=False))
        self.add(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if len(frame) > max_rows:
            self.note(f"{len(frame) - max_rows} more rows not shown.")

    def figure(self, obj: object, *, paper: bool = False, deep: bool = False,
               caption: str = "") -> None:
        self.figures.append(obj)
        lines = [f"<span>{escape(caption)}</span>"] if caption else []
        if paper:
            lines.append(f'<div class="warning">⚠ {escape(LEAKAGE_WARNING)}</div>')
        if deep:
            lines.append(f'<div class="weights">Deep features: '
                         f'{escape(self.weights_label or "weights not recorded")}</div>')
        self.add(f"<figure><!--FIGURE {len(self.figures) - 1}--><figcaption>"
                 f"{''.join(lines)}</figcaption></figure>")

    def section(self, title: str, build: Callable[[], None]) -> None:
        """Heading, then ``build()``; an error becomes a note, never a lost report."""
        self.heading(title)
        try:
            build()
        except Exception as exc:  # one broken section must not lose the whole report
            log.warning("report section %r failed: %s", title, exc)
            log.debug("report section %r: the traceback", title, exc_info=True)  # with -v
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
                slots[i] = f'<p class="note">could not draw this figure: {escape(exc)}</p>'
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
                f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n{assets}{script}\n"
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
