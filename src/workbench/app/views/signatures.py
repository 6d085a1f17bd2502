"""Signatures tab: pCR vs non-pCR boxplots, LASSO coefficients and CV curve, univariate
p-values and the selection funnel, for the blocks of the drawn feature sets."""

from __future__ import annotations

import panel as pn
import param

from workbench.app.views._common import HTML, View, deep_any, note_html, safe_figure
from workbench.names import FEATURE_SETS
from workbench.plots import (
    lasso_coefficients,
    lasso_cv_curve,
    selection_funnel,
    signature_boxplots,
    univariate_pvalues,
)

__all__ = ["SignaturesView", "blocks_of"]

_DEPS = ("state.protocol", "state.feature_sets")


def blocks_of(feature_sets: list[str], available: list[str]) -> list[str]:
    """Selection blocks (``radiomics``, ``resnet50``, ...) used by ``feature_sets``, among
    ``available``, in ``available`` order."""
    wanted: set[str] = set()
    for fs in feature_sets:
        spec = FEATURE_SETS.get(fs)
        wanted |= set(spec.blocks) if spec is not None else {fs}
    return [b for b in available if b in wanted]


class SignaturesView(View):
    """How the signatures were built and how they separate pCR from non-pCR."""

    def _blocks(self) -> list[str]:
        sel = self.store.run.selection
        rows = sel[sel["protocol"].astype(str) == self.state.protocol]
        return blocks_of(self.state.feature_sets, list(dict.fromkeys(rows["block"].astype(str))))

    @param.depends(*_DEPS, "state.evaluation")
    def header(self) -> str:
        """Protocol line and warnings (blocks: the drawn feature sets')."""
        return self.banner("Signatures", deep=deep_any(self._blocks()))

    @param.depends(*_DEPS, "state.evaluation")
    @safe_figure
    def boxplots(self):
        """Signature values of pCR vs non-pCR patients (Mann-Whitney p per block)."""
        s, blocks = self.state, tuple(self._blocks())
        if not blocks:
            return HTML(note_html("The drawn feature sets have no selected signature "
                                          "block (clinical only)."))

        def build():
            sig = self.store.run.signatures
            return signature_boxplots(sig[sig["block"].astype(str).isin(blocks)],
                                      self.store.run.labels, protocol=s.protocol,
                                      split=s.evaluation, weights_label=self.weights)
        return self.store.figure("boxplots", build, s.protocol, s.evaluation, blocks)

    @param.depends(*_DEPS)
    @safe_figure
    def lasso(self) -> pn.Column:
        """Per block: the LASSO's non-zero coefficients and, when the run recorded it, the
        cross-validation curve that chose its penalty."""
        s, run = self.state, self.store.run
        have_cv = run.has("lasso_cv")
        items = []
        for block in self._blocks():
            items.append(self._figure("lasso_coefficients", block, lambda b=block:
                                      lasso_coefficients(
                                          run.selection, protocol=s.protocol, block=b,
                                          weights_label=self.weights)))
            if have_cv:
                items.append(self._figure("lasso_cv", block, lambda b=block:
                                          lasso_cv_curve(
                                              run.lasso_cv, protocol=s.protocol, block=b,
                                              weights_label=self.weights)))
        if not have_cv:
            items.append(HTML(note_html(
                "LASSO cross-validation curve: not in this run (models/lasso_cv.parquet "
                "is written by newer versions of the models stage)")))
        return pn.Column(*items) if items else pn.Column(HTML(note_html(
            "No selected block for the drawn feature sets.")))

    @param.depends(*_DEPS)
    @safe_figure
    def univariate(self) -> pn.Column:
        """Per block: −log10 p of the univariate filter, α line."""
        s, run = self.state, self.store.run
        items = [self._figure("univariate", b, lambda b=b: univariate_pvalues(
            run.selection, protocol=s.protocol, block=b, weights_label=self.weights))
            for b in self._blocks()]
        return pn.Column(*items) if items else pn.Column(HTML(note_html(
            "No selected block for the drawn feature sets.")))

    @param.depends("state.protocol")
    @safe_figure
    def funnel(self):
        """Features extracted → kept by variance → univariate → LASSO, every block."""
        s = self.state
        return self.store.figure("funnel", lambda: selection_funnel(
            self.store.run.selection, protocol=s.protocol, weights_label=self.weights),
            s.protocol)

    def _figure(self, name: str, block: str, build):
        """One cached per-block figure, or a note when that block cannot be drawn."""
        try:
            return pn.pane.HoloViews(self.store.figure(name, build, self.state.protocol,
                                                       block), linked_axes=False)
        except Exception as exc:  # e.g. a block whose LASSO kept nothing
            return HTML(note_html(f"{name.replace('_', ' ')}, block {block}: "
                                          f"{exc}"))
