"""Content hashing: the one definition of "the same input"."""

import hashlib
import json
import os
import subprocess
import time

import pandas as pd
import pytest

from workbench import hashing
from workbench.errors import ImageError
from workbench.hashing import (
    DigestCache,
    code_digest,
    digest_many,
    frame_digest,
    identical_inputs,
    input_digest,
    json_digest,
    non_regular_kind,
    path_digest,
    remembered_digests,
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


# --------------------------------------------------------------------------- digest cache
@pytest.fixture
def reads(monkeypatch):
    """Files actually read to hash them (the cache's misses), in order."""
    seen = []
    real = hashing._stream_sha256

    def counting(path):
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(hashing, "_stream_sha256", counting)
    return seen


@pytest.fixture
def settled(monkeypatch):
    """Treat every file as changed long before it is hashed (as the images of a real cohort
    are), so that the racy-file rule does not keep the tests' fresh files out of the cache."""
    monkeypatch.setattr(hashing, "RACY_NS", -60 * 10**9)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rewrite_keeping_mtime(path, data: bytes) -> None:
    """New content of the same size, written in place, with the old modification time back."""
    st = path.stat()
    time.sleep(0.05)  # a later timestamp tick than the hashing (what the racy rule ensures)
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_an_unchanged_file_is_hashed_once_across_runs(tmp_path, reads, settled):
    f = tmp_path / "pre.nii.gz"
    f.write_bytes(b"voxels" * 1000)
    store = tmp_path / "digests.json"
    with remembered_digests(store):
        assert input_digest(f) == _sha(b"voxels" * 1000)
        assert input_digest(f) == _sha(b"voxels" * 1000)
    assert reads == ["pre.nii.gz"]
    assert str(f.resolve()) in json.loads(store.read_text())["files"]
    with remembered_digests(store) as cache:  # a later run
        assert sha256_file(f) == _sha(b"voxels" * 1000)
        assert (cache.hits, cache.misses) == (1, 0)
    assert reads == ["pre.nii.gz"]
    assert hashing._active["cache"] is None  # nothing stays active after the block
    assert sha256_file(f) == _sha(b"voxels" * 1000) and len(reads) == 2


@pytest.mark.parametrize("change", ["same size and time", "touched", "replaced",
                                    "re-linked"])
def test_a_changed_file_is_hashed_again(tmp_path, reads, settled, change):
    f = tmp_path / "early.nii.gz"
    f.write_bytes(b"A" * 4096)
    if change == "re-linked":
        (tmp_path / "a").write_bytes(b"A" * 4096)
        (tmp_path / "b").write_bytes(b"B" * 4096)
        f.unlink()
        f.symlink_to(tmp_path / "a")
    store = tmp_path / "digests.json"
    with remembered_digests(store):
        before = sha256_file(f)
    if change == "same size and time":
        _rewrite_keeping_mtime(f, b"B" * 4096)
        expected = _sha(b"B" * 4096)
    elif change == "touched":
        time.sleep(0.05)
        os.utime(f)
        expected = before
    elif change == "replaced":  # another file renamed over it, with the same size and time
        other = tmp_path / "new.nii.gz"
        other.write_bytes(b"B" * 4096)
        st = f.stat()
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(other, f)
        expected = _sha(b"B" * 4096)
    else:
        f.unlink()
        f.symlink_to(tmp_path / "b")
        expected = _sha(b"B" * 4096)
    reads.clear()
    with remembered_digests(store) as cache:
        assert sha256_file(f) == expected
        assert cache.misses == 1 and cache.hits == 0
    assert len(reads) == 1


def test_a_file_changed_just_before_hashing_is_not_remembered(tmp_path, reads):
    f = tmp_path / "late.nii.gz"
    f.write_bytes(b"A" * 512)
    cache = DigestCache()
    cache.sha256(f)
    assert cache.entries == {}  # it may change again within the same timestamp tick
    f.write_bytes(b"B" * 512)  # ... and so it does, same size, maybe the same tick
    assert cache.sha256(f) == _sha(b"B" * 512)
    assert len(reads) == 2


def test_a_corrupt_or_foreign_cache_file_counts_as_empty(tmp_path, settled):
    f = tmp_path / "mask.nii.gz"
    f.write_bytes(b"mask")
    store = tmp_path / "digests.json"
    for text in ("{not json", json.dumps({"version": 99, "files": {}}),
                 json.dumps({"version": 1, "files": {str(f.resolve()): ["x"]}})):
        store.write_text(text)
        with remembered_digests(store) as cache:
            assert sha256_file(f) == _sha(b"mask") and cache.misses == 1
    assert json.loads(store.read_text())["version"] == DigestCache.VERSION


def test_threads_share_the_cache_and_a_fifo_is_still_refused(tmp_path, reads, settled):
    files = []
    for i in range(6):
        files.append(tmp_path / f"p{i}.nii.gz")
        files[-1].write_bytes(bytes([i]) * 2048)
    fifo = tmp_path / "pipe.nii"
    os.mkfifo(fifo)
    with remembered_digests(tmp_path / "digests.json") as cache:
        first = digest_many([str(f) for f in files] + [str(fifo)], threads=3)
        again = digest_many([str(f) for f in files], threads=3)
    assert isinstance(first.pop(str(fifo)), ImageError)
    assert first == again == {str(f): _sha(f.read_bytes()) for f in files}
    assert (cache.misses, cache.hits) == (len(files), len(files))
    assert sorted(reads) == sorted(f.name for f in files)
