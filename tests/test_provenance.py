import json

from workbench.config import parse_config
from workbench.hashing import hash_inputs, input_digest
from workbench.hashing import path_digest as sha256_path
from workbench.provenance import MANIFEST_NAME, write_manifest


def test_manifest_records_config_versions_git_and_hashes(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hello")
    d = tmp_path / "dicom"
    d.mkdir()
    (d / "1.dcm").write_bytes(b"x")
    cfg = parse_config({"seed": 7, "name": "t"}, source="t.yaml")
    path = write_manifest(tmp_path / "run", config=cfg,
                          inputs={"a": f, "series": f"{d}#t=2", "gone": tmp_path / "nope"})
    data = json.loads(path.read_text())
    assert path.name == MANIFEST_NAME
    assert data["seed"] == 7 and data["config"]["name"] == "t"
    assert data["config_file"] == "t.yaml"
    assert data["packages"]["numpy"] and data["packages"]["SimpleITK"]
    assert "commit" in data["git"]
    assert data["inputs"]["a"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    # a timepoint of a DICOM folder: the folder's digest with the selector folded in
    assert data["inputs"]["series"] == input_digest(f"{d}#t=2") != sha256_path(d)
    assert data["inputs"]["gone"] is None


def test_folder_hash_changes_with_content(tmp_path):
    (tmp_path / "x").write_text("1")
    before = sha256_path(tmp_path)
    (tmp_path / "x").write_text("2")
    assert sha256_path(tmp_path) != before
    assert hash_inputs([tmp_path / "x"])[str(tmp_path / "x")] == sha256_path(tmp_path / "x")
