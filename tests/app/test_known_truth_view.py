"""The Audit tab's known-truth table: shown when the run has ``known_truth``, read and
formatted once, nothing at all otherwise."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

from fixtures.known_truth import LATENTS, add_known_truth
from workbench import rundir
from workbench.app import views as V
from workbench.app.state import DashboardState
from workbench.app.store import DataStore


def test_known_truth_table_on_the_audit_tab(run_dir, tmp_path, monkeypatch, state):
    assert V.AuditView(state).known_truth() == ""  # the fixture run: no truth, no table

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    copied = add_known_truth(run)
    reads: collections.Counter[str] = collections.Counter()
    original = rundir._read

    def counting(path):
        reads[Path(path).relative_to(run).as_posix()] += 1
        return original(path)

    monkeypatch.setattr(rundir, "_read", counting)
    store = DataStore(run)
    view = V.AuditView(DashboardState(store))
    shown = view.known_truth()
    assert "Known truth (synthetic cohort)" in shown and "could not" not in shown
    for part in ("Oracle: true probability", "Learnable bound", "Clinical reference",
                 "CV gap closed", copied, *LATENTS):
        assert part in shown, part
    for protocol in ("paper", "honest"):  # honest models whatever the protocol chosen
        view.state.protocol = protocol
        assert view.known_truth() == shown
    assert reads["diagnostics/known_truth.csv"] == 1
