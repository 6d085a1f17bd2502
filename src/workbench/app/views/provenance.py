"""Cohort and Audit tabs: Table 1 and cohort problems; the null audit, the known-truth
diagnostics of a synthetic cohort, IBSI conformance, deep-weight source, package versions and
input-data hashes from ``run_manifest.json``."""

from __future__ import annotations

import param

from workbench.app.views._common import (
    HTML,
    View,
    e,
    html_table,
    note_html,
    safe_figure,
    safe_html,
)
from workbench.names import LEAKAGE_WARNING
from workbench.plots import null_audit_histogram

__all__ = ["AuditView", "CohortView"]


class CohortView(View):
    """Table 1 (by split × pCR) and the problems recorded while loading the cohort."""

    @safe_html
    def table1(self) -> str:
        """Table 1 as the run wrote it (``table1/table1.csv``)."""
        run = self.store.run
        if (why := run.missing("table1")) is not None:
            return note_html(f"Table 1: not in this run — {why}.")
        return ('<div class="wb-protocol">Table 1 — clinical characteristics by split and '
                "pCR (no model involved: protocol-independent)</div>"
                + html_table(run.table1))

    @safe_html
    def problems(self) -> str:
        """Cohort problems (first 100), every patient id and message escaped."""
        run = self.store.run
        if not run.has("problems"):
            return note_html("No cohort problems recorded.")
        table = run.problems
        return (f'<div class="wb-protocol">Cohort problems recorded ({len(table)})</div>'
                + html_table(table, max_rows=100))


class AuditView(View):
    """Leakage audit, radiomics conformance and the provenance of the run."""

    @param.depends("state.protocol")
    def header(self) -> str:
        """The audit compares both protocols, so it always shows the leakage warning."""
        return ('<div class="wb-protocol">Audit — honest vs paper protocol on permuted '
                f'labels</div><div class="wb-warning">⚠ The paper-protocol rows: '
                f"{e(LEAKAGE_WARNING)}</div>")

    @safe_html
    def audit_table(self) -> str:
        """Null-audit summary: AUC on permuted labels per protocol and split."""
        run = self.store.run
        if (why := run.missing("audit")) is not None:
            return note_html(f"Null audit: not in this run — {why} (audit.permutations = 0 "
                             "or the audit stage was skipped).")
        summary = (run.audit_summary if run.has("audit_summary") else
                   run.audit.groupby(["protocol", "split"])["auc"]
                   .agg(["mean", "std", "count"]).reset_index())
        return html_table(summary, caption="AUC with permuted labels: honest ≈ 0.5; the "
                                            "paper protocol's excess is leakage")

    @safe_figure
    def audit_histogram(self):
        """Null-audit histograms, honest vs paper, chance marked."""
        run = self.store.run
        if run.missing("audit") is not None:
            return HTML("")
        return self.store.figure("audit", lambda: null_audit_histogram(
            run.audit, weights_label=self.weights))

    @safe_html
    def known_truth(self) -> str:
        """Oracle, learnable bound, clinical reference, latent proxies and the honest
        models' share of the learnable gap; nothing when the run has no known truth (a real
        cohort)."""
        tables = self.store.known_truth
        if tables is None:
            return ""
        parts = ['<div class="wb-protocol">Known truth (synthetic cohort) — honest '
                 "protocol</div>",
                 html_table(tables["references"], caption="What the data allow: the true "
                            "probability, a model of the true latents, clinical only")]
        if len(tables["proxies"]):
            parts.append(html_table(tables["proxies"], caption="Closest feature to each "
                                    "latent driver (Spearman rho)"))
        if len(tables["models"]):
            parts.append(html_table(tables["models"], caption="Best honest models by CV "
                                    "AUC; gap closed: 0 = clinical reference, 1 = "
                                    "learnable bound"))
        return "".join(parts)

    @safe_html
    def provenance(self) -> str:
        """IBSI line, deep-weights label, config, seed, git commit and Python."""
        info = self.store.provenance()
        weights = self.store.weights_label
        cls = "wb-weights" if weights and self.store.random_weights else "wb-protocol"
        rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in info.items())
        return (f'<div class="wb-protocol" data-ibsi="1">{e(self.store.run.ibsi_line)}</div>'
                f'<div class="{cls}">Deep-feature weights: '
                f"{e(weights or 'no deep features in this run')}</div>"
                f'<table class="wb-table">{rows}</table>')

    @safe_html
    def versions(self) -> str:
        """Package versions and input-data sha256 hashes recorded in the manifest."""
        versions, hashes = self.store.versions(), self.store.input_hashes()
        parts = [html_table(versions, caption="Package versions (run_manifest.json)")
                 if len(versions) else note_html("No package versions recorded."),
                 html_table(hashes, caption="Input data (sha256)")
                 if len(hashes) else note_html("No input hashes recorded.")]
        return "".join(parts)
