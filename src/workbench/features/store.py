"""Content-addressed per-patient result store shared by every feature stage.

Layout of a store root (e.g. ``data/interim/features``)::

    root/
      <namespace>/              one folder per stage part: radiomics-shape, radiomics-phase, kinetic
        <key[:2]>/<key>.json    one finished unit of work (a patient, or a patient's phase)

A *unit* is the smallest piece of work a stage caches: radiomics stores the shape features of a
patient and the texture features of each (patient, phase) separately, kinetics stores one unit
per patient. Its ``key`` (:func:`make_key`) is the sha256 of everything that determines the
result: the contents of its input files (:func:`workbench.hashing.input_digest`), the canonical content of the
parameters, the stage's code version and the versions of the libraries that compute it. A
rerun with the same inputs recomputes nothing; changing one parameter recomputes only the units
whose key it enters; moving or renaming files invalidates nothing.

Each record is written to a temporary file in the same folder and renamed into place
(:func:`workbench.files.atomic_write_text`): a reader sees the whole record or none, so a run killed with
``kill -9`` leaves only complete units behind and the next run resumes after them. (This
protects against killed processes, not against power loss: files are not fsync'ed.)

Feature values are stored as JSON numbers; Python writes a float's shortest round-trip repr,
so a value read back is bit-identical to the one computed (NaN / inf are stored as JSON
extensions ``NaN`` / ``Infinity``). Failures are not stored: a patient that failed is
retried on the next run, and reported in the errors table (:data:`ERROR_COLUMNS`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.files import atomic_write_text
from workbench.hashing import json_digest
from workbench.provenance import package_versions

log = logging.getLogger(__name__)

#: Bump when the record format changes; part of every key.
STORE_VERSION = 1
ERROR_COLUMNS = ["patient_id", "step", "file", "message"]
KEY_LENGTH = 32


# --------------------------------------------------------------------------- keys
def make_key(namespace: str, payload: Mapping[str, Any]) -> str:
    """Content address of one unit: sha256 of the namespace, store version and ``payload``."""
    return json_digest({"namespace": namespace, "store_version": STORE_VERSION,
                        "payload": payload})[:KEY_LENGTH]


def library_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of the libraries a stage's results depend on (no imports)."""
    return package_versions(tuple(packages))


class FeatureStore:
    """One namespace of the content-addressed store (see module docstring).

    Parameters
    ----------
    root
        Store root folder (shared by every stage; must be visible to every Dask worker).
    namespace
        Folder name of the stage part, e.g. ``"radiomics-phase"``.
    """

    def __init__(self, root: str | Path, namespace: str) -> None:
        self.root = Path(root)
        self.namespace = namespace

    @property
    def folder(self) -> Path:
        return self.root / self.namespace

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> dict | None:
        """The stored record, or ``None`` when absent or unreadable (then it is recomputed)."""
        p = self.path(key)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read stored unit %s (%s); recomputing it", p, exc)
            return None
        try:
            record = json.loads(text)
        except ValueError:
            log.warning("stored unit %s is not valid JSON; recomputing it", p)
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            log.warning("stored unit %s does not hold key %s; recomputing it", p, key)
            return None
        return record

    def save(self, key: str, record: Mapping[str, Any]) -> Path:
        """Write ``record`` (must contain ``"key": key``) atomically."""
        if record.get("key") != key:
            raise ValueError(f"record key {record.get('key')!r} does not match {key!r}")
        return atomic_write_text(self.path(key), json.dumps(record, indent=None))


# --------------------------------------------------------------------------- errors
def errors_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Errors table (columns :data:`ERROR_COLUMNS`), identical rows reported once."""
    frame = pd.DataFrame([{c: r.get(c) for c in ERROR_COLUMNS} for r in rows],
                         columns=ERROR_COLUMNS)
    frame = frame.astype("object").where(frame.notna(), None)
    return frame.drop_duplicates(ignore_index=True)
