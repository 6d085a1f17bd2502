"""A small but real run directory, built without images, for the report and dashboard tests.

:func:`build_run_dir` writes synthetic feature tables (``rad__``, ``kin__``,
``dl_resnet50__``), a cohort with clinical columns (one patient id is an HTML injection
attempt, so every renderer's escaping is exercised), Table 1, the modelling stage
(:func:`workbench.models.stage.run_models`), a 2-permutation null audit, an IBSI result and a
run manifest — the same files ``workbench demo`` writes, at a fraction of the cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

MALICIOUS_ID = "<script>alert(1)</script>"
WEIGHTS_LABEL = "RANDOM weights (seed 0) — not ImageNet features"
IBSI_LINE = "IBSI digital phantom: 180/183 matched"
N_PATIENTS = 48


def _cohort(rng: np.random.Generator, n: int) -> pd.DataFrame:
    ids = [f"P{i:03d}" for i in range(n - 1)] + [MALICIOUS_ID]
    pcr = np.array([1, 0] * (n // 2) + [0] * (n % 2))
    rng.shuffle(pcr)
    status = np.array(["positive", "negative"])
    return pd.DataFrame({
        "patient_id": ids,
        "pcr": pd.array(pcr, dtype="Int64"),
        "age": rng.normal(50, 10, n).round(1),
        "race": rng.choice(["Caucasian", "African American", "Asian"], n),
        "er": status[rng.integers(0, 2, n)],
        "pgr": status[rng.integers(0, 2, n)],
        "hr": status[rng.integers(0, 2, n)],
        "her2": status[rng.integers(0, 2, n)],
        "hr_her2": rng.choice(["HR+/HER2-", "HER2+", "triple negative"], n),
        "laterality": rng.choice(["left", "right"], n),
        "mri_ld_mm": rng.normal(40, 12, n).round(1),
    })


def _features(rng: np.random.Generator, ids: list[str], y: np.ndarray) -> dict[str, pd.DataFrame]:
    """Feature tables whose first few columns carry some signal."""
    n = len(ids)

    def block(prefix: str, k: int, signal: int) -> pd.DataFrame:
        x = rng.standard_normal((n, k))
        x[:, :signal] += 1.0 * y[:, None]
        return pd.DataFrame(x, index=pd.Index(ids, name="patient_id"),
                            columns=[f"{prefix}f{j:02d}" for j in range(k)])

    rad = block("rad__", 24, 3)
    rad["rad__constant"] = 1.0  # dropped by the variance filter: the funnel narrows
    return {"radiomics": rad, "kinetic": block("kin__", 5, 1),
            "deep": block("dl_resnet50__", 16, 2)}


def build_run_dir(run: Path, *, n: int = N_PATIENTS, seed: int = 0, audit: bool = True,
                  ibsi: bool = True) -> Path:
    """Write a small run directory under ``run`` and return it (see module docstring)."""
    from workbench.config import parse_config
    from workbench.evaluation.table1 import table1, write_table1
    from workbench.models.audit import null_audit, summarise
    from workbench.models.feature_sets import clinical_matrix
    from workbench.models.protocols import ProtocolSettings
    from workbench.models.split import stratified_split
    from workbench.models.stage import (
        classifier_factory,
        load_features,
        run_models,
        selector_factory,
    )
    from workbench.provenance import write_manifest

    run = Path(run)
    rng = np.random.default_rng(seed)
    cohort = _cohort(rng, n)
    y_arr = cohort["pcr"].to_numpy(dtype=int)
    (run / "cohort").mkdir(parents=True, exist_ok=True)
    cohort.to_parquet(run / "cohort" / "cohort.parquet", index=False)
    pd.DataFrame([{"patient_id": MALICIOUS_ID, "step": "qc", "message":
                   "mask <b>touches</b> the border", "file": None, "severity": "warning"}]
                 ).to_csv(run / "cohort" / "problems.csv", index=False)

    (run / "features").mkdir(parents=True, exist_ok=True)
    for name, frame in _features(rng, cohort["patient_id"].tolist(), y_arr).items():
        frame.to_parquet(run / "features" / f"{name}.parquet")
    deep_weights = {"stage": "deep", "weights_request": "random",
                    "networks": {"resnet50": {"kind": "random", "seed": seed}},
                    "label": WEIGHTS_LABEL}
    (run / "features" / "deep_weights.json").write_text(json.dumps(deep_weights))

    cfg = parse_config({"name": "report-fixture", "seed": seed,
                        "classifiers": ["lr", "rf"],
                        "feature_sets": ["clinical", "radiomics", "resnet50"],
                        "selection": {"lasso": {"n_alphas": 10, "cv_folds": 3}},
                        "protocol": {"cv_folds": 3}})
    features = load_features(run)
    y = pd.Series(y_arr, index=cohort["patient_id"].astype(str))
    clinical = clinical_matrix(cohort)
    models = run_models(cfg, features.loc[y.index], clinical, y, run / "models", jobs=1,
                        n_boot=200, save_models=False, shap_sets=("clinical", "resnet50"))

    split = stratified_split(cohort["patient_id"], cohort["pcr"], test_size=0.3, seed=seed)
    t1 = table1(cohort, split)
    write_table1(t1, run / "table1", title="Table 1 — report fixture")
    split.rename_axis("patient_id").reset_index().to_csv(run / "table1" / "split.csv",
                                                         index=False)

    audit_summary = None
    if audit:
        settings = ProtocolSettings(test_size=0.3, cv_folds=3, repeats=1, seed=seed, jobs=1)
        table = null_audit(features.loc[y.index], clinical, y, selector=selector_factory(cfg),
                           make_clf=classifier_factory, permutations=2,
                           feature_set="radiomics", classifier="lr", settings=settings,
                           seed=seed, progress=False)
        (run / "audit").mkdir(exist_ok=True)
        table.to_parquet(run / "audit" / "null_audit.parquet", index=False)
        audit_summary = summarise(table)
        audit_summary.to_csv(run / "audit" / "null_audit_summary.csv", index=False)

    ibsi_info = {"status": "skipped", "reason": "IBSI reference data not found"}
    if ibsi:
        (run / "ibsi").mkdir(exist_ok=True)
        pd.DataFrame({"family": ["morph", "stat"], "ibsi_name": ["Volume", "Mean"],
                      "matched": [True, True], "matched_raw": [True, False]}
                     ).to_csv(run / "ibsi" / "ibsi_rows.csv", index=False)
        (run / "ibsi" / "ibsi_report.txt").write_text(f"per-family table\n{IBSI_LINE}\n")
        ibsi_info = {"status": "done", "matched": 180, "matched_raw": 150, "total": 183,
                     "line": IBSI_LINE}

    write_manifest(run, config=cfg,
                   inputs={"cohort": run / "cohort" / "cohort.parquet"},
                   extra={"cohort": {"name": "report fixture", "patients": n},
                          "features": {k: {"patients": n} for k in ("radiomics", "kinetic",
                                                                     "deep")},
                          "deep_weights": deep_weights,
                          "models": {"seconds": round(models.seconds, 1),
                                     "protocols": list(models.results),
                                     "skipped": len(models.skipped)},
                          "audit": (None if audit_summary is None
                                    else audit_summary.to_dict(orient="records")),
                          "ibsi": ibsi_info})
    return run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A complete small run directory (models, audit, IBSI, manifest), built once."""
    import warnings

    from workbench.selection import SelectionWarning

    with warnings.catch_warnings():  # tiny noisy blocks: the filters' fallbacks are expected
        warnings.simplefilter("ignore", SelectionWarning)
        return build_run_dir(tmp_path_factory.mktemp("report_run") / "run")


@pytest.fixture(scope="session")
def run_facts() -> dict[str, str]:
    """What :func:`build_run_dir` put in the run, for assertions."""
    return {"weights_label": WEIGHTS_LABEL, "malicious_id": MALICIOUS_ID,
            "ibsi_line": IBSI_LINE}
