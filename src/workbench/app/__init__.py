"""The Panel dashboard of a run directory.

``DashboardState`` (``param``: every user choice) + ``DataStore`` (the run, read once, per-model
ROC and threshold sweeps precomputed) + views (one method per plot or table) + ``layout``
(widgets and tabs only). Serve it with ``workbench dashboard RUN`` (localhost, or behind auth:
:mod:`workbench.app.serve_policy`) or ``panel serve apps/dashboard.py --address 127.0.0.1
--args RUN``; in a notebook, display ``workbench.app.dashboard(RUN)``.

Attributes are imported on first use, so ``workbench.app.serve_policy`` (used by the CLI
before it starts a server) does not import Panel.
"""

from __future__ import annotations

import importlib

__all__ = ["DashboardState", "DataStore", "ServingPolicyError", "check_serving", "dashboard",
           "load_store"]

_WHERE = {"DashboardState": "workbench.app.state", "DataStore": "workbench.app.store",
          "load_store": "workbench.app.store", "dashboard": "workbench.app.layout",
          "ServingPolicyError": "workbench.app.serve_policy",
          "check_serving": "workbench.app.serve_policy"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'workbench.app' has no attribute {name!r}")
