"""The reference data shipped in ``workbench.data``: files, hashes, licences, API and CLI."""

from __future__ import annotations

import glob
import hashlib
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import workbench.data as wd
from workbench.errors import WorkbenchError

REPO = Path(__file__).resolve().parents[2]
PACKAGE = wd.data_dir()
# a README table row: | `relative/path` | ... | `64 hex digits` |
README_ROW = re.compile(r"^\| `(?P<path>[^`]+)` \|.*\| `(?P<sha>[0-9a-f]{64})` \|$")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _readme_hashes() -> dict[str, str]:
    text = (PACKAGE / "README.md").read_text(encoding="utf-8")
    return {m["path"]: m["sha"] for m in map(README_ROW.match, text.splitlines()) if m}


def _shipped_files() -> set[str]:
    """Every file in the data folder except the API, this folder's README and caches."""
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
            and p.relative_to(PACKAGE).as_posix() not in ("__init__.py", "README.md")}


def test_the_data_folder_is_the_package_folder():
    assert PACKAGE == Path(wd.__file__).parent
    assert PACKAGE.name == "data" and PACKAGE.parent.name == "workbench"


@pytest.mark.parametrize("relative", sorted(wd.FILES))
def test_every_file_exists_with_its_recorded_sha256(relative):
    path = PACKAGE / relative
    assert path.is_file(), f"shipped file missing: {path}"
    assert _sha256(path) == wd.FILES[relative], f"{relative} changed; update FILES and README"


def test_readme_lists_every_file_with_the_same_sha256():
    assert _readme_hashes() == wd.FILES


def test_nothing_unlisted_is_shipped():
    assert _shipped_files() == set(wd.FILES)


def test_datasets_paths_and_licences():
    assert set(wd.DATASETS) == set(wd.LICENCE_FILES) == {"ibsi1", "ispy1_clinical"}
    for name, ds in wd.DATASETS.items():
        path, licence, citation = ds  # the documented (path, licence, citation) tuple
        assert wd.dataset_path(name) == PACKAGE / path and (PACKAGE / path).exists()
        assert licence.startswith("CC BY") and citation
        assert wd.LICENCE_FILES[name] in wd.FILES
        assert any(f.startswith(path) for f in wd.FILES), name
    ibsi_licence = (PACKAGE / wd.LICENCE_FILES["ibsi1"]).read_text(errors="replace")
    assert "Attribution 4.0 International" in ibsi_licence
    ispy_licence = (PACKAGE / wd.LICENCE_FILES["ispy1_clinical"]).read_text()
    for needle in ("CC BY 3.0", "creativecommons.org/licenses/by/3.0", "Hylton NM",
                   "10.7937/K9/TCIA.2016.HdHpgJLK", "Clark K"):
        assert needle in ispy_licence


def test_accessors_return_the_shipped_files():
    image, mask = wd.ibsi1_phantom()
    assert image == wd.ibsi1_dir() / "digital_phantom" / "image.nii.gz"
    assert mask == wd.ibsi1_dir() / "digital_phantom" / "mask.nii.gz"
    assert wd.ibsi1_reference_values() == wd.ibsi1_dir() / "reference_values.csv"
    workbook = wd.ispy1_clinical_workbook()
    assert workbook.name == "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"
    assert zipfile.is_zipfile(workbook)  # an xlsx is a zip archive
    for path in (image, mask, wd.ibsi1_reference_values(), workbook):
        assert path.is_file() and path.is_relative_to(PACKAGE)


def test_unknown_dataset_and_missing_file_errors(monkeypatch, tmp_path):
    with pytest.raises(WorkbenchError, match="allowed: ibsi1, ispy1_clinical"):
        wd.dataset_path("ispy2")
    monkeypatch.setattr(wd, "files", lambda _name: tmp_path)  # an install without the data
    with pytest.raises(WorkbenchError, match="shipped reference data missing"):
        wd.ibsi1_reference_values()


def test_zipped_install_is_refused_clearly(monkeypatch, tmp_path):
    archive = tmp_path / "wb.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("workbench/data/README.md", "x")
    monkeypatch.setattr(wd, "files", lambda _name: zipfile.Path(archive, "workbench/data/"))
    with pytest.raises(WorkbenchError, match="not on the file system"):
        wd.data_dir()


def test_describe_names_paths_licences_and_citations():
    text = wd.describe()
    for name, ds in wd.DATASETS.items():
        assert name in text and str(PACKAGE / ds.path) in text
        assert ds.licence in text and ds.citation in text
    assert "workbench data path" in text


def test_package_data_globs_cover_every_shipped_file():
    """The wheel ships what pyproject's package-data patterns match (setuptools globs)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["workbench"]
    src = REPO / "src" / "workbench"
    matched = {Path(p).relative_to(src / "data").as_posix()
               for pattern in patterns if pattern.startswith("data/")
               for p in glob.glob(str(src / pattern), recursive=True) if Path(p).is_file()}
    assert set(wd.FILES) | {"README.md"} <= matched


def _workbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "workbench"
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "workbench.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_ibsi_uses_the_shipped_data_from_anywhere(tmp_path):
    done = _workbench("ibsi", cwd=tmp_path)  # outside the repository: no ../shared to find
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "IBSI digital phantom: 282/282 matched"


def test_cli_data_prints_descriptions_and_paths(tmp_path):
    done = _workbench("data", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ispy1_clinical" in done.stdout and "CC BY 3.0" in done.stdout
    done = _workbench("data", "path", "ispy1_clinical", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{wd.ispy1_clinical_workbook()}\n"
    done = _workbench("data", "path", "nope", cwd=tmp_path)
    assert done.returncode == 2 and "allowed: ibsi1, ispy1_clinical" in done.stderr
