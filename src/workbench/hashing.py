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
* :func:`identical_inputs` — which of one patient's inputs are the same input twice.

A :class:`DigestCache` (active inside :func:`remembered_digests`) spares re-reading a file
whose digest is already known: like git's index or DVC's state database it trusts a stored
digest only while the file's device, inode, size, modification time and status-change time
(``st_ctime_ns``, which no program can set back) are all unchanged, so an edited, replaced,
touched or re-linked file is hashed again. A file changed less than two seconds before it was
hashed is not remembered (it could change again within one timestamp tick, unseen: git's
"racy" entries).

Only regular files (or symbolic links to them) are read: a FIFO, a device such as
``/dev/zero`` or a socket would block or stream forever, so :func:`non_regular_kind` names it
and the hashing functions refuse it with an error naming the path and its kind. Inside a
folder (a DICOM series) such entries are skipped, as the DICOM reader skips them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import ImageError, WorkbenchError
from workbench.files import atomic_write_text

__all__ = ["DigestCache", "canonical_json", "code_digest", "digest_many", "frame_digest",
           "identical_inputs", "input_digest", "json_digest", "non_regular_kind", "path_digest",
           "remembered_digests", "sha256_file", "split_selector"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_SELECTOR = re.compile(r"^(?P<path>.*)#t=(?P<t>\d+)$")
_PACKAGE_ROOT = Path(__file__).resolve().parent


def split_selector(spec: str | Path) -> tuple[str, int | None]:
    """Split an input spec ``"DIR#t=K"`` into ``("DIR", K)``; plain paths give ``(path, None)``."""
    match = _SELECTOR.match(str(spec))
    if match:
        return match.group("path"), int(match.group("t"))
    return str(spec), None


_KINDS = ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def non_regular_kind(path: str | Path, *, allow_dir: bool = False) -> str | None:
    """What ``path`` is when it is not a regular file (``"FIFO (named pipe)"``,
    ``"character device"``, ...), or ``None`` for a regular file (a symbolic link counts as
    what it points to), a folder when ``allow_dir``, or a missing path (callers report that
    themselves)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or (allow_dir and stat.S_ISDIR(mode)):
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _refusal(kind: str, expected: str = "an image file") -> str:
    if kind == "folder":
        return f"is a folder; give the path of {expected}"
    return (f"is a {kind}, not a regular file: reading it would block or never end; give the "
            f"path of {expected}")


def sha256_file(path: str | Path) -> str:
    """sha256 of one regular file, streamed.

    Raises
    ------
    WorkbenchError
        When ``path`` is a FIFO, a device, a socket or a folder (naming the path and kind).
    """
    kind = non_regular_kind(path)
    if kind is not None:
        raise WorkbenchError(f"cannot hash it: it {_refusal(kind, 'a regular file')}",
                             step="hash", path=path)
    if _active["cache"] is not None:
        return _active["cache"].sha256(path)
    return _stream_sha256(path)


def _stream_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


#: A file whose last change is this close to the start of its hashing is not remembered.
RACY_NS = 2_000_000_000


def _stat_signature(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class DigestCache:
    """sha256 digests of files, remembered while each file is provably unchanged.

    An entry maps a file's resolved path to its stat signature (device, inode, size,
    ``st_mtime_ns``, ``st_ctime_ns``) and digest. :meth:`sha256` returns the stored digest
    only when the file's signature now is the stored one; otherwise it reads the file. See
    the module docstring for why that is safe and for "racy" files, which are never stored.

    Parameters
    ----------
    path
        JSON file the entries are loaded from and written to by :meth:`save` (``None``: in
        memory only). An unreadable or corrupt file is treated as empty.
    """

    VERSION = 1

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.entries: dict[str, list] = self._read() if self.path is not None else {}
        self.hits = 0
        self.misses = 0
        self._changed = False

    def _read(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != self.VERSION:
            return {}
        files = data.get("files")
        return {k: v for k, v in files.items() if isinstance(v, list) and len(v) == 6} if \
            isinstance(files, dict) else {}

    def sha256(self, path: str | Path) -> str:
        """The sha256 of the regular file ``path``, read only when not provably unchanged."""
        key = os.path.realpath(path)
        before = _stat_signature(os.stat(key))
        with self._lock:
            entry = self.entries.get(key)
        if entry is not None and entry[:5] == before:
            with self._lock:
                self.hits += 1
            return entry[5]
        started = time.time_ns()
        digest = _stream_sha256(key)
        after = _stat_signature(os.stat(key))
        with self._lock:
            self.misses += 1
            if after == before and max(after[3], after[4]) < started - RACY_NS:
                self.entries[key] = [*after, digest]
                self._changed = True
            else:  # changed while or just before being read: do not vouch for it later
                self.entries.pop(key, None)
        return digest

    def save(self) -> None:
        """Merge the entries into :attr:`path` (atomically; entries of files that no longer
        exist are dropped). Concurrent runs may lose each other's new entries, never their
        correctness: a lost entry only means hashing that file again."""
        if self.path is None or not self._changed:
            return
        with self._lock:
            merged = {**self._read(), **self.entries}
            merged = {k: v for k, v in merged.items() if os.path.exists(k)}
            atomic_write_text(self.path, json.dumps({"version": self.VERSION,
                                                     "files": merged}))
            self._changed = False


_active: dict[str, DigestCache | None] = {"cache": None}


@contextlib.contextmanager
def remembered_digests(path: str | Path | None) -> Iterator[DigestCache]:
    """Within the block, :func:`sha256_file` (and all hashing built on it) in this process
    uses a :class:`DigestCache` persisted at ``path``, saved when the block ends. Worker
    processes started by the block hash without it. Blocks nest: an inner block keeps the
    outer cache."""
    if _active["cache"] is not None:
        yield _active["cache"]
        return
    cache = DigestCache(path)
    _active["cache"] = cache
    try:
        yield cache
    finally:
        _active["cache"] = None
        try:
            cache.save()
        except OSError as exc:  # a cache that cannot be written only costs re-hashing
            log.warning("could not save the file digest cache %s: %s", path, exc)
        log.debug("file digests: %d remembered, %d read", cache.hits, cache.misses)


def path_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder (its regular files' relative names and digests,
    sorted; FIFOs, devices and sockets inside it are skipped).

    Raises
    ------
    ImageError
        When ``path`` itself is a FIFO, a device or a socket.
    """
    p = Path(path)
    kind = non_regular_kind(p, allow_dir=True)
    if kind is not None:
        raise ImageError(f"input {_refusal(kind)}", step="read", path=p)
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
    kind = non_regular_kind(p, allow_dir=True)
    if kind is not None:
        raise ImageError(f"{what} {_refusal(kind)}", patient=patient, step="read",
                         path=str(spec))
    try:
        digest = path_digest(p)
    except OSError as exc:
        raise ImageError(f"cannot read {what} to hash it ({type(exc).__name__}: {exc.strerror})",
                         patient=patient, step="read", path=str(spec)) from exc
    if temporal is None:
        return digest
    return hashlib.sha256(f"{digest}#t={temporal}".encode()).hexdigest()


def identical_inputs(specs: Mapping[str, str | Path]) -> list[tuple[str, str, str]]:
    """Pairs of named inputs (``{"phase 'pre'": path, ...}``) that are one input twice.

    Two inputs are the same when their paths resolve to one file or folder (symbolic links
    followed) with the same temporal selector, or when their contents are identical (same
    :func:`path_digest`, same selector). Contents are hashed only for inputs of equal size
    (a folder: equal number and total size of files), so distinct compressed phases cost a
    ``stat`` each. Missing, unreadable and non-regular inputs are left to the reader to report.

    Returns
    -------
    list of (name, earlier name, how)
        ``how`` is ``"same file"`` or ``"identical content"``; each later duplicate is paired
        with the first input it repeats.
    """
    seen: list[tuple[str, tuple[str, int | None], tuple[int, int], Path]] = []
    digests: dict[str, str] = {}
    found = []

    def digest(name: str, path: Path) -> str | None:
        if name not in digests:
            try:
                digests[name] = path_digest(path)
            except (OSError, WorkbenchError):
                return None
        return digests[name]

    for name, spec in specs.items():
        raw, temporal = split_selector(spec)
        p = Path(raw)
        try:
            resolved = p.resolve(strict=True)
            if non_regular_kind(resolved, allow_dir=True) is not None:
                continue
            files = [resolved] if resolved.is_file() else [
                f for f in resolved.rglob("*") if f.is_file()]
            signature = (len(files), sum(f.stat().st_size for f in files))
        except OSError:
            continue
        for other, (other_path, other_t), other_sig, other_raw in seen:
            if other_t != temporal:
                continue
            if other_path == str(resolved):
                found.append((name, other, "same file"))
                break
            if other_sig == signature and resolved.is_file() == Path(other_path).is_file():
                mine, theirs = digest(name, p), digest(other, other_raw)
                if mine is not None and mine == theirs:
                    found.append((name, other, "identical content"))
                    break
        seen.append((name, (str(resolved), temporal), signature, p))
    return found


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
