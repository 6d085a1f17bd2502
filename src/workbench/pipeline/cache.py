"""Skip a label-fitted stage (models, null audit) whose inputs, settings and code are unchanged.

Feature extraction and preprocessing have content-addressed caches of their own; the
modelling and audit stages write a run directory instead, so they are cached by a key file
written **last** in their output folder: the SHA-256 of the modelling inputs' content (feature
table, clinical matrix and labels, hashed by value so that a rewritten but identical parquet
still matches), the config sections that shape the stage, any extra arguments and the source of
the packages that compute it. A key that matches and every listed output present means the
stage's outputs are exactly what a rerun would write; anything else reruns it. An interrupted
stage never leaves a key behind, so it is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from workbench.files import atomic_write_text
from workbench.hashing import code_digest, frame_digest

log = logging.getLogger(__name__)

#: packages whose source shapes the modelling results (a code change invalidates the cache)
MODEL_CODE = ("models", "selection", "evaluation")


def stage_key(frames: Iterable[pd.DataFrame | pd.Series], settings: Mapping,
              code: Iterable[str] = MODEL_CODE) -> str:
    """The cache key of a stage: its input frames, its settings (JSON-able) and its code."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(frame_digest(frame).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(code_digest(code).encode())
    return h.hexdigest()


def is_current(key_file: Path, key: str, outputs: Iterable[Path]) -> dict | None:
    """The stored record when ``key_file`` holds ``key`` and every output exists, else None."""
    path = Path(key_file)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("key") != key:
        return None
    missing = [str(o) for o in outputs if not Path(o).exists()]
    if missing:
        log.info("%s: cache key matches but %s are missing; rerunning", path.parent, missing)
        return None
    return record


def mark_done(key_file: Path, key: str, **info) -> None:
    """Write the key file (call after every output is written)."""
    atomic_write_text(key_file, json.dumps({"key": key, **info}, indent=1, default=str))


def invalidate(key_file: Path) -> None:
    """Remove the key file before a stage starts rewriting its outputs."""
    Path(key_file).unlink(missing_ok=True)
