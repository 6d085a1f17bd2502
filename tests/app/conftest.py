"""Dashboard fixtures: a store of the small run directory (tests/conftest.py) and a fresh
session state per test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def store(run_dir):
    from workbench.app.store import DataStore

    return DataStore(run_dir)


@pytest.fixture
def state(store):
    from workbench.app.state import DashboardState

    return DashboardState(store)
