"""Atomic file writes: a reader sees the whole file or the previous one, never half of it.

Every writer of the workbench (run directories, the feature store, the preprocessing and
synthetic outputs, saved images and weights, manifests, cache keys) writes to a unique
temporary file in the target's folder and renames it into place, so a run killed with
``kill -9`` leaves only complete files behind. (This protects against killed processes, not
against power loss: files are not fsync'ed.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temporary path to write ``target`` to; renamed onto ``target`` when the block ends
    without an error, removed otherwise. Parent folders are created.

    The temporary name ends with ``target``'s own name, so writers that choose a format by
    suffix (``.nii.gz``, ``.weights.h5``, ``.parquet``) see the right one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{os.getpid()}.{uuid.uuid4().hex[:8]}.{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
