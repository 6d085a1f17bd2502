"""Content hashing: the one definition of "the same input"."""

import hashlib
import subprocess

import pandas as pd
import pytest

from workbench.errors import ImageError
from workbench.hashing import (
    code_digest,
    digest_many,
    frame_digest,
    input_digest,
    json_digest,
    path_digest,
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
