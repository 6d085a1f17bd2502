"""``RunData``: one run directory, read lazily, each file at most once.

The report, the notebooks and the dashboard read a run directory through this class rather
than opening files themselves, so the layout lives in one place (:data:`RUN_FILES`) and a
missing file fails with a message naming the file and the stage that writes it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

__all__ = ["RUN_FILES", "RunData", "RunDataError", "RunFile"]


class RunDataError(WorkbenchError):
    """A run directory lacks a file, or a file cannot be read."""


@dataclass(frozen=True)
class RunFile:
    """One file of the run directory: where it lives and which stage writes it."""

    path: str
    stage: str
    optional: bool = False


#: Every table of a run directory, by name (see :mod:`workbench.runner` and
#: :mod:`workbench.models.stage` for the columns).
RUN_FILES: dict[str, RunFile] = {
    "manifest": RunFile("run_manifest.json", "run (written last)"),
    "cohort": RunFile("cohort/cohort.parquet", "cohort"),
    "problems": RunFile("cohort/problems.csv", "cohort", optional=True),
    "table1": RunFile("table1/table1.csv", "table1", optional=True),
    "table1_split": RunFile("table1/split.csv", "table1", optional=True),
    "radiomics": RunFile("features/radiomics.parquet", "features (radiomics)", optional=True),
    "kinetic": RunFile("features/kinetic.parquet", "features (kinetic)", optional=True),
    "deep": RunFile("features/deep.parquet", "features (deep)", optional=True),
    "deep_weights": RunFile("features/deep_weights.json", "features (deep)", optional=True),
    "predictions": RunFile("models/predictions.parquet", "models"),
    "metrics": RunFile("models/metrics.parquet", "models"),
    "selection": RunFile("models/selection.parquet", "models"),
    "signatures": RunFile("models/signatures.parquet", "models"),
    "lasso_cv": RunFile("models/lasso_cv.parquet", "models", optional=True),
    "shap": RunFile("models/shap.parquet", "models (SHAP)", optional=True),
    "skipped": RunFile("models/skipped.csv", "models", optional=True),
    "split": RunFile("models/split.csv", "models"),
    "audit": RunFile("audit/null_audit.parquet", "audit", optional=True),
    "audit_summary": RunFile("audit/null_audit_summary.csv", "audit", optional=True),
    "ibsi_rows": RunFile("ibsi/ibsi_rows.csv", "ibsi", optional=True),
    "ibsi_report": RunFile("ibsi/ibsi_report.txt", "ibsi", optional=True),
}


class RunData:
    """Lazy, cached access to the tables of one run directory.

    Parameters
    ----------
    run_dir
        The run directory (``data/runs/<name>``), as written by ``workbench run`` / ``demo``.

    Examples
    --------
    >>> run = RunData("data/runs/demo")          # doctest: +SKIP
    >>> run.metrics.query("metric == 'auc'")     # doctest: +SKIP
    >>> run.missing("audit")                     # None, or why it is absent  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise RunDataError("run directory not found; pass the folder `workbench run` or "
                               "`workbench demo` wrote (data/runs/<name>)", step="report",
                               path=self.run_dir)
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RunData({str(self.run_dir)!r})"

    # ------------------------------------------------------------------ generic access
    def path(self, name: str) -> Path:
        """Absolute path of the file called ``name`` in :data:`RUN_FILES`."""
        if name not in RUN_FILES:
            raise RunDataError(f"unknown run file {name!r}; known: {sorted(RUN_FILES)}",
                               step="report")
        return self.run_dir / RUN_FILES[name].path

    def has(self, name: str) -> bool:
        """Whether the file exists and holds data."""
        return self.missing(name) is None

    def missing(self, name: str) -> str | None:
        """``None`` when ``name`` exists and is not empty, else a short reason."""
        path = self.path(name)
        spec = RUN_FILES[name]
        if not path.is_file():
            return f"{spec.path} not found (written by the {spec.stage} stage)"
        value = self.load(name)
        if isinstance(value, pd.DataFrame) and value.empty:
            return f"{spec.path} is empty"
        if isinstance(value, str | dict) and not value:
            return f"{spec.path} is empty"
        return None

    def load(self, name: str) -> Any:
        """Read ``name`` once (DataFrame, dict for JSON, str for text) and cache it."""
        if name in self._cache:
            return self._cache[name]
        path = self.path(name)
        spec = RUN_FILES[name]
        if not path.is_file():
            raise RunDataError(f"{spec.path} not found in the run directory; it is written by "
                               f"the {spec.stage} stage — rerun that stage",
                               step="report", path=path)
        try:
            value = self._read(path)
        except (OSError, ValueError) as exc:
            raise RunDataError(f"cannot read {spec.path}: {exc}", step="report",
                               path=path) from exc
        self._cache[name] = value
        return value

    @staticmethod
    def _read(path: Path) -> Any:
        suffix = path.suffix
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            try:
                return pd.read_csv(path)
            except pd.errors.EmptyDataError:  # e.g. skipped.csv when nothing was skipped
                return pd.DataFrame()
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        return path.read_text(encoding="utf-8")

    # ------------------------------------------------------------------ tables
    @property
    def manifest(self) -> dict:
        """``run_manifest.json``."""
        return self.load("manifest")

    @property
    def cohort(self) -> pd.DataFrame:
        return self.load("cohort")

    @property
    def predictions(self) -> pd.DataFrame:
        return self.load("predictions")

    @property
    def metrics(self) -> pd.DataFrame:
        return self.load("metrics")

    @property
    def selection(self) -> pd.DataFrame:
        return self.load("selection")

    @property
    def signatures(self) -> pd.DataFrame:
        return self.load("signatures")

    @property
    def shap(self) -> pd.DataFrame:
        return self.load("shap")

    @property
    def lasso_cv(self) -> pd.DataFrame:
        """LASSO cross-validation curves (``models/lasso_cv.parquet``)."""
        return self.load("lasso_cv")

    @property
    def audit(self) -> pd.DataFrame:
        return self.load("audit")

    @property
    def audit_summary(self) -> pd.DataFrame:
        return self.load("audit_summary")

    @property
    def table1(self) -> pd.DataFrame:
        return self.load("table1")

    @property
    def problems(self) -> pd.DataFrame:
        return self.load("problems")

    # ------------------------------------------------------------------ derived
    @property
    def labels(self) -> pd.Series:
        """pCR (0/1) by patient id (string), labelled patients only."""
        if "labels" not in self._cache:
            cohort = self.cohort
            known = cohort[cohort["pcr"].notna()]
            self._cache["labels"] = pd.Series(
                known["pcr"].astype(int).to_numpy(),
                index=pd.Index(known["patient_id"].astype(str), name="patient_id"),
                name="pcr")
        return self._cache["labels"]

    @property
    def protocols(self) -> list[str]:
        """Protocols present in the metrics, honest first."""
        have = set(self.metrics["protocol"].astype(str))
        return [p for p in ("honest", "paper") if p in have] + sorted(
            have - {"honest", "paper"})

    @property
    def weights_label(self) -> str | None:
        """The deep-weights label (manifest, else ``features/deep_weights.json``), or
        ``None`` when the run has no deep features."""
        info = None
        if self.path("manifest").is_file():
            info = self.manifest.get("deep_weights")
        if not info and self.path("deep_weights").is_file():
            info = self.load("deep_weights")
        if not info:
            return None
        if info.get("label"):
            return str(info["label"])
        from workbench.features.deep import weights_label

        try:
            return weights_label(info)
        except (KeyError, AttributeError, TypeError):
            return "weights provenance recorded without a label"

    @property
    def ibsi_line(self) -> str:
        """One line on IBSI conformance: ``IBSI digital phantom: M/N matched`` or why not."""
        info = self.manifest.get("ibsi") if self.path("manifest").is_file() else None
        if isinstance(info, dict) and info.get("line"):
            return str(info["line"])
        if self.path("ibsi_report").is_file():
            lines = [ln for ln in self.load("ibsi_report").splitlines() if ln.strip()]
            if lines:
                return lines[-1].strip()
        if isinstance(info, dict) and info.get("status") == "skipped":
            return f"IBSI check skipped: {info.get('reason', 'no reason recorded')}"
        return "IBSI check: not in this run"
