"""``RunData``: lazy, cached reading of one run directory, for the report, the dashboard and the
notebooks (the layout itself is :mod:`workbench.rundir`); ``ValidationData``: the same for one
external-validation folder (``workbench validate``; :data:`~workbench.rundir.VALIDATION_FILES`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.rundir import VALIDATION_FILES, RunDataError, RunDir

__all__ = ["RunData", "RunDataError", "ValidationData", "validation_folders"]


class RunData(RunDir):
    """Lazy, cached reading of one existing run directory (report, dashboard, notebooks).

    Parameters
    ----------
    run_dir
        The run directory (``data/runs/<name>``), as written by ``workbench run``.

    Examples
    --------
    >>> run = RunData("data/runs/demo")          # doctest: +SKIP
    >>> run.metrics.query("metric == 'auc'")     # doctest: +SKIP
    >>> run.missing("audit")                     # None, or why it is absent  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__(run_dir)
        if not self.root.is_dir():
            raise RunDataError("run directory not found; pass the folder `workbench run` "
                               "wrote (data/runs/<name>)", step="report", path=self.root)
        self._cache: dict[str, Any] = {}

    @property
    def run_dir(self) -> Path:
        return self.root

    def has(self, name: str) -> bool:
        """Whether the file exists and holds data."""
        return self.missing(name) is None

    def missing(self, name: str) -> str | None:
        """``None`` when ``name`` exists and is not empty, else a short reason."""
        spec = self.spec(name)
        if not self.path(name).is_file():
            return f"{spec.path} not found (written by the {spec.stage} stage)"
        value = self.load(name)
        if isinstance(value, pd.DataFrame) and value.empty:
            return f"{spec.path} is empty"
        if isinstance(value, str | dict) and not value:
            return f"{spec.path} is empty"
        return None

    def load(self, name: str) -> Any:
        """Read ``name`` once and cache it (see :meth:`RunDir.read`)."""
        if name not in self._cache:
            self._cache[name] = self.read(name)
        return self._cache[name]

    # ------------------------------------------------------------------ tables
    @property
    def manifest(self) -> dict:
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

    @property
    def preprocessed(self) -> pd.DataFrame:
        return self.load("preprocessed")

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
        """The deep-weights label recorded by the deep stage (manifest, else
        ``features/deep_weights.json``), or ``None`` when the run has no deep features."""
        info = self.manifest.get("deep_weights") if self.exists("manifest") else None
        if not info and self.exists("deep_weights"):
            info = self.load("deep_weights")
        if not info:
            return None
        label = info.get("label") if isinstance(info, dict) else None
        return str(label) if label else "weights provenance recorded without a label"

    @property
    def ibsi_line(self) -> str:
        """One line on IBSI conformance: ``IBSI digital phantom: M/N matched`` or why not."""
        info = self.manifest.get("ibsi") if self.exists("manifest") else None
        if isinstance(info, dict) and info.get("line"):
            return str(info["line"])
        if self.exists("ibsi_report"):
            lines = [ln for ln in self.load("ibsi_report").splitlines() if ln.strip()]
            if lines:
                return lines[-1].strip()
        if isinstance(info, dict) and info.get("status") == "skipped":
            return f"IBSI check skipped: {info.get('reason', 'no reason recorded')}"
        return "IBSI check: not in this run"

    def crop_path(self, patient_id: str) -> Path | None:
        """``features/crops/<patient>.png`` when the run has it (``None`` otherwise, also for
        an id that cannot be a file name)."""
        try:
            path = self.path("crop", patient_id=patient_id)
        except RunDataError:
            return None
        return path if path.is_file() else None


def validation_folders(run_dir: str | Path) -> dict[str, Path]:
    """``{name: folder}`` of the external validations stored in a run
    (``<run>/validation/<name>/summary.json``), sorted by name; empty when there are none.
    Only looks for the files (reads nothing)."""
    return {path.parent.name: path.parent
            for path in RunDir(run_dir).glob("validation_summary")}


class ValidationData:
    """Lazy, cached reading of one external-validation folder.

    The folder ``workbench validate --out DIR`` writes, or ``<run>/validation/<name>/``
    inside a run (:func:`validation_folders`); its files are the keys of
    :data:`~workbench.rundir.VALIDATION_FILES` (``summary``, ``metrics``, ``predictions``...).
    Patient ids are read as text.

    Parameters
    ----------
    folder
        The validation folder; it must hold ``summary.json``.

    Raises
    ------
    RunDataError
        The folder has no ``summary.json``.

    Examples
    --------
    >>> val = ValidationData("data/validation/ispy2")        # doctest: +SKIP
    >>> val.summary["headline"]["auc"], val.labelled         # doctest: +SKIP
    >>> val.missing("case_mix")     # None, or why the folder lacks it  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        summary = self.folder / VALIDATION_FILES["summary"][0]
        if not summary.is_file():
            raise RunDataError("not an external-validation folder: summary.json not found; "
                               "pass the folder `workbench validate --out` wrote",
                               step="validation", path=self.folder)
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r})"

    def path(self, key: str) -> Path:
        """The file of ``key`` (a key of :data:`~workbench.rundir.VALIDATION_FILES`)."""
        if key not in VALIDATION_FILES:
            raise RunDataError(f"unknown validation file {key!r}; known: "
                               f"{sorted(VALIDATION_FILES)}", step="validation")
        return self.folder / VALIDATION_FILES[key][0]

    def load(self, key: str) -> Any:
        """``key`` read once and cached: a dict for JSON, a DataFrame for CSV (an empty one
        for a file holding only its header)."""
        if key not in self._cache:
            path = self.path(key)
            if not path.is_file():
                raise RunDataError(f"{path.name} not found in the validation folder; it is "
                                   "written by `workbench validate`", step="validation",
                                   path=path)
            try:
                if path.suffix == ".json":
                    self._cache[key] = json.loads(path.read_text(encoding="utf-8"))
                elif path.suffix == ".csv":
                    try:
                        self._cache[key] = pd.read_csv(path, dtype={"patient_id": str})
                    except pd.errors.EmptyDataError:
                        self._cache[key] = pd.DataFrame()
                else:
                    self._cache[key] = path.read_text(encoding="utf-8")
            except (OSError, ValueError) as exc:
                raise RunDataError(f"cannot read {path.name}: {exc}", step="validation",
                                   path=path) from exc
        return self._cache[key]

    def missing(self, key: str) -> str | None:
        """``None`` when ``key`` exists and holds rows, else a short reason."""
        path = self.path(key)
        if not path.is_file():
            return f"{path.name} not in the validation folder"
        value = self.load(key)
        if isinstance(value, pd.DataFrame) and value.empty:
            return f"{path.name} holds no rows"
        return None

    def has(self, key: str) -> bool:
        """Whether ``key`` exists and holds rows."""
        return self.missing(key) is None

    def table(self, key: str) -> pd.DataFrame:
        """``key`` as a DataFrame, an empty one when the folder lacks it."""
        return self.load(key) if self.has(key) else pd.DataFrame()

    @property
    def summary(self) -> dict:
        """``summary.json``."""
        return self.load("summary")

    @property
    def name(self) -> str:
        """The validation's name (``summary.json``, else the folder's name)."""
        return str(self.summary.get("name") or self.folder.name)

    @property
    def labelled(self) -> bool:
        """Whether the cohort had labels (``False``: predict-only, no performance)."""
        return bool(self.summary.get("labelled")) and self.summary.get("headline") is not None
