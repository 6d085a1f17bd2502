"""Signatures tab: the selection funnel of every drawn block, and for one block at a time
(``state.block``) its pCR vs non-pCR boxplot, LASSO coefficients and CV curve and univariate
p-values.

One block at a time: a deep fusion set has seven blocks, and drawing every block's four
figures at once (29 figures) took ~20 s to show on 2 cores.
"""

from __future__ import annotations

import panel as pn
import param

from workbench.app.state import blocks_of
from workbench.app.views._common import HTML, View, deep_any, note_html, safe_figure
from workbench.plots import (
    lasso_coefficients,
    lasso_cv_curve,
    selection_funnel,
    signature_boxplots,
    univariate_pvalues,
)

__all__ = ["SignaturesView", "blocks_of"]

_DEPS = ("state.protocol", "state.block")


class SignaturesView(View):
    """How the signatures were built and how they separate pCR from non-pCR."""

    def _no_block(self) -> pn.Column:
        return pn.Column(HTML(note_html(
            "The drawn feature sets have no selected signature block (clinical only).")))

    @param.depends("state.protocol", "state.evaluation", "state.feature_sets", "state.block")
    def header(self) -> str:
        """Protocol line and warnings (deep: the block shown is a CNN's)."""
        block = self.state.block
        return self.banner("Signatures" + (f" — block {block}" if block else ""),
                           deep=block is not None and deep_any([block]))

    @param.depends(*_DEPS, "state.evaluation")
    @safe_figure
    def boxplots(self):
        """Signature values of pCR vs non-pCR patients of the block (Mann-Whitney p)."""
        s, block = self.state, self.state.block
        if block is None:
            return self._no_block()

        def build():
            sig = self.store.run.signatures
            layout = signature_boxplots(sig[sig["block"].astype(str) == block],
                                        self.store.run.labels, protocol=s.protocol,
                                        split=s.evaluation, weights_label=self.weights)
            return layout.values()[0]  # one block: its panel, not a one-panel grid

        return self.store.figure("boxplots", build, s.protocol, s.evaluation, block)

    @param.depends(*_DEPS)
    @safe_figure
    def lasso(self) -> pn.Column:
        """The block's LASSO non-zero coefficients and, when the run recorded it, the
        cross-validation curve that chose its penalty."""
        s, run, block = self.state, self.store.run, self.state.block
        if block is None:
            return self._no_block()
        items = [self._figure("lasso_coefficients", block, lambda: lasso_coefficients(
            run.selection, protocol=s.protocol, block=block, weights_label=self.weights))]
        if run.has("lasso_cv"):
            items.append(self._figure("lasso_cv", block, lambda: lasso_cv_curve(
                run.lasso_cv, protocol=s.protocol, block=block, weights_label=self.weights)))
        else:
            items.append(HTML(note_html(
                "LASSO cross-validation curve: not in this run (models/lasso_cv.parquet "
                "is written by newer versions of the models stage)")))
        return pn.Column(*items)

    @param.depends(*_DEPS)
    @safe_figure
    def univariate(self) -> pn.Column:
        """The block's −log10 p of the univariate filter, α line."""
        s, run, block = self.state, self.store.run, self.state.block
        if block is None:
            return self._no_block()
        return pn.Column(self._figure("univariate", block, lambda: univariate_pvalues(
            run.selection, protocol=s.protocol, block=block, weights_label=self.weights)))

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
            return HTML(note_html(f"{name.replace('_', ' ')}, block {block}: {exc}"))
