"""The pCR fusion workbench dashboard — layout only; the logic is in ``workbench.app``.

    workbench dashboard data/runs/demo                       # localhost:5006 (checks policy)
    panel serve apps/dashboard.py --address 127.0.0.1 --warm --args data/runs/demo

The run directory is fixed when the server starts (``--args RUN_DIR``); no widget accepts a
path. Serving beyond localhost needs ``--basic-auth`` or an OAuth provider: without one this
app shows only the refusal (see ``workbench.app.serve_policy``).
"""

import logging
import sys

from workbench.app.layout import dashboard, error_page
from workbench.app.serve_policy import ServingPolicyError, check_serving, serving_from_argv
from workbench.errors import WorkbenchError

log = logging.getLogger("workbench.app")


def _page():
    import panel as pn

    request = serving_from_argv(getattr(sys, "orig_argv", sys.argv))
    if request is not None:
        auth = request.auth_configured or bool(pn.config.basic_auth or pn.config.oauth_provider)
        try:
            check_serving(request.address, request.allow_websocket_origin, auth)
        except ServingPolicyError as exc:
            log.error("%s", exc)
            return error_page(str(exc))
    if len(sys.argv) < 2:
        return error_page("No run directory: start with `panel serve apps/dashboard.py "
                          "--address 127.0.0.1 --args data/runs/<name>` or "
                          "`workbench dashboard data/runs/<name>`.")
    try:
        return dashboard(sys.argv[1], template=True)
    except WorkbenchError as exc:
        return error_page(f"Cannot open run directory {sys.argv[1]}: {exc}")


_page().servable()
