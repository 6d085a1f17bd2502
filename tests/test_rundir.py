"""The run-directory contract: names, safe paths, reading and writing."""

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.rundata import RunData
from workbench.rundir import (
    RUN_FILES,
    RunDataError,
    RunDir,
    check_component,
    rundir_tree,
    safe_join,
)


def test_names_resolve_to_the_documented_layout(tmp_path):
    run = RunDir(tmp_path)
    assert run.path("metrics") == tmp_path / "models" / "metrics.parquet"
    assert run.path("model", protocol="honest", feature_set="fusion", classifier="lr") == (
        tmp_path / "models" / "honest" / "fusion__lr.skops")
    assert run.path("crop", patient_id="ISPY1_1001") == (
        tmp_path / "features" / "crops" / "ISPY1_1001.png")
    assert run.folder("crop") == tmp_path / "features" / "crops"
    assert "| `run_manifest.json` | `manifest` |" in rundir_tree()
    assert len(rundir_tree().splitlines()) == len(RUN_FILES) + 2


def test_the_readme_shows_the_contract_as_it_is():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert rundir_tree() in readme, ("README.md's run-directory table differs from "
                                     "workbench.rundir.RUN_FILES; paste rundir_tree() there")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/abs/path", "a/b", "..", ".hidden", ""])
def test_a_field_cannot_leave_its_folder(tmp_path, bad):
    with pytest.raises(RunDataError, match="cannot be part of a file name"):
        RunDir(tmp_path).path("crop", patient_id=bad)
    assert RunData(tmp_path).crop_path(bad) is None


def test_unknown_names_and_missing_fields_are_errors(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RunDataError, match="unknown run file 'metric'"):
        run.path("metric")
    with pytest.raises(RunDataError, match=r"needs \['patient_id'\]"):
        run.path("crop")


def test_write_then_read_round_trips_with_the_index_the_contract_keeps(tmp_path):
    run = RunDir(tmp_path / "run")
    feats = pd.DataFrame({"rad__a": [1.0, 2.0]},
                         index=pd.Index(["p1", "p2"], name="patient_id"))
    run.write("radiomics", feats)
    pd.testing.assert_frame_equal(run.read("radiomics"), feats)  # feature tables keep ids
    run.write("skipped", pd.DataFrame())
    assert run.read("skipped").empty
    run.write("deep_weights", {"label": "RANDOM weights"})
    assert RunData(run.root).weights_label == "RANDOM weights"
    assert run.feature_families() == ["radiomics"]
    assert not list(run.root.rglob("*.tmp"))


def test_a_missing_file_names_the_stage_that_writes_it(tmp_path):
    with pytest.raises(RunDataError, match=r"models/metrics\.parquet not found.*models stage"):
        RunDir(tmp_path).read("metrics")
    assert RunData(tmp_path).missing("audit") == (
        "audit/null_audit.parquet not found (written by the audit stage)")


# --------------------------------------------------------------------------- safe_join
_ROOT = Path(tempfile.mkdtemp(prefix="safe_join_")) / "out"  # one root for every example
_ROOT.mkdir()
_NASTY = st.sampled_from(["..", ".", "/", "\\", "\x00", "~", "a/../..", "/etc/passwd", "",
                          "../x", "..\\x", ".hidden", " ", "C:", "%2e%2e", "\u2215", "x"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(), _NASTY), min_size=1, max_size=4))
def test_safe_join_is_inside_the_root_or_raises(parts):
    try:
        path = safe_join(_ROOT, *parts)
    except RunDataError as exc:
        assert "cannot be part of a file name" in str(exc) or "would leave" in str(exc)
        return
    assert path.resolve().is_relative_to(_ROOT.resolve()) and path.resolve() != _ROOT.resolve()
    assert path == _ROOT.joinpath(*parts) and len(path.relative_to(_ROOT).parts) == len(parts)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/abs/path", "a/b", "a\\b", "..", ".",
                                 ".hidden", "", "nul\x00byte"])
def test_safe_join_refuses_what_is_not_one_component(tmp_path, bad):
    with pytest.raises(RunDataError, match="cannot be part of a file name"):
        safe_join(tmp_path, bad)
    with pytest.raises(RunDataError, match="cannot be part of a file name"):
        check_component(bad, what="patient_id")


def test_safe_join_does_not_follow_a_link_out_of_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "run"
    root.mkdir()
    os.symlink(outside, root / "crops")
    with pytest.raises(RunDataError, match="would leave the output folder"):
        safe_join(root, "crops", "P1.png")
    assert safe_join(root, "P1.png") == root / "P1.png"


def test_every_patterned_run_file_goes_through_safe_join(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RunDataError, match="cannot be part of a file name"):
        run.path("model", protocol="honest", feature_set="../../x", classifier="lr")
    with pytest.raises(RunDataError, match="cannot be part of a file name"):
        run.path("crop", patient_id=".x")  # would be the hidden file .x.png
    assert not list(tmp_path.iterdir())
