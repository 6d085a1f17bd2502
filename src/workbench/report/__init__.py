"""The standalone HTML report of a run directory (read through :mod:`workbench.rundir`)."""

from workbench.report.html import build_report
from workbench.report.sections import headline_model
from workbench.report.tables import ablation_table, format_ci, funnel_table, table2

__all__ = ["ablation_table",
           "build_report", "format_ci", "funnel_table", "headline_model", "table2"]
