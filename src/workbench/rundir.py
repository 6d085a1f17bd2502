"""The run-directory contract: every file a run writes, where it lives and which stage writes it.

Every writer (the pipeline stages, ``workbench model`` / ``audit``) and every reader (the
report, the dashboard, the notebooks, ``workbench predict``) reaches a run's files through
:class:`RunDir` by name, so the layout is written down once, in :data:`RUN_FILES`.
:func:`rundir_tree` prints it (the README's "run directory" table is that output, checked by a
test); :class:`workbench.rundata.RunData` adds lazy, cached reading for the report, the
dashboard and the notebooks.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.files import atomic_path
from workbench.provenance import MANIFEST_NAME

__all__ = ["AUDIT_OUTPUTS", "FEATURE_FAMILIES", "MODEL_OUTPUTS", "RUN_FILES", "RunDataError",
           "VALIDATION_FILES",
           "RunDir", "RunFile", "check_component", "rundir_tree", "safe_join"]

#: Feature families a run extracts, in join order (``features/<family>.parquet``).
FEATURE_FAMILIES: tuple[str, ...] = ("radiomics", "kinetic", "deep")


class RunDataError(WorkbenchError):
    """A run directory lacks a file, a file cannot be read, or a name is not in the contract."""


@dataclass(frozen=True)
class RunFile:
    """One file of the run directory.

    Attributes
    ----------
    path
        Path relative to the run folder; ``{field}`` placeholders are filled by
        :meth:`RunDir.path` (e.g. ``features/crops/{patient_id}.png``).
    stage
        The stage that writes it (named in error messages).
    description
        What it holds.
    optional
        Whether a complete run may lack it (absent stage, nothing to record).
    index
        Whether a table keeps its index when written (feature tables: ``patient_id``).
    """

    path: str
    stage: str
    description: str
    optional: bool = False
    index: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.path) if f)


#: Files of one external validation (``workbench validate``): name -> (file, what). Inside a
#: run they live in ``validation/{validation}/``; ``workbench validate --out DIR`` writes the
#: same files into ``DIR``.
VALIDATION_FILES: dict[str, tuple[str, str]] = {
    "summary": ("summary.json", "model, cohort, counts, protocol of the estimates, headline "
                                "numbers, warnings, the generator's truth (synthetic)"),
    "metrics": ("metrics.csv", "variant (original / recalibrated), metric, estimate, CI, "
                               "CI method"),
    "predictions": ("predictions.csv", "patient_id, label, probability of each variant"),
    "reliability": ("reliability.csv", "reliability curve per variant with Wilson CIs"),
    "decision_curve": ("decision_curve.csv", "net benefit per variant, treat all / none"),
    "thresholds": ("thresholds.csv", "metrics at the model's stored threshold with CIs"),
    "coverage": ("coverage.csv", "per model feature: present / missing / imputed patients"),
    "case_mix": ("case_mix.csv", "development vs external cohort, standardised differences"),
    "membership": ("membership.csv", "can a classifier tell the cohorts apart: AUC and the "
                                     "features that separate them"),
    "report": ("report.html", "standalone HTML validation report"),
}


def _validation() -> dict[str, RunFile]:
    return {f"validation_{name}": RunFile(f"validation/{{validation}}/{file}",
                                          "validate (workbench validate)", what, optional=True)
            for name, (file, what) in VALIDATION_FILES.items()}


def _features(family: str) -> dict[str, RunFile]:
    return {family: RunFile(f"features/{family}.parquet", f"features ({family})",
                            f"{family} features, one row per patient", optional=True,
                            index=True),
            f"{family}_errors": RunFile(f"features/{family}.errors.csv",
                                        f"features ({family})",
                                        f"per-patient {family} extraction failures",
                                        optional=True)}


#: Every file of a run directory, by name.
RUN_FILES: dict[str, RunFile] = {
    "manifest": RunFile(MANIFEST_NAME, "manifest (written last)",
                        "config, seed, versions, git commit, input hashes, stage facts"),
    "cohort": RunFile("cohort/cohort.parquet", "cohort (workbench run / extract)", "the validated cohort table"),
    "cohort_info": RunFile("cohort/cohort.json", "cohort (workbench run / extract)", "cohort name, phases and source",
                           optional=True),
    "problems": RunFile("cohort/problems.csv", "cohort (workbench run / extract)",
                        "every problem found (loading, QC, preprocessing, features)",
                        optional=True),
    "qc_images": RunFile("qc/qc_images.csv", "qc", "per-patient grid and tumour volume",
                         optional=True),
    "preprocessed": RunFile("preprocessed.parquet", "preprocess",
                            "per-patient paths of the preprocessed images and their records",
                            optional=True),
    **{k: v for family in FEATURE_FAMILIES for k, v in _features(family).items()},
    "deep_warnings": RunFile("features/deep.warnings.csv", "features (deep)",
                             "non-fatal deep-input warnings (e.g. several mask components)",
                             optional=True),
    "deep_weights": RunFile("features/deep_weights.json", "features (deep)",
                            "deep weights provenance per network, with its label",
                            optional=True),
    "crop": RunFile("features/crops/{patient_id}.png", "features (deep)",
                    "the CNN input strip of one patient", optional=True),
    "ibsi_rows": RunFile("ibsi/ibsi_rows.csv", "ibsi", "IBSI-1 phantom, one row per feature",
                         optional=True),
    "ibsi_report": RunFile("ibsi/ibsi_report.txt", "ibsi", "IBSI-1 conformance summary",
                           optional=True),
    "table1": RunFile("table1/table1.csv", "table1", "Table 1 by split x pCR", optional=True),
    "table1_html": RunFile("table1/table1.html", "table1", "Table 1 as HTML", optional=True),
    "table1_split": RunFile("table1/split.csv", "table1", "train/test split of Table 1",
                            optional=True),
    "predictions": RunFile("models/predictions.parquet", "models",
                           "out-of-fold and test probabilities per model"),
    "metrics": RunFile("models/metrics.parquet", "models", "metrics with CIs per model"),
    "curves": RunFile("models/curves.parquet", "models",
                      "ROC and decision curve of every model (dashboard)"),
    "selection": RunFile("models/selection.parquet", "models",
                         "selection trace per (protocol, block, fold)"),
    "signatures": RunFile("models/signatures.parquet", "models", "signature values"),
    "lasso_cv": RunFile("models/lasso_cv.parquet", "models", "LASSO cross-validation curves",
                        optional=True),
    "shap": RunFile("models/shap.parquet", "models (SHAP)", "SHAP values of final models",
                    optional=True),
    "skipped": RunFile("models/skipped.csv", "models", "recorded, explained skips",
                       optional=True),
    "model_excluded": RunFile("models/excluded.csv", "models",
                              "patients left out of modelling, and why", optional=True),
    "split": RunFile("models/split.csv", "models", "the train/test assignment"),
    "model": RunFile("models/{protocol}/{feature_set}__{classifier}.skops", "models",
                     "a final fitted model (skops)", optional=True),
    "deployed_model": RunFile("deploy/{protocol}/{feature_set}__{classifier}.skops",
                              "refit (workbench refit)", "a model refitted on the whole "
                              "development cohort, for use elsewhere", optional=True),
    "models_key": RunFile("models/stage_key.json", "models", "modelling cache key",
                          optional=True),
    "audit": RunFile("audit/null_audit.parquet", "audit", "null audit, one row per run",
                     optional=True),
    "audit_summary": RunFile("audit/null_audit_summary.csv", "audit",
                             "null audit summary per protocol and split", optional=True),
    "audit_key": RunFile("audit/stage_key.json", "audit", "null audit cache key",
                         optional=True),
    "truth": RunFile("cohort/truth.csv", "known truth (synthetic cohorts only)",
                     "the synthetic cohort's true P(pCR) and latent variables, copied",
                     optional=True),
    "known_truth": RunFile("diagnostics/known_truth.csv", "known truth (synthetic cohorts only)",
                           "oracle AUC, learnable bound, clinical reference, latent proxies "
                           "and each honest model's share of the learnable gap",
                           optional=True),
    "known_truth_key": RunFile("diagnostics/stage_key.json",
                               "known truth (synthetic cohorts only)",
                               "known-truth diagnostics cache key", optional=True),
    "control_auc": RunFile("controls/control_auc.csv", "controls (workbench controls)",
                           "honest AUC of the real images and each negative control, per "
                           "feature family (first_order, texture, shape, volume) and split",
                           optional=True),
    "controls_summary": RunFile("controls/summary.json", "controls (workbench controls)",
                                "controls, phases, patients, timings", optional=True),
    "controls_problems": RunFile("controls/problems.csv", "controls (workbench controls)",
                                 "patients whose control could not be derived or extracted",
                                 optional=True),
    "controls_key": RunFile("controls/stage_key.json", "controls (workbench controls)",
                            "controls cache key", optional=True),
    "icc": RunFile("robustness/icc.csv", "robustness (workbench robustness)",
                   "ICC(3,1) with 95 % CI of every radiomics feature under the perturbations",
                   optional=True),
    "robust_counts": RunFile("robustness/robust_counts.csv", "robustness (workbench robustness)",
                             "robust features per ICC threshold and radiomics family",
                             optional=True),
    "robust_selected": RunFile("robustness/selected.csv", "robustness (workbench robustness)",
                               "features the models selected, with their ICC", optional=True),
    "robustness_summary": RunFile("robustness/summary.json",
                                  "robustness (workbench robustness)",
                                  "perturbation set, patients, timings", optional=True),
    "robustness_problems": RunFile("robustness/problems.csv",
                                   "robustness (workbench robustness)",
                                   "patients whose perturbation could not be derived or "
                                   "extracted", optional=True),
    "robustness_key": RunFile("robustness/stage_key.json", "robustness (workbench robustness)",
                              "robustness cache key", optional=True),
    "harmonisation_auc": RunFile("harmonisation/harmonisation_auc.csv", "harmonisation",
                                 "audit feature set without ComBat, with ComBat in every fold, "
                                 "and with ComBat on the whole cohort; CV and test AUC",
                                 optional=True),
    "harmonisation_audit": RunFile("harmonisation/null_audit.csv", "harmonisation",
                                   "null audit (permuted labels) with and without ComBat",
                                   optional=True),
    "site_features": RunFile("harmonisation/site_features.parquet", "harmonisation",
                             "per-site distributions of the most site-affected features, "
                             "before and after ComBat (display)", optional=True),
    "harmonisation_key": RunFile("harmonisation/stage_key.json", "harmonisation",
                                 "harmonisation cache key", optional=True),
    **_validation(),
    "report": RunFile("report.html", "report", "standalone HTML report", optional=True),
    "report_key": RunFile("report.key.json", "report", "report cache key", optional=True),
}

#: File names whose presence marks a complete stage folder (the stage-cache check).
MODEL_OUTPUTS = ("predictions", "metrics", "curves", "selection", "signatures", "split")
AUDIT_OUTPUTS = ("audit", "audit_summary")

# A name becomes one path component: no separators, no "..", nothing hidden, no NUL.
_UNSAFE = re.compile(r"[/\\\x00]")


def check_component(value: object, *, what: str = "name") -> str:
    """``value`` as text, if it can be one file or folder name inside an output folder.

    Refused: the empty string, a path separator (``/`` or ``\\``), NUL, and a leading dot
    (``.``, ``..`` and hidden files).

    Raises
    ------
    RunDataError
        Naming ``what``, the value and the rule.
    """
    text = str(value)
    reason = ("it is empty" if not text else
              "it contains a path separator or NUL" if _UNSAFE.search(text) else
              "it starts with '.'" if text.startswith(".") else None)
    if reason is not None:
        raise RunDataError(f"{what} {text!r} cannot be part of a file name: {reason} (a name "
                           "must be one path component: no '/', '\\', NUL or leading '.')",
                           step="output path")
    return text


def safe_join(root: str | Path, *parts: object, what: str = "name") -> Path:
    """``root / part / ...``, guaranteed to stay inside ``root``.

    The one way every per-patient or user-given name (a patient ID, a feature-set or
    classifier name...) becomes an output path. Each part must pass :func:`check_component`;
    the joined path is then resolved (symlinks followed) and must lie inside the resolved
    ``root``.

    Raises
    ------
    RunDataError
        When a part is not a single safe component or the result would leave ``root``.
    """
    root = Path(root)
    if not parts:
        raise RunDataError(f"no {what} given to join under {root}", step="output path")
    names = [check_component(part, what=what) for part in parts]
    path = root.joinpath(*names)
    base = root.resolve()
    try:
        inside = path.resolve().is_relative_to(base)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable link
        inside = False
    if not inside or path.resolve() == base:
        raise RunDataError(f"{what} {'/'.join(names)!r} would leave the output folder {root}",
                           step="output path", path=path)
    return path


def rundir_tree() -> str:
    """The layout as a Markdown table, one row per file (the README shows exactly this)."""
    rows = ["| file | name | written by | what |", "|---|---|---|---|"]
    rows += [f"| `{f.path}` | `{name}` | {f.stage} | {f.description} |"
             for name, f in RUN_FILES.items()]
    return "\n".join(rows)


class RunDir:
    """Paths, reading and writing of one run directory (see the module docstring).

    Parameters
    ----------
    root
        The run folder (``data/runs/<name>``). It need not exist yet for writing.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)

    # ------------------------------------------------------------------ paths
    @staticmethod
    def spec(name: str) -> RunFile:
        """The :class:`RunFile` called ``name``."""
        try:
            return RUN_FILES[name]
        except KeyError:
            raise RunDataError(f"unknown run file {name!r}; known: {sorted(RUN_FILES)}",
                               step="run directory") from None

    def path(self, name: str, **fields: Any) -> Path:
        """Path of ``name``; placeholders filled from ``fields``, each one path component.

        Raises
        ------
        RunDataError
            For an unknown name, a missing field, or a field value that would leave its
            folder (see :func:`safe_join`: a separator, ``..``, a leading dot, NUL or an
            empty value).
        """
        spec = self.spec(name)
        missing = [f for f in spec.fields if f not in fields]
        if missing:
            raise RunDataError(f"run file {name!r} ({spec.path}) needs {missing}",
                               step="run directory")
        values = {key: check_component(fields[key], what=key) for key in spec.fields}
        return safe_join(self.root, *Path(spec.path.format(**values)).parts,
                         what=f"run file {name!r}")

    def folder(self, name: str) -> Path:
        """The folder holding ``name`` (created); e.g. ``folder("crop")`` is
        ``features/crops``."""
        parent = Path(self.spec(name).path).parent
        if "{" in str(parent):
            raise RunDataError(f"the folder of {name!r} depends on its fields; use path()",
                               step="run directory")
        folder = self.root / parent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def exists(self, name: str, **fields: Any) -> bool:
        return self.path(name, **fields).is_file()

    def glob(self, name: str) -> list[Path]:
        """Existing files of a patterned name (e.g. every ``model``), sorted."""
        spec = self.spec(name)
        pattern = re.sub(r"\{[^}]+\}", "*", spec.path)
        return sorted(self.root.glob(pattern))

    def feature_families(self) -> list[str]:
        """The feature families this run has tables for, in join order."""
        return [f for f in FEATURE_FAMILIES if self.exists(f)]

    # ------------------------------------------------------------------ reading / writing
    def read(self, name: str, **fields: Any) -> Any:
        """Read ``name`` (DataFrame for parquet/csv, dict for JSON, str for text)."""
        spec = self.spec(name)
        path = self.path(name, **fields)
        if not path.is_file():
            raise RunDataError(f"{path.relative_to(self.root)} not found in the run directory; "
                               f"it is written by the {spec.stage} stage — rerun that stage",
                               step="run directory", path=path)
        try:
            return _read(path)
        except (OSError, ValueError) as exc:
            raise RunDataError(f"cannot read {spec.path}: {exc}", step="run directory",
                               path=path) from exc

    def write(self, name: str, value: Any, **fields: Any) -> Path:
        """Write ``value`` atomically to ``name``: a DataFrame as parquet or CSV (by the
        file's suffix; the index kept where the contract says so), a dict as JSON, a str as
        text."""
        spec = self.spec(name)
        path = self.path(name, **fields)
        with atomic_path(path) as tmp:
            if isinstance(value, pd.DataFrame):
                if path.suffix == ".parquet":
                    value.to_parquet(tmp, index=spec.index)
                else:
                    value.to_csv(tmp, index=spec.index)
            elif isinstance(value, dict | list):
                tmp.write_text(json.dumps(value, indent=1, default=str) + "\n",
                               encoding="utf-8")
            elif isinstance(value, str):
                tmp.write_text(value, encoding="utf-8")
            elif isinstance(value, bytes):
                tmp.write_bytes(value)
            else:
                raise RunDataError(f"cannot write a {type(value).__name__} to {spec.path}",
                                   step="run directory")
        return path


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
    if suffix in (".png", ".skops"):
        return path.read_bytes()
    return path.read_text(encoding="utf-8")
