"""The set-up promises: pinned, in-sync dependency files and the two README commands."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0])


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock line is not an exact pin: {line!r}"
            pins[_norm(name)] = version
    return pins


def test_every_dependency_is_pinned_in_the_lock():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = _lock()
    missing = [r for r in wanted if _requirement_name(r) not in pins]
    assert not missing, f"not pinned in requirements.lock: {missing}"
    for extra in ("distributed", "pyradiomics-bhklab", "tensorflow-cpu", "skops", "pytest"):
        assert extra in pins


def test_environment_yml_installs_the_same_pinned_set():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python>=3.11,<3.14" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-c requirements.lock" in pip
    assert any(p.startswith("-e .") for p in pip)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.14"


def test_readme_shows_the_two_commands_and_ci_runs_make_test():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "requirements.lock" in makefile and "-m venv" in makefile


SUPPORTED = ["3.11", "3.12", "3.13"]


def _versions_allowed_by(specifier: str) -> list[str]:
    """The 3.x versions (3.0-3.29) a ``>=3.a,<3.b`` requires-python admits."""
    bounds = dict(re.fullmatch(r"(>=|<)3\.(\d+)", part.strip()).groups()
                  for part in specifier.split(","))
    return [f"3.{m}" for m in range(30) if int(bounds[">="]) <= m < int(bounds["<"])]


def test_supported_pythons_agree_across_pyproject_makefile_and_ci():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _versions_allowed_by(project["requires-python"]) == SUPPORTED
    classified = [c.rsplit(" :: ", 1)[-1] for c in project.get("classifiers", [])
                  if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert classified in ([], SUPPORTED)

    makefile = (REPO / "Makefile").read_text()
    make_versions = re.search(r"^PYTHON_VERSIONS := (.+)$", makefile, re.M).group(1).split()
    assert make_versions == SUPPORTED
    # the default interpreter is searched for in that list (3.11 first), and checked against it
    assert "$(addprefix python,$(PYTHON_VERSIONS)) python3" in makefile
    assert makefile.count('in "$(PYTHON_VERSIONS)".split()') == 2

    ci = (REPO / ".ci" / "run").read_text()
    ci_versions = re.search(r'^PYTHON_VERSIONS="(.+)"$', ci, re.M).group(1).split()
    assert ci_versions == SUPPORTED
    assert "for p in python3.11 python3.12 python3.13 python3; do" in ci  # as the Makefile
    assert "make test" in ci and "bash .ci/smoke.sh" in ci
    assert "-c \"$REPO/requirements.lock\"" in (REPO / ".ci" / "smoke.sh").read_text()


def test_makefile_rejects_an_unsupported_python():
    """The version check the Makefile runs, fed supported and unsupported versions."""
    makefile = (REPO / "Makefile").read_text()
    check = re.search(r"^\t@\$\(PYTHON\) -c '(.+)'$", makefile, re.M).group(1)
    check = check.replace("$(PYTHON_VERSIONS)", " ".join(SUPPORTED))
    check = check.replace("$(PYTHON_RANGE)", "3.11-3.13")
    for version, ok in (((3, 10), False), ((3, 11), True), ((3, 13), True), ((3, 14), False)):
        code = f"import sys; sys.version_info = {version + (0, 'final', 0)!r}; " + check
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert (done.returncode == 0) == ok, (version, done.stderr)
        if not ok:
            assert "Python 3.11-3.13 required" in done.stderr
