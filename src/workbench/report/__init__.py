"""The standalone HTML report and the run-directory reader shared with notebooks and the
dashboard."""

from workbench.report.data import RUN_FILES, RunData, RunDataError, RunFile
from workbench.report.html import build_report, headline_model
from workbench.report.tables import ablation_table, format_ci, funnel_table, table2

__all__ = ["RUN_FILES", "RunData", "RunDataError", "RunFile", "ablation_table",
           "build_report", "format_ci", "funnel_table", "headline_model", "table2"]
