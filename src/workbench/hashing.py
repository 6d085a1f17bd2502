"""Content hashing: the one place that says what "the same input" means.

Every cache in the workbench is keyed by content, never by file name or time stamp:

* :func:`input_digest` — an image input (a file, a DICOM folder, or ``FOLDER#t=K``); a file's
  digest is its plain sha256 (what ``sha256sum`` prints), a folder's hashes its files' relative
  names and digests in sorted order. Used by the preprocessing cache, the feature store and the
  run manifest.
* :func:`json_digest` — parameters and settings, as canonical JSON.
* :func:`frame_digest` — a table by value (a rewritten but identical parquet still matches).
* :func:`code_digest` — the source of workbench packages (a code change invalidates results
  computed by it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import ImageError

__all__ = ["canonical_json", "code_digest", "digest_many", "frame_digest", "input_digest",
           "json_digest", "path_digest", "sha256_file", "split_selector"]

_CHUNK = 1 << 20
_SELECTOR = re.compile(r"^(?P<path>.*)#t=(?P<t>\d+)$")
_PACKAGE_ROOT = Path(__file__).resolve().parent


def split_selector(spec: str | Path) -> tuple[str, int | None]:
    """Split an input spec ``"DIR#t=K"`` into ``("DIR", K)``; plain paths give ``(path, None)``."""
    match = _SELECTOR.match(str(spec))
    if match:
        return match.group("path"), int(match.group("t"))
    return str(spec), None


def sha256_file(path: str | Path) -> str:
    """sha256 of one file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def path_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder (its files' relative names and digests, sorted)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def input_digest(spec: str | Path, *, patient: str | None = None, what: str = "input") -> str:
    """Digest of an image input: :func:`path_digest` of its path, with a temporal selector
    (``#t=K``) folded in when there is one.

    Raises
    ------
    ImageError
        When the input is missing or unreadable, naming the patient and the file.
    """
    path, temporal = split_selector(spec)
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{what} not found", patient=patient, step="read", path=str(spec))
    try:
        digest = path_digest(p)
    except OSError as exc:
        raise ImageError(f"cannot read {what} to hash it ({type(exc).__name__}: {exc.strerror})",
                         patient=patient, step="read", path=str(spec)) from exc
    if temporal is None:
        return digest
    return hashlib.sha256(f"{digest}#t={temporal}".encode()).hexdigest()


def digest_many(specs: Iterable[str], *, threads: int = 4) -> dict[str, str | Exception]:
    """:func:`input_digest` of several inputs in parallel threads (hashlib releases the GIL).

    Returns ``spec -> hex digest``, or the exception raised for that spec (the caller reports
    it per patient).
    """
    unique = list(dict.fromkeys(str(p) for p in specs))

    def one(spec: str) -> str | Exception:
        try:
            return input_digest(spec)
        except Exception as exc:  # reported per patient by the caller
            return exc

    if len(unique) <= 1 or threads <= 1:
        return {p: one(p) for p in unique}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(zip(unique, pool.map(one, unique), strict=True))


def canonical_json(payload: Any) -> str:
    """Stable JSON text of ``payload`` (sorted keys, no whitespace) for hashing."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def json_digest(payload: Any) -> str:
    """sha256 of :func:`canonical_json` of ``payload``."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def frame_digest(frame: pd.DataFrame | pd.Series) -> str:
    """sha256 of a frame's index, columns and values (not of its file's bytes)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    names = frame.columns if isinstance(frame, pd.DataFrame) else [frame.name]
    h.update(json.dumps([str(c) for c in names]).encode())
    return h.hexdigest()


def code_digest(modules: Iterable[str]) -> str:
    """sha256 of the source of workbench packages or modules (``"models"``,
    ``"features/radiomics"``...), relative names included, in sorted order."""
    h = hashlib.sha256()
    for name in modules:
        target = _PACKAGE_ROOT / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [
            target.with_suffix(".py")]
        for path in files:
            h.update(str(path.relative_to(_PACKAGE_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def hash_inputs(paths: Mapping[str, str | Path] | Iterable[str | Path]) -> dict[str, str | None]:
    """Map each input (by label, or by its path) to its digest, ``None`` if missing."""
    items = paths.items() if isinstance(paths, Mapping) else ((str(p), p) for p in paths)
    out: dict[str, str | None] = {}
    for label, p in items:
        try:
            out[str(label)] = input_digest(p)
        except ImageError:
            out[str(label)] = None
    return out
