"""Clinical utility tab: decision curves with the threshold marker, calibration, Brier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import param

from workbench.app.views._calibration import CalibrationFigure
from workbench.app.views._common import View, fmt, html_table, note_html, safe_figure, safe_html
from workbench.app.views._curves import CurveFigure, curves_title, drawn_curves
from workbench.evaluation.calibration import reliability_curve

__all__ = ["UtilityView"]

_MODEL_DEPS = ("state.protocol", "state.evaluation", "state.feature_sets", "state.classifiers")


class UtilityView(View):
    """Net benefit, calibration and Brier score of the drawn models."""

    @param.depends(*_MODEL_DEPS)
    def header(self) -> str:
        """Protocol line and warnings."""
        return self.banner("Clinical utility")

    _curves: CurveFigure | None = None

    @param.depends("state")
    @safe_figure
    def decision_curves(self):
        """Net benefit of exactly the drawn models, *treat all* and *treat none*, and the
        threshold marker.

        One Bokeh figure per session, drawn from ``models/curves.parquet``: a change of
        models, protocol or evaluation replaces its data in place, the threshold moves the
        marker."""
        if self._curves is None:  # this session's figure
            self._curves = CurveFigure(
                title="Decision curves", x_label="threshold probability",
                y_label="net benefit", x_range=(0.0, 1.0), y_range=(-0.05, 0.6),
                references={"treat all": ([], [], "black", "dashed"),
                            "treat none": ([0, 1], [0, 0], "grey", "dotted")})
        self._sync_models()
        self._sync_threshold()
        return self._curves.pane

    @param.depends(*_MODEL_DEPS, watch=True)
    def _sync_models(self) -> None:
        if self._curves is None:
            return
        s = self.state
        curves, missing = drawn_curves(s, "net_benefit")
        ref = self.store.treat_all(s.protocol, s.evaluation)
        counts, top = "", 0.3
        if ref is not None:
            t, nb = ref
            # NB_all(t) = prev − (1 − prev)·t/(1 − t)  ⇒  prev = (NB + w) / (1 + w), w = t/(1−t)
            w = t[0] / (1 - t[0]) if len(t) else 0.0
            prevalence = float((nb[0] + w) / (1 + w)) if len(t) else 0.0
            counts = f"(prevalence {prevalence:.2f})"
            top = max([prevalence, *(float(np.nanmax(c.y)) for c in curves if len(c.y))])
        self._curves.show(curves, title=curves_title("Decision curves", s, counts, missing),
                          references={"treat all": ref if ref is not None else ([], [])})
        end = round(top + 0.05, 3)
        if self._curves.fig.y_range.end != end:
            self._curves.fig.y_range.end = end

    @param.depends("state.threshold", watch=True)
    def _sync_threshold(self) -> None:
        if self._curves is not None:
            self._curves.move_marker(self.state.threshold)

    _calibration: CalibrationFigure | None = None

    @param.depends("state")
    @safe_figure
    def calibration(self):
        """Reliability curve of the reference model (5 quantile bins, Wilson intervals): one
        Bokeh figure per session whose points follow the reference, the protocol and the
        evaluation (:meth:`_sync_calibration`)."""
        if self._calibration is None:
            self._calibration = CalibrationFigure()
        self._sync_calibration()
        return self._calibration.pane

    @param.depends(*_MODEL_DEPS, "state.reference", watch=True)
    def _sync_calibration(self) -> None:
        if self._calibration is None:
            return
        s = self.state
        ref = s.reference_model
        if ref is None:
            self._calibration.show(pd.DataFrame(columns=list(self._calibration.source.data)),
                                   label="no model", title="Calibration — no reference model")
            return
        ev = self.store.model(s.protocol, s.evaluation, *ref)
        bins = self.store.cached(("calibration", s.protocol, s.evaluation, *ref),
                                 lambda: reliability_curve(ev.y, ev.p, n_bins=5))
        title = (f"Calibration — {ev.key.name}\n" + curves_title("", s, f"({len(bins)} "
                 f"quantile bins, n={ev.n})", []).removeprefix(" — "))
        self._calibration.show(bins, label=f"{ev.key.name} (Brier {ev.brier:.3f})",
                               title=title)

    @param.depends(*_MODEL_DEPS)
    @safe_html
    def brier_table(self) -> str:
        """Brier score and calibration intercept / slope, as recorded by the run."""
        s = self.state
        if not s.models:
            return note_html("No model drawn.")
        recorded = self.store.recorded(s.protocol, s.evaluation)
        out = []
        for fs, clf in s.models:
            m = recorded.get((fs, clf), {})
            nan = (float("nan"),)
            out.append({"Model": f"{fs} / {clf}", "Protocol": s.protocol,
                        "Brier": fmt(m.get("brier", nan)[0], 3),
                        "Calibration intercept": fmt(m.get("calibration_intercept", nan)[0]),
                        "Calibration slope": fmt(m.get("calibration_slope", nan)[0])})
        return html_table(pd.DataFrame(out), caption=(
            f"{s.protocol} protocol, {s.evaluation} split — Brier: mean squared error of "
            "the probabilities (lower is better); ideal intercept 0, slope 1"))

