"""Figures a session renders once and then changes in place.

``ModelFigure``: one Bokeh figure holding every model's curve of every (protocol,
evaluation) key; choosing models, the protocol or the evaluation only toggles which curves and
legend entries are visible. ``SwapFigure``: one Bokeh figure whose glyph data, ranges and
title are replaced by those of another key's rendering (the AUC heatmap).

``pane`` (a ``pn.pane.Bokeh``) is what a view returns. Re-rendering a HoloViews overlay costs
~150 ms on the server plus a fresh canvas in the browser; flipping ``visible`` on a few glyph
renderers and legend items, or replacing a few columns of data, is a small document patch.
Each browser session owns its figures (a Bokeh model belongs to one document), built from the
HoloViews overlays the shared store caches.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping

__all__ = ["ModelFigure", "SwapFigure"]


def _render(overlay):
    import holoviews as hv

    return hv.render(overlay, backend="bokeh")


def _hover(fig):
    from bokeh.models import HoverTool

    return next((t for t in fig.toolbar.tools if isinstance(t, HoverTool)), None)


def _limits(fig) -> dict[str, tuple[float, float]]:
    """Explicit (``Range1d``) axis limits of a rendered figure."""
    from bokeh.models import Range1d

    return {axis: (rng.start, rng.end) for axis in ("x_range", "y_range")
            if isinstance(rng := getattr(fig, axis), Range1d)}


def _transform(glyph, prop: str):
    """The colour mapper of a glyph's field spec (``None`` when it has none)."""
    spec = getattr(glyph, prop, None)
    return spec.get("transform") if isinstance(spec, dict) else getattr(spec, "transform", None)


class ModelFigure:
    """Rendered overlays (one per key) merged into one figure whose per-model curves can be
    shown or hidden in place.

    Parameters
    ----------
    overlay
        HoloViews overlay with one labelled curve per model; a legend label is the model
        name (``"<feature set> / <classifier>"``) or starts with ``"<name>: "``. Other
        labelled elements (chance, treat all, treat none) show whenever their key shows.
    model_names
        Names of every model in ``overlay``.
    """

    def __init__(self, overlay, model_names: Iterable[str]) -> None:
        self._build({None: (overlay, list(model_names))})

    @classmethod
    def keyed(cls, parts: Mapping[Hashable, tuple | Callable[[], tuple]]) -> ModelFigure:
        """One figure for several keys (e.g. ``(protocol, evaluation)``): ``parts`` maps a
        key to its ``(overlay, model_names)``, or to a function returning them that runs when
        the key is first shown (or :meth:`build_pending`); the first key shows first."""
        self = cls.__new__(cls)
        self._build(dict(parts))
        return self

    def _build(self, parts: dict) -> None:
        import panel as pn
        from bokeh.models import Span

        self._items, self._limits, self._titles = [], {}, {}
        self.fig = self._legend = None
        self._pending = {k: v for k, v in parts.items() if callable(v)}
        for key, part in parts.items():
            if self.fig is None or not callable(part):
                self._add(key, *(part() if callable(part) else part))
        self.key = next(iter(parts))
        self.pane = pn.pane.Bokeh(self.fig)
        self.marker = next((r for r in [*self.fig.center, *self.fig.renderers]
                            if isinstance(r, Span)), None)
        if len(parts) > 1:
            self._apply(None, self.key)
            self._set_title(self._titles[self.key])

    def _add(self, key: Hashable, overlay, names: Iterable[str]) -> None:
        """Render ``key``'s overlay; from the second key on, move its curves (hidden) and
        legend entries into the first key's figure."""
        self._pending.pop(key, None)
        fig = _render(overlay)
        self._limits[key] = _limits(fig)
        self._titles[key] = fig.title.text if fig.title is not None else None
        legend = fig.legend[0] if fig.legend else None
        items = list(legend.items) if legend is not None else []
        self._items += [(item, key, self._match(item, list(names))) for item in items]
        base = self.fig
        if base is None:
            self.fig, self._legend = fig, legend
            return
        for item in items:
            item.visible = False
            for renderer in item.renderers:
                renderer.visible = False
        moved = [r for r in fig.renderers if r not in base.renderers]
        fig.renderers = []
        base.renderers.extend(moved)
        if self._legend is not None:
            self._legend.items.extend(items)
        if (hover := _hover(fig)) is not None:
            mine = _hover(base)
            if mine is not None and mine.tooltips == hover.tooltips:
                mine.renderers = [*mine.renderers, *hover.renderers]
            else:
                base.toolbar.tools.append(hover)

    def build_pending(self) -> None:
        """Render every key not rendered yet (e.g. right after the page shows the figure,
        so a later switch only toggles)."""
        for key in list(self._pending):
            if key in self._pending:
                self._add(key, *self._pending[key]())

    @staticmethod
    def _match(item, names: list[str]) -> str | None:
        label = getattr(item.label, "value", None) or ""
        return next((n for n in names if label == n or label.startswith(f"{n}: ")), None)

    @property
    def keys(self) -> list:
        """Keys this figure can show."""
        return [*self._limits, *self._pending]

    def _apply(self, keep: set[str] | None, key) -> None:
        for item, item_key, model in self._items:
            on = item_key == key and (model is None or keep is None or model in keep)
            for renderer in item.renderers:
                if renderer.visible != on:
                    renderer.visible = on
            if item.visible != on:
                item.visible = on
        for axis, (start, end) in self._limits.get(key, {}).items():
            rng = getattr(self.fig, axis)
            if (rng.start, rng.end) != (start, end):
                rng.update(start=start, end=end)

    def show(self, visible: Iterable[str], *, key: Hashable = None,
             title: str | None = None) -> None:
        """Show the curves of ``key`` (default: the key shown now) of the models named in
        ``visible``, and hide the others; the title becomes ``title`` (default: the title
        ``key``'s overlay was rendered with).

        Only ``visible`` flags change (renderers and legend items): reassigning the legend's
        item list would make Bokeh re-walk the whole document's model graph.
        """
        if key is not None and key not in self.keys:
            raise KeyError(f"this figure has no curves for {key!r}; it has {self.keys}")
        self.key = self.key if key is None else key
        if self.key in self._pending:
            self._add(self.key, *self._pending[self.key]())
        self._apply(set(visible), self.key)
        self._set_title(self._titles.get(self.key) if title is None else title)
        self._push()

    def _set_title(self, title: str | None) -> None:
        if title is not None and self.fig.title is not None and self.fig.title.text != title:
            self.fig.title.text = title

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
        return [getattr(i.label, "value", str(i.label)) for i, _, _ in self._items
                if i.visible or not visible_only]

    def shown_renderers(self) -> list:
        """Glyph renderers of the key shown now (visible or not)."""
        return [r for i, k, _ in self._items if k == self.key for r in i.renderers]


class SwapFigure:
    """A figure whose glyph data, factor ranges, size, colour limits and title follow
    another key's rendering of the same plot; rendered per key once, swapped in place.

    Parameters
    ----------
    build
        ``build(key)`` returns the HoloViews object of ``key``.
    keys
        Every key, rendered now (so a later :meth:`show` only copies data); the first is
        shown first.
    """

    def __init__(self, build: Callable[[Hashable], object], keys: Iterable[Hashable]) -> None:
        import panel as pn

        self._build = build
        self._templates = {key: _render(build(key)) for key in keys}
        self.key = next(iter(self._templates))
        self.fig = _render(build(self.key))  # displayed; templates are never displayed
        self.pane = pn.pane.Bokeh(self.fig)

    @staticmethod
    def _compatible(a, b) -> bool:
        return (len(a.renderers) == len(b.renderers)
                and all(type(x.glyph) is type(y.glyph) and hasattr(x, "data_source")
                        for x, y in zip(a.renderers, b.renderers, strict=True))
                and type(a.x_range) is type(b.x_range) and type(a.y_range) is type(b.y_range))

    def show(self, key: Hashable) -> None:
        """Show ``key``'s data (in place when the renderings match, else a fresh figure)."""
        from bokeh.models import FactorRange, Range1d

        if key == self.key:
            return
        src = self._templates[key]
        self.key = key
        if not self._compatible(self.fig, src):
            self.fig = _render(self._build(key))
            self.pane.object = self.fig
            return
        for dst_r, src_r in zip(self.fig.renderers, src.renderers, strict=True):
            dst_r.data_source.data = dict(src_r.data_source.data)
            for prop in ("fill_color", "line_color", "text_color"):
                dst_t, src_t = _transform(dst_r.glyph, prop), _transform(src_r.glyph, prop)
                if dst_t is not None and src_t is not None and hasattr(dst_t, "low"):
                    dst_t.update(low=src_t.low, high=src_t.high)
        for axis in ("x_range", "y_range"):
            dst, new = getattr(self.fig, axis), getattr(src, axis)
            if isinstance(dst, FactorRange) and list(dst.factors) != list(new.factors):
                dst.factors = list(new.factors)
            elif isinstance(dst, Range1d):
                dst.update(start=new.start, end=new.end)
        for prop in ("width", "height"):
            if getattr(self.fig, prop) != getattr(src, prop):
                setattr(self.fig, prop, getattr(src, prop))
        if self.fig.title is not None and src.title is not None:
            self.fig.title.text = src.title.text
