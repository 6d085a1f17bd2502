"""Content hashing: the one definition of "the same input"."""

import hashlib
import os
import subprocess

import pandas as pd
import pytest

from workbench.errors import ImageError
from workbench.hashing import (
    code_digest,
    digest_many,
    frame_digest,
    identical_inputs,
    input_digest,
    json_digest,
    non_regular_kind,
    path_digest,
    sha256_file,
    split_selector,
)


def test_a_file_digest_is_its_plain_sha256(tmp_path):
    f = tmp_path / "a.nii.gz"
    f.write_bytes(b"voxels" * 1000)
    assert input_digest(f) == hashlib.sha256(b"voxels" * 1000).hexdigest()
    sha256sum = subprocess.run(["sha256sum", str(f)], capture_output=True, text=True)
    if sha256sum.returncode == 0:
        assert sha256sum.stdout.split()[0] == input_digest(f)


def test_content_not_names_decide(tmp_path):
    (tmp_path / "x").write_bytes(b"same")
    (tmp_path / "y").write_bytes(b"same")
    assert input_digest(tmp_path / "x") == input_digest(tmp_path / "y")
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"one")
    before = path_digest(series)
    (series / "2.dcm").write_bytes(b"two")
    assert path_digest(series) != before  # a new file in a DICOM folder changes it


def test_temporal_selector_enters_the_digest(tmp_path):
    (tmp_path / "1.dcm").write_bytes(b"frames")
    assert split_selector(f"{tmp_path}#t=2") == (str(tmp_path), 2)
    d1, d2 = input_digest(f"{tmp_path}#t=1"), input_digest(f"{tmp_path}#t=2")
    assert len({d1, d2, input_digest(tmp_path)}) == 3


def test_missing_input_names_patient_and_file(tmp_path):
    with pytest.raises(ImageError, match=r"\[patient P7\] step read: tumour mask not found"):
        input_digest(tmp_path / "nope.nii.gz", patient="P7", what="tumour mask")
    found = digest_many([str(tmp_path / "nope"), str(tmp_path / "nope")])
    assert len(found) == 1 and isinstance(next(iter(found.values())), ImageError)


def test_json_frame_and_code_digests():
    assert json_digest({"a": 1, "b": [1, 2]}) == json_digest({"b": [1, 2], "a": 1})
    frame = pd.DataFrame({"x": [1.0, 2.0]}, index=["p1", "p2"])
    assert frame_digest(frame) == frame_digest(frame.copy())
    assert frame_digest(frame) != frame_digest(frame.rename(columns={"x": "y"}))
    assert code_digest(["selection"]) == code_digest(["selection"])
    assert code_digest(["selection"]) != code_digest(["models"])


# --------------------------------------------------------------------------- non-regular files
@pytest.mark.timeout(20)
def test_a_fifo_is_refused_by_every_digest_without_blocking(tmp_path):
    from workbench.errors import WorkbenchError

    fifo = tmp_path / "pre.nii.gz"
    os.mkfifo(fifo)
    with pytest.raises(WorkbenchError, match=r"step hash: cannot hash it: it is a FIFO"):
        sha256_file(fifo)
    with pytest.raises(ImageError, match=r"input is a FIFO \(named pipe\), not a regular file"):
        path_digest(fifo)
    with pytest.raises(ImageError, match=r"\[patient P1\] step read: phase 'pre' is a FIFO .*"
                                         r"\(file .*pre\.nii\.gz\)"):
        input_digest(fifo, patient="P1", what="phase 'pre'")
    assert isinstance(digest_many([str(fifo)])[str(fifo)], ImageError)


@pytest.mark.timeout(20)
def test_a_device_is_refused_and_a_symlink_to_a_file_is_its_target(tmp_path):
    with pytest.raises(ImageError, match="is a character device"):
        input_digest("/dev/zero")
    assert non_regular_kind("/dev/zero") == "character device"
    target = tmp_path / "a.nii.gz"
    target.write_bytes(b"voxels")
    (tmp_path / "link.nii.gz").symlink_to(target)
    assert non_regular_kind(tmp_path / "link.nii.gz") is None
    assert input_digest(tmp_path / "link.nii.gz") == input_digest(target)


@pytest.mark.timeout(20)
def test_a_fifo_inside_a_dicom_folder_is_skipped(tmp_path):
    (tmp_path / "1.dcm").write_bytes(b"one")
    before = path_digest(tmp_path)
    os.mkfifo(tmp_path / "2.dcm")
    assert path_digest(tmp_path) == before


def test_identical_inputs_by_path_link_or_content(tmp_path):
    pre, early, late = (tmp_path / f"{n}.nii.gz" for n in ("pre", "early", "late"))
    pre.write_bytes(b"A" * 100)
    early.write_bytes(b"B" * 100)  # same size, other content: hashed, not flagged
    late.write_bytes(b"C" * 90)
    (tmp_path / "copy.nii.gz").write_bytes(b"A" * 100)
    (tmp_path / "link.nii.gz").symlink_to(pre)
    assert identical_inputs({"pre": pre, "early": early, "late": late}) == []
    assert identical_inputs({"pre": pre, "early": pre}) == [("early", "pre", "same file")]
    assert identical_inputs({"pre": pre, "early": tmp_path / "link.nii.gz"}) == [
        ("early", "pre", "same file")]
    assert identical_inputs({"pre": pre, "late": tmp_path / "copy.nii.gz"}) == [
        ("late", "pre", "identical content")]
    assert identical_inputs({"pre": pre, "gone": tmp_path / "gone.nii.gz"}) == []


def test_identical_inputs_keep_dicom_timepoints_apart(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"frames")
    assert identical_inputs({"pre": f"{series}#t=1", "early": f"{series}#t=2"}) == []
    assert identical_inputs({"pre": f"{series}#t=1", "early": f"{series}#t=1"}) == [
        ("early", "pre", "same file")]
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "1.dcm").write_bytes(b"frames")
    assert identical_inputs({"pre": series, "early": twin}) == [
        ("early", "pre", "identical content")]
