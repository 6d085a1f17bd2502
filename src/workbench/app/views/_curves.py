"""``CurveFigure``: a Bokeh figure whose curves are exactly the rows of one data source.

The ROC and decision-curve views draw the chosen models as one ``multi_line`` glyph (named
:data:`CURVES`) on one ``ColumnDataSource``: a row per drawn curve, with its points, colour,
legend label and what the hover names (model, protocol, evaluation, AUC). Choosing the
protocol, the evaluation, feature sets or classifiers replaces the source's data with the
rows of the new selection — one small document patch, and nothing of another selection left
in the figure, visible or hidden. Reference lines (chance, treat all, treat none) are
separate renderers named :data:`REFERENCE`; ``treat all`` depends on the evaluated patients and
is replaced with the data too.

A browser (or a test) counts the curves on screen as the rows of the visible
:data:`CURVES` renderers and checks their ``protocol`` and ``split`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.app.views._common import split_label
from workbench.evaluation.display import format_ci
from workbench.plots import PALETTE, model_name

__all__ = ["CURVES", "REFERENCE", "Curve", "CurveFigure", "curves_title", "drawn_curves"]

#: Name of the glyph renderer holding the drawn models' curves.
CURVES = "wb-curves"
#: Name of the reference-line renderers (chance, treat all, treat none).
REFERENCE = "wb-reference"
_COLUMNS = ("xs", "ys", "color", "label", "model", "protocol", "split", "auc")


@dataclass(frozen=True)
class Curve:
    """One drawn model's curve and what its legend and hover say."""

    x: np.ndarray
    y: np.ndarray
    color: str
    label: str
    model: str
    protocol: str
    split: str
    auc: str


class CurveFigure:
    """A figure of model curves and reference lines, updated in place.

    Parameters
    ----------
    title, x_label, y_label
        Axis and title text (the title changes with :meth:`show`).
    x_range, y_range
        Fixed axis limits.
    references
        ``{legend label: (x, y, colour, dash)}`` lines drawn under the curves; their data
        can be replaced with :meth:`show`.
    width, height
        Figure size in pixels; the legend sits to the right of the plot.
    """

    def __init__(self, *, title: str, x_label: str, y_label: str,
                 x_range: tuple[float, float], y_range: tuple[float, float],
                 references: dict[str, tuple] | None = None, width: int = 780,
                 height: int = 500) -> None:
        import panel as pn
        from bokeh.models import (
            ColumnDataSource,
            HoverTool,
            Legend,
            LegendItem,
            Range1d,
        )
        from bokeh.plotting import figure

        fig = figure(width=width, height=height, title=title, x_axis_label=x_label,
                     y_axis_label=y_label, x_range=Range1d(*x_range), y_range=Range1d(*y_range),
                     tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above")
        fig.title.text_font_size = "13px"
        self._refs: dict[str, ColumnDataSource] = {}
        items = []
        for label, (x, y, color, dash) in (references or {}).items():
            src = ColumnDataSource({"x": list(x), "y": list(y)})
            r = fig.line("x", "y", source=src, line_color=color, line_dash=dash,
                         line_width=1.5, name=REFERENCE)
            self._refs[label] = src
            items.append(LegendItem(label=label, renderers=[r]))
        self.source = ColumnDataSource({c: [] for c in _COLUMNS})
        self.renderer = fig.multi_line("xs", "ys", source=self.source, line_color="color",
                                       line_width=2.5, name=CURVES,
                                       hover_line_width=4, hover_line_color="color")
        items.insert(0, LegendItem(label={"field": "label"}, renderers=[self.renderer]))
        legend = Legend(items=items, location="top_left", label_text_font_size="11px",
                        spacing=1, click_policy="none")
        fig.add_layout(legend, "right")
        fig.add_tools(HoverTool(renderers=[self.renderer], tooltips=[
            ("model", "@model"), ("protocol", "@protocol"), ("evaluation", "@split"),
            ("AUC", "@auc")], line_policy="interp"))
        self.fig, self.legend = fig, legend
        self.marker = None
        self.pane = pn.pane.Bokeh(fig)

    def show(self, curves: Sequence[Curve], *, title: str | None = None,
             references: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None
             ) -> None:
        """Draw exactly ``curves`` (replacing the source's data); optionally a new title and
        new data for reference lines."""
        data = {"xs": [c.x.tolist() for c in curves], "ys": [c.y.tolist() for c in curves],
                "color": [c.color for c in curves], "label": [c.label for c in curves],
                "model": [c.model for c in curves], "protocol": [c.protocol for c in curves],
                "split": [c.split for c in curves], "auc": [c.auc for c in curves]}
        if data != dict(self.source.data):
            self.source.data = data
        for label, (x, y) in (references or {}).items():
            new = {"x": list(x), "y": list(y)}
            if dict(self._refs[label].data) != new:
                self._refs[label].data = new
        if title is not None and self.fig.title.text != title:
            self.fig.title.text = title
        self._push()

    def move_marker(self, location: float) -> None:
        """Move the vertical marker (the decision threshold), adding it on first use."""
        from bokeh.models import Span

        if self.marker is None:
            self.marker = Span(location=float(location), dimension="height",
                               line_color="black", line_width=1.5, line_dash="dotdash")
            self.fig.add_layout(self.marker)
        elif self.marker.location != float(location):
            self.marker.location = float(location)
        self._push()

    def _push(self) -> None:
        """In a notebook, send the in-place changes (a server session sends them itself)."""
        import panel as pn

        pn.io.push_notebook(self.pane)

    # -- what is drawn, for tests and the browser check
    @property
    def drawn(self) -> list[dict[str, str]]:
        """One ``{model, protocol, split, label}`` per curve in the figure."""
        d = self.source.data
        return [{"model": m, "protocol": p, "split": s, "label": lab}
                for m, p, s, lab in zip(d["model"], d["protocol"], d["split"], d["label"],
                                        strict=True)]

    def legend_labels(self) -> list[str]:
        """Legend entries as the browser lists them: the curves' labels, then the
        references."""
        refs = [i.label.get("value") if isinstance(i.label, dict)
                else getattr(i.label, "value", i.label) for i in self.legend.items[1:]]
        return [*dict.fromkeys(self.source.data["label"]), *map(str, refs)]


def drawn_curves(state, kind: str) -> tuple[list[Curve], list[str]]:
    """The ``kind`` curve (``roc`` | ``net_benefit``) of every drawn model of ``state``
    (:class:`~workbench.app.state.DashboardState`), in order, and the names of drawn models
    that have none here (one class evaluated, or a withheld estimate)."""
    store, out, missing = state.store, [], []
    for i, (fs, clf) in enumerate(state.models):
        name = model_name(fs, clf)
        xy = store.curve(state.protocol, state.evaluation, fs, clf, kind)
        if xy is None:
            missing.append(name)
            continue
        auc = format_ci(*store.summary(state.protocol, state.evaluation, fs, clf)["auc"])
        label = f"{name}: AUC {auc}" if kind == "roc" else name
        out.append(Curve(xy[0], xy[1], PALETTE[i % len(PALETTE)], label, name,
                         state.protocol, state.evaluation, auc))
    return out, missing


def curves_title(what: str, state, counts: str, missing: list[str]) -> str:
    """``"<what> — <protocol> protocol · <evaluation> <counts>"``; the paper protocol is
    marked leaky (the full warning is the tab's banner), and drawn models without a curve
    are named."""
    leaky = " (leaky)" if state.is_paper else ""
    title = f"{what} — {state.protocol} protocol{leaky} · {split_label(state.evaluation)}"
    title += f" {counts}" if counts else ""
    if missing:
        title += f"\nno curve for {', '.join(missing[:3])}" + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else "") + (
            " (one class evaluated, or estimate withheld: see the metrics table)")
    return title
