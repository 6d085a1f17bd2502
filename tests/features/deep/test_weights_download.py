"""Downloading ImageNet weights: an offline machine is found out without importing Keras.

No network access: name resolution, proxies and Keras itself are stubbed.
"""

from __future__ import annotations

import socket
import sys
import types

import pytest

from workbench.features.deep import NETWORKS
from workbench.features.deep import weights as deep_weights


def _no_dns(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def _keras_whose_download_fails(calls: list[str]):
    def get_file(name, url, **kwargs):
        calls.append(url)
        raise OSError("HTTP Error 503: Service Unavailable")

    return types.SimpleNamespace(utils=types.SimpleNamespace(get_file=get_file))


def test_offline_is_found_without_importing_keras(monkeypatch, caplog):
    monkeypatch.setattr(deep_weights.urllib.request, "getproxies", lambda: {})
    monkeypatch.setattr(deep_weights.socket, "getaddrinfo", _no_dns)
    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` would raise ImportError
    with caplog.at_level("INFO", logger=deep_weights.__name__):
        assert deep_weights._download_weights("resnet50") is None
    assert "cannot download resnet50 weights: cannot resolve storage.googleapis.com" in caplog.text


@pytest.mark.parametrize("network", ["proxy configured", "host resolves"])
def test_otherwise_the_download_is_tried(monkeypatch, tmp_path, network):
    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "keras", _keras_whose_download_fails(calls))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    if network == "proxy configured":  # the proxy may reach what this machine cannot resolve
        monkeypatch.setattr(deep_weights.urllib.request, "getproxies",
                            lambda: {"https": "http://proxy.example:3128"})
        monkeypatch.setattr(deep_weights.socket, "getaddrinfo", _no_dns)
    else:
        monkeypatch.setattr(deep_weights.urllib.request, "getproxies", lambda: {})
        monkeypatch.setattr(deep_weights.socket, "getaddrinfo", lambda *a, **k: [()])
    assert deep_weights._download_weights("resnet50") is None
    spec = NETWORKS["resnet50"]
    assert calls == [spec.url + spec.keras_file]
