"""Explain tab: SHAP beeswarm, mean |SHAP| and one patient's contributions."""

from __future__ import annotations

import pandas as pd
import param

from workbench.app.views._common import HTML, View, deep_any, e, note_html, safe_figure, safe_html
from workbench.plots import shap_beeswarm, shap_importance

__all__ = ["ExplainView"]

_DEPS = ("state.protocol", "state.feature_sets", "state.classifiers", "state.reference",
         "state.evaluation")


class ExplainView(View):
    """SHAP values of the final models on the test patients (``models/shap.parquet``)."""

    def _shap_models(self) -> list[tuple[str, str]]:
        """Models of the current protocol with SHAP values."""
        run = self.store.run
        if not run.has("shap"):
            return []

        def build():
            shap = run.shap
            keys = shap[["protocol", "feature_set", "classifier"]].astype(str)
            return list(dict.fromkeys(map(tuple, keys.itertuples(index=False))))
        have = self.store.cached(("shap_models",), build)
        return [(fs, clf) for p, fs, clf in have if p == self.state.protocol]

    def model(self) -> tuple[str, str] | None:
        """The explained model: the reference when it has SHAP values, else the first drawn
        model that has them, else the first model of the protocol that has them (the run
        explains only some: drawn or not, it is shown, and the header says so), else
        ``None``."""
        have = self._shap_models()
        ref = self.state.reference_model
        if ref in have:
            return ref
        drawn = next((m for m in self.state.models if m in have), None)
        if drawn is not None or not have:
            return drawn
        same_classifier = [m for m in have if m[1] in self.state.classifiers]
        return (same_classifier or have)[0]

    def _rows(self, model: tuple[str, str]) -> pd.DataFrame:
        def build() -> pd.DataFrame:
            shap = self.store.run.shap
            keep = ((shap["protocol"].astype(str) == self.state.protocol)
                    & (shap["feature_set"].astype(str) == model[0])
                    & (shap["classifier"].astype(str) == model[1]))
            rows = shap[keep]
            return rows.assign(patient_id=rows["patient_id"].astype(str),
                               feature=rows["feature"].astype(str))
        return self.store.cached(("shap_rows", self.state.protocol, *model), build)

    @param.depends(*_DEPS)
    @safe_html
    def header(self) -> str:
        """Protocol line, warnings, and which model is explained (or why none is)."""
        model = self.model()
        deep = deep_any([model[0]]) if model else False
        text = self.banner("Explain", deep=deep)
        if model is None:
            available = ", ".join(f"{fs} / {c}" for fs, c in self._shap_models()) or "none"
            why = self.store.run.missing("shap") or (
                f"no drawn model of this protocol has SHAP values; available: {available}")
            return text + note_html(f"SHAP: not in this run for these models ({why}).")
        drawn = "" if model in self.state.models else note_html(
            "Not among the drawn models: the run computed SHAP values only for "
            + ", ".join(f"{fs} / {c}" for fs, c in self._shap_models())
            + " (the models stage explains the richest feature set).")
        return text + (f'<div class="wb-protocol">Explained model: {e(model[0])} / '
                       f"{e(model[1])} (final model, test patients; the reference model "
                       "when it has SHAP values)</div>") + drawn

    @param.depends(*_DEPS)
    @safe_figure
    def beeswarm(self):
        """SHAP beeswarm of the explained model."""
        model = self.model()
        if model is None:
            return HTML(note_html("No SHAP beeswarm: see the note above."))
        return self.store.figure("beeswarm", lambda: shap_beeswarm(
            self.store.run.shap, protocol=self.state.protocol, feature_set=model[0],
            classifier=model[1], weights_label=self.weights), self.state.protocol, model)

    @param.depends(*_DEPS)
    @safe_figure
    def importance(self):
        """Mean |SHAP| bars of the explained model."""
        model = self.model()
        if model is None:
            return HTML(note_html("No SHAP importance: see the note above."))
        return self.store.figure("importance", lambda: shap_importance(
            self.store.run.shap, protocol=self.state.protocol, feature_set=model[0],
            classifier=model[1], weights_label=self.weights), self.state.protocol, model)

    @param.depends(*_DEPS, "state.patient")
    @safe_html
    def patient_contributions(self, max_features: int = 15) -> str:
        """The selected patient's SHAP values for the explained model, largest |SHAP| first,
        as an HTML bar table (a patient change then costs no figure redraw)."""
        model, pid = self.model(), self.state.patient
        if model is None:
            return note_html("No SHAP values for the drawn models.")
        rows = self._rows(model)
        rows = rows[rows["patient_id"] == str(pid)]
        if rows.empty:
            return note_html(f"Patient {pid} has no SHAP values (SHAP is computed for the test "
                             "patients of the final model; choose a test patient).")
        rows = rows.assign(magnitude=rows["shap"].abs()).nlargest(max_features, "magnitude")
        scale = float(rows["magnitude"].max()) or 1.0
        space = (str(rows["output_space"].dropna().iloc[0]).replace("_", "-")
                 if "output_space" in rows and rows["output_space"].notna().any()
                 else "model output")
        body = []
        for r in rows.itertuples(index=False):
            width = round(100 * abs(r.shap) / scale)
            bar = (f'<span style="display:inline-block;height:11px;width:{width}px;'
                   f'background:{"#1f77b4" if r.shap > 0 else "#d62728"}"></span>')
            cells = (f'<td style="text-align:right">{bar if r.shap < 0 else ""}</td>'
                     f'<td>{bar if r.shap > 0 else ""}</td>')
            body.append(f"<tr><td>{e(r.feature)}</td><td>{e(f'{r.feature_value:.3g}')}</td>"
                        f"{cells}<td>{r.shap:+.3f}</td></tr>")
        return (f'<div class="wb-protocol">SHAP contributions — patient {e(pid)}, '
                f"{e(model[0])} / {e(model[1])}, {e(self.state.protocol)} protocol "
                f"({e(space)}; red: towards non-pCR, blue: towards pCR)</div>"
                '<table class="wb-table"><thead><tr><th>feature</th><th>value</th>'
                '<th style="width:110px">← non-pCR</th><th style="width:110px">pCR →</th>'
                f"<th>SHAP</th></tr></thead><tbody>{''.join(body)}</tbody></table>")
