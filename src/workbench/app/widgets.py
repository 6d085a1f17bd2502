"""Panel components tuned for the dashboard: widgets whose browser events are applied as one
batch, and a one-off stylesheet sync at page load.

Both work around costs measured on 2 cores (see ``tests/app/test_browser.py``): without
batching, each changed pane is its own websocket message and browser re-render; without the
sync, the first change of every table re-sends its theme stylesheets.
"""

from __future__ import annotations

import panel as pn

from workbench.app.views._common import HTML

__all__ = ["Button", "CheckBoxGroup", "FloatSlider", "Held", "RadioButtonGroup", "Select", "Tabs",
           "Tabulator", "sync_styles"]


class Held:
    """Mixin: a browser event on this component, and every view update it triggers, reach
    the browser as one document patch (``pn.io.hold``) instead of one message per changed
    pane — fewer round trips and a single re-render on a 2-core machine. ``freeze`` defers
    Bokeh's model-graph walk to the end of the batch instead of once per changed pane."""

    def _process_events(self, events) -> None:
        with pn.io.hold(freeze=True):
            super()._process_events(events)


class Button(Held, pn.widgets.Button):
    """``pn.widgets.Button`` with batched updates (:class:`Held`)."""


class CheckBoxGroup(Held, pn.widgets.CheckBoxGroup):
    """``pn.widgets.CheckBoxGroup`` (check boxes) with batched updates (:class:`Held`)."""


class FloatSlider(Held, pn.widgets.FloatSlider):
    """``pn.widgets.FloatSlider`` (slider) with batched updates (:class:`Held`)."""


class RadioButtonGroup(Held, pn.widgets.RadioButtonGroup):
    """``pn.widgets.RadioButtonGroup`` (radio buttons) with batched updates (:class:`Held`)."""


class Select(Held, pn.widgets.Select):
    """``pn.widgets.Select`` (drop-down) with batched updates (:class:`Held`)."""


class Tabulator(Held, pn.widgets.Tabulator):
    """``pn.widgets.Tabulator`` (table (row selection)) with batched updates (:class:`Held`)."""


class Tabs(Held, pn.Tabs):
    """``pn.Tabs`` (tabs (switching renders a tab)) with batched updates (:class:`Held`)."""


def sync_styles(layout) -> None:
    """Refresh every rendered HTML pane once, right after the page loads.

    Panel sends a pane's theme stylesheets again on its first update (the model was built
    before the template applied its design), and that makes Bokeh re-walk the document:
    done here, at load, it is not paid by the user's first click.
    """
    with pn.io.hold(freeze=True):
        for pane in layout.select(HTML):
            if pane._models:
                pane.param.trigger("object")
