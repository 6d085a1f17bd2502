"""Run manifests: every output folder says what made it.

``run_manifest.json`` holds the config, seed, package versions, the git commit (and whether
the tree was dirty), the command line, the platform and a sha256 of every input file, so a
number can always be traced back to exactly what produced it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.files import atomic_write_text
from workbench.hashing import hash_inputs

MANIFEST_NAME = "run_manifest.json"
TRACKED_PACKAGES = (
    "pcr-fusion-workbench", "numpy", "scipy", "pandas", "pyarrow", "SimpleITK", "pydicom",
    "nibabel", "pyradiomics-bhklab", "PyWavelets", "scikit-learn", "xgboost-cpu", "catboost",
    "shap", "skops", "tensorflow-cpu", "keras", "dask", "distributed", "panel", "holoviews",
    "bokeh", "pydantic", "pyyaml",
)


def package_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``packages`` (``None`` when not installed); no imports."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(repo: str | Path | None = None) -> dict[str, Any]:
    """Commit hash and dirtiness of the workbench checkout (``None`` outside git)."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=cwd, capture_output=True, text=True, timeout=5,
                                    check=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def build_manifest(*, config: Any = None, inputs: Mapping[str, str | Path] | None = None,
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the provenance record (see module docstring)."""
    cfg = None
    if config is not None:
        cfg = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return {
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "config": cfg,
        "config_file": getattr(config, "source", None),
        "seed": (config.get("seed") if isinstance(config, Mapping)
                 else getattr(config, "seed", None)),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "inputs": hash_inputs(inputs or {}),
        **dict(extra or {}),
    }


def write_manifest(out_dir: str | Path, **kwargs: Any) -> Path:
    """Write ``run_manifest.json`` into ``out_dir`` atomically; see :func:`build_manifest`."""
    return atomic_write_text(Path(out_dir) / MANIFEST_NAME,
                             json.dumps(build_manifest(**kwargs), indent=2, default=str) + "\n")


def cohort_inputs(df: Any, columns: Iterable[str]) -> dict[str, str]:
    """``{"<patient>/<column>": path}`` for every non-empty path cell of a cohort table."""
    out: dict[str, str] = {}
    for _, row in df.iterrows():
        for col in columns:
            value = row.get(col)
            if isinstance(value, str) and value:
                out[f"{row['patient_id']}/{col}"] = value
    return out
