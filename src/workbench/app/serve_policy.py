"""Serving policy of the dashboard: localhost freely, anything else only behind auth.

A run directory holds patient-level predictions, so the dashboard may listen beyond the local
machine only when Panel's basic auth or an OAuth provider guards it. :func:`check_serving`
is the rule; ``workbench dashboard`` applies it before it starts ``panel serve``, and
``apps/dashboard.py`` applies it again (via :func:`serving_from_argv`) to whatever
``panel serve`` command line started it, so a hand-typed command is held to the same rule.

No Panel import here: the CLI checks the policy before it pays for one.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError

__all__ = ["AUTH_HELP", "LOCAL_HOSTS", "ServingPolicyError", "ServingRequest",
           "auth_from_environment", "check_serving", "dashboard_app", "is_local",
           "serve_command", "serving_from_argv"]

#: Host names that only the local machine can reach.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

#: How to add authentication, quoted in every refusal.
AUTH_HELP = """\
To serve beyond this machine, add authentication:
  basic auth:  workbench dashboard RUN --address 0.0.0.0 --basic-auth PASSWORD_OR_FILE \\
                   --cookie-secret $(python -c 'import secrets; print(secrets.token_hex(32))')
               (PASSWORD_OR_FILE: one shared password, or a JSON file {"user": "password"};
               panel serve takes the same --basic-auth / --cookie-secret flags)
  OAuth:       workbench dashboard RUN --address 0.0.0.0 --oauth-provider github \\
                   --oauth-key CLIENT_ID --oauth-secret CLIENT_SECRET \\
                   --cookie-secret SECRET [--oauth-redirect-uri URL]
               (any provider `panel serve --oauth-provider` accepts: github, google, azure,
               okta, auth0, gitlab, generic ...; PANEL_BASIC_AUTH / PANEL_OAUTH_PROVIDER
               environment variables work too)
Or keep it local: --address 127.0.0.1 (the default) and reach it through an SSH tunnel:
  ssh -L 5006:127.0.0.1:5006 HOST"""


class ServingPolicyError(WorkbenchError):
    """The dashboard would be reachable from other machines without authentication."""


@dataclass(frozen=True)
class ServingRequest:
    """How a ``panel serve`` of the dashboard is (or would be) set up.

    Attributes
    ----------
    address
        The address the server binds; ``None`` or ``""`` is Bokeh's default: every interface.
    allow_websocket_origin
        ``host[:port]`` entries of ``--allow-websocket-origin``.
    auth_configured
        Whether Panel basic auth or an OAuth provider is configured.
    """

    address: str | None
    allow_websocket_origin: tuple[str, ...] = field(default_factory=tuple)
    auth_configured: bool = False


def _host(entry: str) -> str:
    """Host part of ``host``, ``host:port``, ``[v6]:port`` or ``scheme://host:port``."""
    entry = entry.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    if entry.startswith("["):
        return entry[: entry.find("]") + 1] if "]" in entry else entry
    if entry.count(":") == 1:
        return entry.split(":", 1)[0]
    return entry  # a bare IPv6 address, or a host without port


def is_local(host: str | None) -> bool:
    """Whether ``host`` (an address or ``host:port`` origin) is the local machine only.

    ``None`` / ``""`` (bind every interface) and wildcards (``*``, ``0.0.0.0``, ``::``) are
    not local.
    """
    if not host:
        return False
    return _host(host) in LOCAL_HOSTS


def check_serving(address: str | None, allow_websocket_origin: Iterable[str] = (),
                  auth_configured: bool = False) -> None:
    """Refuse a set-up that would expose the dashboard without authentication.

    Parameters
    ----------
    address
        The bind address; ``None`` / ``""`` means every interface (Bokeh's default).
    allow_websocket_origin
        The ``--allow-websocket-origin`` entries: a non-local one publishes the app too.
    auth_configured
        Basic auth or OAuth is set (``--basic-auth``, ``--oauth-provider``, or their
        ``PANEL_*`` environment variables).

    Raises
    ------
    ServingPolicyError
        Non-local address or origin without authentication; the message says which and
        how to add authentication (:data:`AUTH_HELP`).
    """
    if auth_configured:
        return
    exposed = []
    if not is_local(address):
        exposed.append("address " + (repr(address) if address else
                                     "not given (Bokeh then listens on every interface)"))
    exposed += [f"websocket origin {o!r}" for o in allow_websocket_origin if not is_local(o)]
    if exposed:
        raise ServingPolicyError(
            "refusing to serve the dashboard beyond this machine without authentication ("
            + "; ".join(exposed) + "): it shows patient-level predictions.\n" + AUTH_HELP,
            step="dashboard")


def auth_from_environment(environ: dict[str, str] | None = None) -> bool:
    """Whether ``PANEL_BASIC_AUTH`` or ``PANEL_OAUTH_PROVIDER`` configures authentication."""
    env = os.environ if environ is None else environ
    return bool(env.get("PANEL_BASIC_AUTH") or env.get("PANEL_OAUTH_PROVIDER"))


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--address", default=None)
    p.add_argument("--allow-websocket-origin", action="append", default=[])
    p.add_argument("--basic-auth", default=None)
    p.add_argument("--oauth-provider", default=None)
    return p


def serving_from_argv(argv: Sequence[str], environ: dict[str, str] | None = None
                      ) -> ServingRequest | None:
    """The :class:`ServingRequest` of a ``panel serve`` / ``bokeh serve`` command line.

    Parameters
    ----------
    argv
        The full command line of the process (``sys.orig_argv`` inside a served app).
    environ
        Environment to read ``PANEL_*`` auth variables from (default ``os.environ``).

    Returns
    -------
    ServingRequest or None
        ``None`` when ``argv`` is not a ``serve`` command (a notebook, ``pn.serve``, tests).
    """
    args = list(argv)
    if "serve" not in args:
        return None
    rest = args[args.index("serve") + 1:]
    if "--args" in rest:  # everything after --args belongs to the app
        rest = rest[: rest.index("--args")]
    known, _ = _serve_parser().parse_known_args(rest)
    auth = bool(known.basic_auth or known.oauth_provider) or auth_from_environment(environ)
    return ServingRequest(known.address, tuple(known.allow_websocket_origin), auth)


def dashboard_app() -> Path:
    """``apps/dashboard.py`` of this checkout (the layout-only app file ``panel serve``
    runs)."""
    app = Path(__file__).resolve().parents[3] / "apps" / "dashboard.py"
    if not app.is_file():
        raise WorkbenchError("apps/dashboard.py not found next to the package; run from a "
                             "clone (pip install -e .)", step="dashboard", path=app)
    return app


def serve_command(run_dir: str | Path, *, address: str = "127.0.0.1", port: int = 5006,
                  origins: Sequence[str] = (), auth: Mapping[str, str | None] | None = None,
                  show: bool = False) -> tuple[list[str], dict[str, str]]:
    """The ``panel serve`` command line (and environment) of the dashboard.

    Check the set-up with :func:`check_serving` first; this only assembles the command.

    Parameters
    ----------
    run_dir
        The run directory, passed to the app after ``--args``.
    address, port
        Where to listen.
    origins
        ``--allow-websocket-origin`` entries; default ``address:port`` and
        ``localhost:port``.
    auth
        Panel auth flags by option name without dashes (``basic_auth``,
        ``oauth_provider``, ``oauth_key``, ``oauth_secret``, ``oauth_redirect_uri``,
        ``cookie_secret``); ``None`` values are left out. With basic auth or OAuth and no
        cookie secret, a random one is put in ``PANEL_COOKIE_SECRET`` (not on the command
        line, where ``ps`` would show it).
    show
        Open a browser.

    Returns
    -------
    cmd, env
        Arguments for :func:`subprocess.call` and the environment to run them in.
    """
    auth = {k: v for k, v in (auth or {}).items() if v}
    # --warm: the app runs once before the port opens (imports, the run's store), so the
    # first visitor waits seconds, not the ~10 s of a cold process on 2 cores
    cmd = [sys.executable, "-m", "panel", "serve", str(dashboard_app()), "--address", address,
           "--port", str(port), "--warm"]
    for origin in origins or [f"{address}:{port}", f"localhost:{port}"]:
        cmd += ["--allow-websocket-origin", origin]
    for flag, value in auth.items():
        cmd += [f"--{flag.replace('_', '-')}", str(value)]
    env = dict(os.environ)
    if ({"basic_auth", "oauth_provider"} & set(auth) and "cookie_secret" not in auth
            and not env.get("PANEL_COOKIE_SECRET")):
        env["PANEL_COOKIE_SECRET"] = secrets.token_hex(32)  # signs the login cookies
    if show:
        cmd.append("--show")
    return cmd + ["--args", str(Path(run_dir).resolve())], env
