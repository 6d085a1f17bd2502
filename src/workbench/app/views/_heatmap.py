"""``HeatmapFigure``: the AUC of every classifier × feature set, one Bokeh figure per
session whose cell data is replaced when the protocol or the evaluation changes.

Every key (protocol, evaluation) shares the same axes (the run's classifiers and feature
sets), so a switch replaces one data source's columns and the title — no HoloViews render on
the server, no new canvas in the browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from workbench.evaluation.display import format_ci

__all__ = ["HEATMAP", "HeatmapFigure"]

#: Name of the heatmap's cell renderer.
HEATMAP = "wb-heatmap"


class HeatmapFigure:
    """Cells ``(classifier, feature set)`` coloured by a value in [0, 1].

    Parameters
    ----------
    classifiers, feature_sets
        The axes, in the run's order (feature sets top to bottom).
    value_name
        What the colour shows (``AUC``), for the hover and the colour bar.
    """

    def __init__(self, classifiers: Sequence[str], feature_sets: Sequence[str], *,
                 value_name: str = "AUC") -> None:
        import panel as pn
        from bokeh.models import (
            ColorBar,
            ColumnDataSource,
            FactorRange,
            HoverTool,
            LinearColorMapper,
        )
        from bokeh.palettes import RdBu11
        from bokeh.plotting import figure

        self.classifiers, self.feature_sets = list(classifiers), list(feature_sets)
        width = 200 + 70 * len(self.classifiers)
        height = 110 + 34 * len(self.feature_sets)
        fig = figure(width=width, height=height, title=value_name,
                     x_range=FactorRange(*self.classifiers),
                     y_range=FactorRange(*reversed(self.feature_sets)),
                     tools="save", toolbar_location="above", x_axis_location="above")
        fig.title.text_font_size = "13px"
        fig.xaxis.major_label_orientation = 0.6
        fig.grid.visible = False
        fig.axis.axis_line_color = None
        mapper = LinearColorMapper(palette=list(reversed(RdBu11)), low=0.0, high=1.0,
                                   nan_color="#dddddd")
        self.source = ColumnDataSource({"classifier": [], "feature_set": [], "value": [],
                                        "text": [], "ci": []})
        cells = fig.rect("classifier", "feature_set", 1, 1, source=self.source,
                         fill_color={"field": "value", "transform": mapper},
                         line_color="white", name=HEATMAP)
        fig.text("classifier", "feature_set", text="text", source=self.source,
                 text_align="center", text_baseline="middle", text_font_size="11px")
        fig.add_layout(ColorBar(color_mapper=mapper, width=10, title=value_name), "right")
        fig.add_tools(HoverTool(renderers=[cells], tooltips=[
            ("model", "@feature_set / @classifier"), (value_name, "@ci")]))
        self.fig = fig
        self.pane = pn.pane.Bokeh(fig)

    def show(self, cells: Mapping[tuple[str, str], tuple[float, float, float]], *,
             title: str) -> None:
        """Colour every ``(feature set, classifier)`` cell by its ``(value, lo, hi)``
        (missing: grey, ``n/a``) and set the title."""
        rows = [(clf, fs, *cells.get((fs, clf), (np.nan,) * 3))
                for fs in self.feature_sets for clf in self.classifiers]
        data = {"classifier": [r[0] for r in rows], "feature_set": [r[1] for r in rows],
                "value": [float(r[2]) for r in rows],
                "text": [f"{r[2]:.2f}" if np.isfinite(r[2]) else "n/a" for r in rows],
                "ci": [format_ci(*r[2:5]) for r in rows]}
        if data["text"] != list(self.source.data["text"]) or \
                data["ci"] != list(self.source.data["ci"]):
            self.source.data = data
        if self.fig.title.text != title:
            self.fig.title.text = title
        import panel as pn

        pn.io.push_notebook(self.pane)
