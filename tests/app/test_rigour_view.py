"""The Audit tab's radiomics-rigour panels: present only with their files, the protocol
beside every AUC, the whole-cohort ComBat variants marked leaky, each file read once."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from fixtures.rigour_tables import (
    LEAKY_PCR_TEST_AUC,
    PERTURBATION_NAMES,
    SHUFFLED_TEXTURE_TEST_AUC,
    add_rigour,
)
from workbench import rundir
from workbench.app.layout import tabs
from workbench.app.state import DashboardState
from workbench.app.store import DataStore
from workbench.app.views.rigour import RIGOUR_PANELS, RigourView


def _audit_tab(state):
    tab = tabs(state)
    return tab[list(tab._names).index("Audit")]


def _classes(column) -> list[str]:
    return [c for pane in column for c in (pane.css_classes or []) if c.startswith("wb-rigour")]


def test_no_rigour_panels_without_files(state):
    assert RigourView(state).present == []
    assert _classes(_audit_tab(state)) == []


@pytest.fixture(scope="module")
def rigour_run(run_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("rigour") / "run"
    shutil.copytree(run_dir, run)
    add_rigour(run)
    return run


def test_rigour_panels_on_the_audit_tab(rigour_run, monkeypatch):
    reads: collections.Counter[str] = collections.Counter()
    original = rundir._read

    def counting(path):
        reads[Path(path).relative_to(rigour_run).as_posix()] += 1
        return original(path)

    monkeypatch.setattr(rundir, "_read", counting)
    state = DashboardState(DataStore(rigour_run))
    view = RigourView(state)
    assert view.present == list(RIGOUR_PANELS)
    column = _audit_tab(state)
    assert _classes(column) == [f"wb-rigour-{p}" for p in RIGOUR_PANELS]

    controls = view.controls()
    assert "Negative controls — honest protocol" in controls
    assert f"{SHUFFLED_TEXTURE_TEST_AUC:.2f}" in controls and "could not" not in controls
    assert "Shape features keep their AUC" in controls
    robustness = view.robustness()
    assert all(name in robustness for name in PERTURBATION_NAMES)
    assert "ICC ≥ 0.9" in robustness and "2 / 3" in robustness
    harmonisation = view.harmonisation()
    assert f"{LEAKY_PCR_TEST_AUC:.2f}" in harmonisation
    assert "honest + ComBat on the whole cohort (LEAKY)" in harmonisation
    assert "LEAKY BY DESIGN" in harmonisation
    import holoviews as hv

    for name in ("controls_chart", "icc_chart", "harmonisation_chart", "site_chart"):
        fig = getattr(view, name)()
        assert isinstance(fig, hv.core.Dimensioned), name
        assert getattr(view, name)() is fig  # built once
    for protocol in ("paper", "honest"):  # the stages' own protocol, whatever is chosen
        state.protocol = protocol
        assert view.controls() == controls
    assert max(reads.values()) == 1, reads


def test_one_panel_alone(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    add_rigour(run, kinds=("harmonisation",))
    state = DashboardState(DataStore(run))
    assert RigourView(state).present == ["harmonisation"]
    assert _classes(_audit_tab(state)) == ["wb-rigour-harmonisation"]
