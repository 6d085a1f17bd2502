"""Patients tab: evaluated patients with their probabilities; one patient's largest tumour
slice per phase with the mask contour, and the CNN crop when the run has them."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param

from workbench.app.views._common import HTML, View, e, note_html, safe_figure

__all__ = ["PatientsView"]

_MODEL_DEPS = ("state.protocol", "state.evaluation", "state.feature_sets", "state.classifiers")


class PatientsView(View):
    """Who was evaluated, what each drawn model predicted, and what the images look like."""

    @param.depends(*_MODEL_DEPS)
    def header(self) -> str:
        """Protocol line and warnings."""
        return self.banner("Patients")

    @param.depends(*_MODEL_DEPS)
    def probabilities(self) -> pd.DataFrame:
        """One row per evaluated patient: id, pCR and each drawn model's probability.

        Patient ids are data, not markup: the layout's table shows them as plain text.
        """
        s = self.state
        if not s.models:
            return pd.DataFrame({"patient_id": pd.Series(dtype=object)})
        return self.store.patient_probabilities(s.protocol, s.evaluation, tuple(s.models))

    @param.depends("state.patient", *_MODEL_DEPS)
    def caption(self) -> str:
        """The selected patient and their label, escaped."""
        pid = self.state.patient
        if pid is None:
            return note_html("No patient selected.")
        table = self.probabilities()
        row = table[table["patient_id"] == pid]
        label = "" if row.empty else {1: "pCR", 0: "non-pCR"}.get(
            int(row["pCR"].iloc[0]) if pd.notna(row["pCR"].iloc[0]) else -1, "unknown")
        probs = "" if row.empty else ", ".join(
            f"{e(c)}: {float(row[c].iloc[0]):.2f}" for c in table.columns[2:])
        return (f'<div class="wb-protocol">Patient <span class="wb-patient">{e(pid)}</span>'
                f" — {e(label)}{' — ' + probs if probs else ''} ({e(self.state.protocol)} "
                f"protocol, {e(self.state.evaluation)} split)</div>")

    @param.depends("state.patient")
    @safe_figure
    def images(self):
        """Largest tumour slice of each preprocessed phase with the mask contour (red)."""
        pid = self.state.patient
        if pid is None:
            return HTML(note_html("No patient selected."))
        why = self.store.images_missing(pid)
        if why is not None:
            return HTML(note_html(f"Images: not in this run — {why}."))
        imgs = self.store.patient_images(pid)
        panels = []
        for phase, arr in imgs.phases.items():
            h, w = arr.shape
            bounds = (0, 0, w, h)
            image = hv.Image(arr, bounds=bounds, kdims=["x", "y"]).opts(
                cmap="gray", xaxis=None, yaxis=None, width=260, height=260,
                title=f"{phase} — slice {imgs.index} (tumour {imgs.area} px)",
                tools=["hover"])
            mask = hv.Image(imgs.mask.astype(float), bounds=bounds,
                            kdims=["x", "y"])
            outline = hv.operation.contours(mask, levels=[0.5], filled=False).opts(
                color="red", line_width=1.5, show_legend=False)
            panels.append(image * outline)
        return hv.Layout(panels).opts(shared_axes=False).cols(3)

    @param.depends("state.patient")
    def crop(self):
        """The CNN input strip written by the deep stage (``features/crops``), if any."""
        pid = self.state.patient
        path = None if pid is None else self.store.crop_png(pid)
        if path is None:
            return HTML(note_html(
                "CNN crop: not in this run (features/crops/<patient>.png is written by the "
                "deep-feature stage)."))
        return pn.Column(HTML('<div class="wb-protocol">CNN input (largest tumour '
                                      "slice, cropped; tumour outline red)</div>"),
                         pn.pane.PNG(str(path), width=600))
