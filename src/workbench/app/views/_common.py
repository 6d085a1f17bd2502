"""What every view shares: the ``View`` base class, escaped HTML tables, banners and notes.

Views read the :class:`~workbench.app.store.DataStore` and the
:class:`~workbench.app.state.DashboardState`; they format and draw, never fit. Text views
return HTML strings (every value escaped here), so the layout can bind them to one
``pn.pane.HTML`` whose ``object`` is updated in place; figure views return HoloViews objects.
A view that cannot draw returns a note saying why instead of breaking the page.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import panel as pn
import param

from workbench.app.state import DashboardState
from workbench.app.store import EVALUATIONS
from workbench.evaluation.display import format_ci
from workbench.names import LEAKAGE_WARNING
from workbench.plots import uses_deep

log = logging.getLogger(__name__)

__all__ = ["CSS", "HTML", "View", "banner_html", "e", "fmt", "fmt_ci", "html_table",
           "note_html", "safe_figure", "safe_html", "split_label"]

#: Style of the dashboard's own HTML (tables, notes, banners).
CSS = """
.wb-table{border-collapse:collapse;font-size:13px;margin:4px 0}
.wb-table th,.wb-table td{border:1px solid #ccc;padding:2px 8px;text-align:left}
.wb-table th{background:#f2f2f2}.wb-note{color:#555;font-style:italic;margin:4px 0}
.wb-warning{background:#fff3cd;border:1px solid #e0b000;padding:6px 10px;margin:4px 0}
.wb-weights{background:#eef4ff;border:1px solid #99b;padding:4px 10px;margin:4px 0}
.wb-protocol{font-weight:600;margin:4px 0}.wb-cm td{width:110px;height:48px;
text-align:center;font-size:15px}.wb-big{font-size:15px}
"""


class HTML(pn.pane.HTML):
    """``pn.pane.HTML`` that stays correct while its tab is hidden.

    A hidden tab of ``pn.Tabs(dynamic=True)`` keeps its Bokeh models detached from the
    document and still updates them. Panel 1.9's HTML pane then computes its properties with
    ``document=None`` and, lacking the document's ``dist_url``, rewrites the *shared* cached
    ``loading.css`` stylesheet to the CDN — every component of the page then fetches it from
    the internet (an error offline). Updating with the session's document keeps it local.
    """

    def _update(self, ref: str, model) -> None:
        from panel.io.state import state

        doc = model.document or (state._views.get(ref, (None, None, None, None))[2])
        if model.document is None and doc is not None:
            model.update(**self._get_properties(doc))
            return
        super()._update(ref, model)


def e(value: object) -> str:
    """HTML-escaped text of ``value`` (``""`` for ``None``)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: float, digits: int = 2) -> str:
    """A number with ``digits`` decimals, ``n/a`` when missing."""
    try:
        return f"{float(value):.{digits}f}" if np.isfinite(float(value)) else "n/a"
    except (TypeError, ValueError):
        return "n/a"


def fmt_ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    """``"0.72 (0.55–0.88)"``, the interval left out when undefined."""
    return format_ci(value, lo, hi, digits)


def _cell(value: object) -> str:
    try:
        if value is None or pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def html_table(frame: pd.DataFrame, *, max_rows: int = 300, css_class: str = "wb-table",
               caption: str | None = None) -> str:
    """``frame`` as an HTML table, every header and cell escaped."""
    head = "".join(f"<th>{e(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.head(max_rows).itertuples(index=False))
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    more = (note_html(f"{len(frame) - max_rows} more rows not shown.")
            if len(frame) > max_rows else "")
    return (f'<table class="{e(css_class)}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{more}")


def note_html(text: str) -> str:
    """An italic note (escaped)."""
    return f'<p class="wb-note">{e(text)}</p>'


def split_label(split: str) -> str:
    """How the widgets name an evaluation (``test`` → ``test split``)."""
    return next((k for k, v in EVALUATIONS.items() if v == split), split)


def banner_html(state: DashboardState, *, deep: bool | None = None, what: str = "") -> str:
    """The line every tab opens with: which protocol and predictions the numbers come from,
    the leakage warning under the paper protocol, and the weights label when deep features
    with random weights are drawn."""
    evaluation = split_label(state.evaluation)
    parts = [f'<div class="wb-protocol">{e(what + " — " if what else "")}'
             f"{e(state.protocol)} protocol · {e(evaluation)}</div>"]
    if state.is_paper:
        parts.append(f'<div class="wb-warning">⚠ {e(LEAKAGE_WARNING)}</div>')
    deep = uses_deep(state.feature_sets) if deep is None else deep
    store = state.store
    if deep and store.weights_label and store.random_weights:
        parts.append(f'<div class="wb-weights">Deep features: {e(store.weights_label)}</div>')
    return "".join(parts)


def safe_html(method: Callable[..., str]) -> Callable[..., str]:
    """Turn an exception of an HTML view into a note naming the error."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs) -> str:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # one broken view must not break the page
            log.warning("view %s failed: %s", method.__name__, exc, exc_info=True)
            return note_html(f"could not show this: {type(exc).__name__}: {exc}")
    return wrapper


def safe_figure(method: Callable[..., object]) -> Callable[..., object]:
    """Turn an exception of a figure view into a note (an HTML pane) naming the error."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs) -> object:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            log.warning("view %s failed: %s", method.__name__, exc, exc_info=True)
            return HTML(note_html(f"could not draw this: {type(exc).__name__}: {exc}"))
    return wrapper


class View(param.Parameterized):
    """Base of the dashboard's views: holds the session's state and the shared store."""

    state = param.ClassSelector(class_=DashboardState, doc="the session's choices")

    def __init__(self, state: DashboardState, **params) -> None:
        super().__init__(state=state, **params)

    @property
    def store(self):
        """The run's :class:`~workbench.app.store.DataStore`."""
        return self.state.store

    @property
    def weights(self) -> str | None:
        """Weights label for figure titles (the plots show it on deep-feature figures)."""
        return self.store.weights_label

    def banner(self, what: str = "", *, deep: bool | None = None) -> str:
        """See :func:`banner_html`."""
        return banner_html(self.state, deep=deep, what=what)


def deep_any(names: Iterable[str]) -> bool:
    """Whether any feature set / block in ``names`` uses deep features."""
    return uses_deep([str(n) for n in names])
