"""The dashboard's views, one class per tab; each method is one plot or table.

Every view reads the shared :class:`~workbench.app.store.DataStore` and the session's
:class:`~workbench.app.state.DashboardState`, and only formats or draws.
"""

from workbench.app.views._common import CSS, View, html_table
from workbench.app.views.explain import ExplainView
from workbench.app.views.patients import PatientsView
from workbench.app.views.performance import PerformanceView
from workbench.app.views.provenance import AuditView, CohortView
from workbench.app.views.signatures import SignaturesView, blocks_of
from workbench.app.views.utility import UtilityView
from workbench.app.views.validation import ValidationView

__all__ = ["CSS", "AuditView", "CohortView", "ExplainView", "PatientsView", "PerformanceView",
           "SignaturesView", "UtilityView", "ValidationView", "View", "blocks_of",
           "html_table"]
