"""Audit-tab panels of the radiomics-rigour analyses: negative controls, perturbation
robustness (ICC) and ComBat harmonisation — each present only when the run holds its files.

Tables and texts come formatted from :mod:`workbench.evaluation.rigour_display` (the report
shows the same), figures from :mod:`workbench.plots.rigour`; the files are read once through
the store's :class:`~workbench.rundata.RunData`.
"""

from __future__ import annotations

from workbench.app.views._common import (
    HTML,
    View,
    e,
    html_table,
    note_html,
    safe_figure,
    safe_html,
)
from workbench.evaluation.rigour_display import (
    CONTROLS_TEXT,
    HARMONISATION_LEAK,
    HARMONISATION_TEXT,
    ROBUSTNESS_TEXT,
    control_rows,
    harmonisation_rows,
    perturbation_rows,
    robust_count_rows,
    selected_robust_rows,
)
from workbench.plots.rigour import (
    control_auc_chart,
    harmonisation_auc_chart,
    icc_histogram,
    site_feature_boxes,
)

__all__ = ["RIGOUR_FILES", "RIGOUR_PANELS", "RigourView"]

#: Panel -> the run files whose presence shows it.
RIGOUR_FILES: dict[str, tuple[str, ...]] = {
    "controls": ("control_auc", "controls_summary"),
    "robustness": ("icc", "robust_counts", "robust_selected", "robustness_summary"),
    "harmonisation": ("harmonisation_auc", "harmonisation_audit", "site_features"),
}
#: Panel -> ``(text view, figure views...)``: the methods of :class:`RigourView` it shows.
RIGOUR_PANELS: dict[str, tuple[str, ...]] = {
    "controls": ("controls", "controls_chart"),
    "robustness": ("robustness", "icc_chart"),
    "harmonisation": ("harmonisation", "harmonisation_chart", "site_chart"),
}


def _title(text: str) -> str:
    return f'<div class="wb-protocol">{e(text)}</div>'


class RigourView(View):
    """Negative controls, robustness and harmonisation of the run (protocol-independent: the
    stages record their own protocol, shown beside every AUC)."""

    @property
    def present(self) -> list[str]:
        """Panels whose files the run holds (a directory check; nothing read)."""
        run = self.store.run
        return [panel for panel, files in RIGOUR_FILES.items()
                if any(run.exists(name) for name in files)]

    def _load(self, name: str):
        run = self.store.run
        return run.load(name) if run.has(name) else None

    # ------------------------------------------------------------------ controls
    def _protocol(self) -> str:
        summary = self._load("controls_summary") or {}
        return str(summary.get("protocol") or "honest")

    @safe_html
    def controls(self) -> str:
        """Explanation and AUC table of the image negative controls."""
        protocol = self._protocol()
        parts = [_title(f"Negative controls — {protocol} protocol"), note_html(CONTROLS_TEXT)]
        auc = self._load("control_auc")
        if auc is None:
            return "".join(parts) + note_html("No control AUC table (controls/control_auc.csv)"
                                              " in this run.")
        table = self.store.cached(("rigour", "controls"), lambda: control_rows(auc, protocol))
        return "".join(parts) + html_table(table, caption=f"AUC (DeLong 95% CI), {protocol} "
                                                          "protocol")

    @safe_figure
    def controls_chart(self):
        auc = self._load("control_auc")
        if auc is None:
            return HTML("")
        return self.store.figure("rigour_controls", lambda: control_auc_chart(
            auc, protocol=self._protocol()))

    # ------------------------------------------------------------------ robustness
    def _thresholds(self) -> list[float]:
        summary = self._load("robustness_summary") or {}
        return list(summary.get("thresholds") or [0.75, 0.9])

    @safe_html
    def robustness(self) -> str:
        """Perturbation set, robust counts per threshold, selected features that are robust."""
        parts = [_title("Robustness to perturbation — ICC(3,1), label-free"),
                 note_html(ROBUSTNESS_TEXT)]
        if (summary := self._load("robustness_summary")) is not None:
            parts.append(html_table(perturbation_rows(summary), caption=(
                f"Perturbation set ({summary.get('patients_used', '?')} patients, "
                f"{len(summary.get('copies') or [])} copies)")))
        if (counts := self._load("robust_counts")) is not None:
            parts.append(html_table(robust_count_rows(counts),
                                    caption="Robust features per ICC threshold and family"))
        if (selected := self._load("robust_selected")) is not None:
            parts.append(html_table(selected_robust_rows(selected, self._thresholds()),
                                    caption="Selected features that are robust"))
        return "".join(parts)

    @safe_figure
    def icc_chart(self):
        icc = self._load("icc")
        if icc is None:
            return HTML("")
        return self.store.figure("rigour_icc", lambda: icc_histogram(
            icc, self._load("robust_selected"), thresholds=self._thresholds()))

    # ------------------------------------------------------------------ harmonisation
    @safe_html
    def harmonisation(self) -> str:
        """AUC per ComBat variant with its protocol and null audit; the leak explained."""
        parts = [_title("Harmonisation across sites — ComBat"), note_html(HARMONISATION_TEXT),
                 f'<div class="wb-warning">⚠ {e(HARMONISATION_LEAK)}</div>']
        if (auc := self._load("harmonisation_auc")) is not None:
            table = self.store.cached(("rigour", "harmonisation"),
                                      lambda: harmonisation_rows(auc))
            parts.append(html_table(table, caption="AUC (DeLong 95% CI) and null audit "
                                                   "(permuted labels) per variant"))
        return "".join(parts)

    @safe_figure
    def harmonisation_chart(self):
        auc = self._load("harmonisation_auc")
        if auc is None:
            return HTML("")
        return self.store.figure("rigour_harmonisation", lambda: harmonisation_auc_chart(auc))

    @safe_figure
    def site_chart(self):
        long = self._load("site_features")
        if long is None:
            return HTML("")
        return self.store.figure("rigour_sites", lambda: site_feature_boxes(long))
