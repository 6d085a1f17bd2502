"""Clinical utility tab: decision curves with the threshold marker, calibration, Brier."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import param

from workbench.app.views._common import View, fmt, html_table, note_html, safe_figure, safe_html
from workbench.app.views._toggle import ModelFigure

__all__ = ["UtilityView"]

_MODEL_DEPS = ("state.protocol", "state.evaluation", "state.feature_sets", "state.classifiers")


class UtilityView(View):
    """Net benefit, calibration and Brier score of the drawn models."""

    @param.depends(*_MODEL_DEPS)
    def header(self) -> str:
        """Protocol line and warnings."""
        return self.banner("Clinical utility")

    _curves: ModelFigure | None = None

    def __init__(self, state, **params) -> None:
        super().__init__(state, **params)
        self._all_curves: dict[tuple[str, str], ModelFigure] = {}

    @param.depends("state.protocol", "state.evaluation")
    @safe_figure
    def decision_curves(self):
        """Decision curves with the threshold marker.

        A Bokeh figure of every model of the protocol and evaluation (the curves are
        computed once, in the store); choosing models toggles curves in place and moving the
        threshold moves the marker — neither redraws the figure.
        """
        from workbench.plots import decision_curves

        s = self.state
        key = (s.protocol, s.evaluation)
        if key not in self._all_curves:  # this session's figure for this choice
            models = self.store.models(*key)
            overlay = self.store.figure(
                "decision_curves", lambda: decision_curves(
                    self.store.run.predictions, protocol=s.protocol, split=s.evaluation,
                    models=models, threshold=None, weights_label=self.weights), *key)
            self._all_curves[key] = ModelFigure(overlay,
                                                [f"{fs} / {clf}" for fs, clf in models])
        self._curves = self._all_curves[key]
        self._sync_models()
        self._sync_threshold()
        return self._curves.pane

    @param.depends("state.feature_sets", "state.classifiers", watch=True)
    def _sync_models(self) -> None:
        if self._curves is not None:
            self._curves.show(self.state.model_names)

    @param.depends("state.threshold", watch=True)
    def _sync_threshold(self) -> None:
        if self._curves is not None:
            self._curves.move_marker(self.state.threshold)

    @param.depends(*_MODEL_DEPS, "state.reference")
    @safe_figure
    def calibration(self) -> hv.Overlay:
        """Reliability curve of the reference model (Wilson intervals per bin)."""
        from workbench.plots import calibration_curve

        s = self.state
        ref = s.reference_model
        if ref is None:
            return hv.Overlay([]).opts(title="No reference model")
        return self.store.figure(
            "calibration", lambda: calibration_curve(
                self.store.run.predictions, protocol=s.protocol, split=s.evaluation,
                feature_set=ref[0], classifier=ref[1], weights_label=self.weights),
            s.protocol, s.evaluation, ref)

    @param.depends(*_MODEL_DEPS)
    @safe_html
    def brier_table(self) -> str:
        """Brier score (from the predictions) and the recorded calibration intercept/slope."""
        s = self.state
        if not s.models:
            return note_html("No model drawn.")
        recorded = self.store.recorded(s.protocol, s.evaluation)
        out = []
        for fs, clf in s.models:
            ev = self.store.model(s.protocol, s.evaluation, fs, clf)
            m = recorded.get((fs, clf), {})
            nan = (float("nan"),)
            out.append({"Model": ev.key.name, "Protocol": s.protocol,
                        "Brier": fmt(ev.brier, 3),
                        "Calibration intercept": fmt(m.get("calibration_intercept", nan)[0]),
                        "Calibration slope": fmt(m.get("calibration_slope", nan)[0])})
        return html_table(pd.DataFrame(out), caption=(
            f"{s.protocol} protocol, {s.evaluation} split — Brier: mean squared error of "
            "the probabilities (lower is better); ideal intercept 0, slope 1"))
