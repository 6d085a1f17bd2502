"""Clinical utility tab: decision curves with the threshold marker, calibration, Brier."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import param

from workbench.app.views._common import View, fmt, html_table, note_html, safe_figure, safe_html
from workbench.app.views._toggle import ModelFigure
from workbench.plots import calibration_curve, decision_curves

__all__ = ["UtilityView"]

_MODEL_DEPS = ("state.protocol", "state.evaluation", "state.feature_sets", "state.classifiers")


class UtilityView(View):
    """Net benefit, calibration and Brier score of the drawn models."""

    @param.depends(*_MODEL_DEPS)
    def header(self) -> str:
        """Protocol line and warnings."""
        return self.banner("Clinical utility")

    _curves: ModelFigure | None = None

    @param.depends("state")
    @safe_figure
    def decision_curves(self):
        """Decision curves with the threshold marker.

        A Bokeh figure of every model of every protocol and evaluation (the curves are
        computed once, in the store); choosing the protocol, the evaluation or models toggles
        curves in place and moving the threshold moves the marker — neither redraws the
        figure.
        """
        if self._curves is None:  # this session's figure
            store, parts = self.store, {}
            for key in [(p, s) for p in store.protocols for s in store.splits]:
                if not (models := store.models(*key)):
                    continue

                def part(k=key, m=models):
                    overlay = store.figure("decision_curves", lambda: decision_curves(
                        store.run.predictions, protocol=k[0], split=k[1], models=m,
                        threshold=None, weights_label=self.weights), *k)
                    return overlay, [f"{fs} / {clf}" for fs, clf in m]
                parts[key] = part
            current = (self.state.protocol, self.state.evaluation)
            if current in parts:  # rendered first; the others once the tab has shown
                parts = {current: parts.pop(current), **parts}
            self._curves = ModelFigure.keyed(parts)
            _after_render(self._curves.build_pending)
        self._sync_models()
        self._sync_threshold()
        return self._curves.pane

    @param.depends(*_MODEL_DEPS, watch=True)
    def _sync_models(self) -> None:
        if self._curves is not None:
            key = (self.state.protocol, self.state.evaluation)
            self._curves.show(self.state.model_names,
                              key=key if key in self._curves.keys else None)

    @param.depends("state.threshold", watch=True)
    def _sync_threshold(self) -> None:
        if self._curves is not None:
            self._curves.move_marker(self.state.threshold)

    @param.depends(*_MODEL_DEPS, "state.reference")
    @safe_figure
    def calibration(self) -> hv.Overlay:
        """Reliability curve of the reference model (Wilson intervals per bin)."""
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


def _after_render(callback) -> None:
    """Run ``callback`` on the server's next tick (after the pending patch is sent); outside
    a server session it is left to run on demand."""
    import panel as pn

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc.add_next_tick_callback(callback)
