"""Serving policy: localhost freely, anything else only behind basic auth or OAuth — in the
library rule, the ``workbench dashboard`` CLI and the served app itself. No browser needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.app.serve_policy import (
    ServingPolicyError,
    check_serving,
    is_local,
    serve_command,
    serving_from_argv,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("address, origins", [
    ("127.0.0.1", ()), ("localhost", ["localhost:5006", "127.0.0.1:5006"]), ("::1", ()),
])
def test_local_serving_needs_no_auth(address, origins):
    check_serving(address, origins, auth_configured=False)


@pytest.mark.parametrize("address, origins, reason", [
    ("0.0.0.0", (), "address '0.0.0.0'"),
    (None, (), "every interface"),
    ("", (), "every interface"),
    ("10.1.2.3", (), "address '10.1.2.3'"),
    ("127.0.0.1", ["example.org:5006"], "websocket origin 'example.org:5006'"),
    ("127.0.0.1", ["*"], "websocket origin '*'"),
])
def test_exposed_serving_without_auth_is_refused_with_instructions(address, origins, reason):
    with pytest.raises(ServingPolicyError) as info:
        check_serving(address, origins, auth_configured=False)
    text = str(info.value)
    assert reason in text and "--basic-auth" in text and "--oauth-provider" in text
    assert "--cookie-secret" in text and "--address 127.0.0.1" in text
    check_serving(address, origins, auth_configured=True)  # with auth: allowed


def test_is_local_parses_origins():
    assert is_local("localhost:5006") and is_local("[::1]:80") and is_local("http://127.0.0.1:5")
    assert not is_local("localhost.example.org") and not is_local("0.0.0.0:5006")


def test_serving_from_argv_reads_panel_serve_flags():
    base = ["/venv/bin/python", "/venv/bin/panel", "serve", "apps/dashboard.py"]
    assert serving_from_argv(["python", "-m", "pytest"]) is None  # not a server
    req = serving_from_argv([*base, "--address", "0.0.0.0", "--port", "5006",
                             "--allow-websocket-origin=host:5006", "--args", "--basic-auth",
                             "x"], environ={})
    assert req.address == "0.0.0.0" and req.allow_websocket_origin == ("host:5006",)
    assert not req.auth_configured  # flags after --args belong to the app
    assert serving_from_argv([*base, "--basic-auth", "pw"], environ={}).auth_configured
    assert serving_from_argv(base, environ={"PANEL_OAUTH_PROVIDER": "github"}).auth_configured
    assert serving_from_argv(base, environ={}).address is None


def test_serve_command_forwards_auth_and_keeps_the_cookie_secret_off_the_command_line(
        run_dir, monkeypatch):
    monkeypatch.delenv("PANEL_COOKIE_SECRET", raising=False)
    cmd, env = serve_command(run_dir, address="0.0.0.0", port=8000,
                             auth={"basic_auth": "users.json", "oauth_key": None})
    assert cmd[1:4] == ["-m", "panel", "serve"] and cmd[4].endswith("apps/dashboard.py")
    assert cmd[cmd.index("--basic-auth") + 1] == "users.json" and "--oauth-key" not in cmd
    assert "0.0.0.0:8000" in cmd and cmd[-2:] == ["--args", str(Path(run_dir).resolve())]
    assert len(env["PANEL_COOKIE_SECRET"]) == 64 and "--cookie-secret" not in cmd
    cmd, env = serve_command(run_dir)
    assert "127.0.0.1:5006" in cmd and "localhost:5006" in cmd
    assert "PANEL_COOKIE_SECRET" not in env  # no auth: no login cookies to sign


def _workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_cli_refuses_a_non_local_start_without_auth(run_dir):
    done = _workbench("dashboard", str(run_dir), "--address", "0.0.0.0", "--port", "1")
    assert done.returncode == 2
    assert "refusing to serve the dashboard beyond this machine" in done.stderr
    assert "--basic-auth" in done.stderr and "--oauth-provider" in done.stderr
    done = _workbench("dashboard", str(run_dir), "--allow-websocket-origin", "evil.example:80")
    assert done.returncode == 2 and "websocket origin 'evil.example:80'" in done.stderr


def test_cli_help_does_not_import_panel():
    code = ("import sys; from workbench.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            "build_parser().parse_args(['dashboard', 'RUN'])\n"
            "assert 'panel' not in sys.modules and 'holoviews' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "dashboard" in done.stdout


@pytest.mark.slow
def test_served_app_refuses_to_show_data_when_exposed_without_auth(run_dir):
    """``panel serve apps/dashboard.py`` typed by hand is held to the same rule."""
    import panel  # noqa: F401  (registers Panel's Bokeh models for the client)
    from bokeh.client import pull_session

    from fixtures.browser import panel_serve

    app = REPO / "apps" / "dashboard.py"
    with panel_serve(app, run_dir, extra=("--allow-websocket-origin", "example.org:5006")) \
            as (url, _), pull_session(url=url) as session:
        text = " ".join(str(getattr(m, "text", "")) for m in session.document.models)
    assert "refusing to serve the dashboard beyond this machine" in text
    assert "--basic-auth" in text and "Confusion matrix" not in text
