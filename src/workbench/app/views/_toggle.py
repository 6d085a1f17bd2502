"""``SwapFigure``: a figure a session renders once and then changes in place — one Bokeh
figure whose glyph data, ranges and title are replaced by those of another key's rendering
(the AUC heatmap). The model curves have their own figure,
:class:`~workbench.app.views._curves.CurveFigure`.

``pane`` (a ``pn.pane.Bokeh``) is what a view returns. Re-rendering a HoloViews overlay costs
~150 ms on the server plus a fresh canvas in the browser; replacing a few columns of data is
a small document patch. Each browser session owns its figures (a Bokeh model belongs to one
document), built from the HoloViews objects the shared store caches.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

__all__ = ["SwapFigure"]


def _render(overlay):
    import holoviews as hv

    return hv.render(overlay, backend="bokeh")


def _transform(glyph, prop: str):
    """The colour mapper of a glyph's field spec (``None`` when it has none)."""
    spec = getattr(glyph, prop, None)
    return spec.get("transform") if isinstance(spec, dict) else getattr(spec, "transform", None)


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
