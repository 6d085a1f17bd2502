"""``CalibrationFigure``: the reference model's reliability curve, one Bokeh figure per session
whose points are replaced when the model, the protocol or the evaluation changes (a new
HoloViews rendering per switch cost ~1 s to show on 2 cores)."""

from __future__ import annotations

import pandas as pd

from workbench.plots import PALETTE

__all__ = ["CalibrationFigure"]


class CalibrationFigure:
    """Observed pCR rate (Wilson 95 % CI) against the mean predicted probability per bin, and
    the diagonal of perfect calibration."""

    def __init__(self, *, width: int = 560, height: int = 480) -> None:
        import panel as pn
        from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem, Range1d
        from bokeh.plotting import figure

        fig = figure(width=width, height=height, title="Calibration",
                     x_axis_label="mean predicted probability",
                     y_axis_label="observed pCR rate (95% Wilson CI)",
                     x_range=Range1d(-0.02, 1.02), y_range=Range1d(-0.02, 1.02),
                     tools="pan,wheel_zoom,reset,save", toolbar_location="above")
        fig.title.text_font_size = "13px"
        self.source = ColumnDataSource({c: [] for c in (
            "mean_predicted", "observed", "observed_lo", "observed_hi", "n", "n_events")})
        diagonal = fig.line([0, 1], [0, 1], line_color="grey", line_dash="dashed",
                            name="wb-reference")
        fig.segment("mean_predicted", "observed_lo", "mean_predicted", "observed_hi",
                    source=self.source, line_color=PALETTE[0])
        line = fig.line("mean_predicted", "observed", source=self.source,
                        line_color=PALETTE[0], line_width=2)
        points = fig.scatter("mean_predicted", "observed", source=self.source, size=8,
                             color=PALETTE[0])
        fig.add_tools(HoverTool(renderers=[points], tooltips=[
            ("mean predicted", "@mean_predicted{0.00}"), ("observed", "@observed{0.00}"),
            ("95% CI", "@observed_lo{0.00}–@observed_hi{0.00}"),
            ("patients (pCR)", "@n (@n_events)")]))
        self.legend = Legend(items=[LegendItem(label="model", renderers=[line, points]),
                                    LegendItem(label="perfect calibration",
                                               renderers=[diagonal])],
                             location="top_left", label_text_font_size="11px")
        fig.add_layout(self.legend)
        self.fig = fig
        self.pane = pn.pane.Bokeh(fig)

    def show(self, bins: pd.DataFrame, *, label: str, title: str) -> None:
        """Draw ``bins`` (:func:`~workbench.evaluation.calibration.reliability_curve`), the
        legend entry ``label`` and ``title``."""
        import panel as pn

        self.source.data = {c: bins[c].tolist() for c in self.source.data}
        from bokeh.core.properties import value

        if getattr(self.legend.items[0].label, "value", None) != label:
            self.legend.items[0].label = value(label)  # a plain string would name a column
        if self.fig.title.text != title:
            self.fig.title.text = title
        pn.io.push_notebook(self.pane)
