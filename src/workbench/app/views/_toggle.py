"""``ModelFigure``: one Bokeh figure holding every model's curve; choosing models only
toggles which curves and legend entries are visible.

``pane`` (a ``pn.pane.Bokeh``) is what a view returns. Re-rendering a HoloViews overlay costs ~150 ms on the server plus a fresh canvas in the
browser; flipping ``visible`` on a few glyph renderers and legend items is a small document
patch. Each browser session owns its figures (a Bokeh model belongs to
one document), built from the HoloViews overlay the shared store caches.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ModelFigure"]


class ModelFigure:
    """A rendered overlay whose per-model curves can be shown or hidden in place.

    Parameters
    ----------
    overlay
        HoloViews overlay with one labelled curve per model; a legend label is the model
        name (``"<feature set> / <classifier>"``) or starts with ``"<name>: "``. Other
        labelled elements (chance, treat all, treat none) stay visible.
    model_names
        Names of every model in ``overlay``.
    """

    def __init__(self, overlay, model_names: Iterable[str]) -> None:
        import holoviews as hv
        import panel as pn
        from bokeh.models import Span

        self.fig = hv.render(overlay, backend="bokeh")
        self.pane = pn.pane.Bokeh(self.fig)
        names = list(model_names)
        self._legend = self.fig.legend[0] if self.fig.legend else None
        self._items = list(self._legend.items) if self._legend is not None else []
        self._model_of = {id(item): self._match(item, names) for item in self._items}
        self.marker = next((r for r in [*self.fig.center, *self.fig.renderers]
                            if isinstance(r, Span)), None)

    @staticmethod
    def _match(item, names: list[str]) -> str | None:
        label = getattr(item.label, "value", None) or ""
        return next((n for n in names if label == n or label.startswith(f"{n}: ")), None)

    def show(self, visible: Iterable[str], *, title: str | None = None) -> None:
        """Show the curves of the models named in ``visible`` and hide the others.

        Only ``visible`` flags change (renderers and legend items): reassigning the legend's
        item list would make Bokeh re-walk the whole document's model graph.
        """
        keep = set(visible)
        for item in self._items:
            model = self._model_of[id(item)]
            on = model is None or model in keep
            for renderer in item.renderers:
                if renderer.visible != on:
                    renderer.visible = on
            if item.visible != on:
                item.visible = on
        if title is not None and self.fig.title is not None and self.fig.title.text != title:
            self.fig.title.text = title
        self._push()

    def _push(self) -> None:
        """In a notebook, send the in-place changes (a server session sends them itself)."""
        import panel as pn

        pn.io.push_notebook(self.pane)

    def move_marker(self, location: float) -> None:
        """Move the figure's vertical marker (a ``Span``, e.g. the threshold) in place; the
        first call adds one when the figure has none."""
        from bokeh.models import Span

        if self.marker is None:
            self.marker = Span(location=float(location), dimension="height",
                               line_color="black", line_width=1.5, line_dash="dotdash")
            self.fig.add_layout(self.marker)
        elif self.marker.location != float(location):
            self.marker.location = float(location)
        self._push()

    def legend_labels(self, *, visible_only: bool = True) -> list[str]:
        """Legend labels, as the browser shows them."""
        return [getattr(i.label, "value", str(i.label)) for i in self._items
                if i.visible or not visible_only]
