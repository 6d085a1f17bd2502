"""Compare two run directories table by table: are the numbers the same?

    python benchmarks/compare_runs.py data/runs/demo /tmp/other/run

For each table of the run-directory contract that both runs hold (features, predictions,
metrics, selection, signatures, LASSO curves, SHAP, null audit, Table 1, split), prints whether
it is identical, else the largest absolute difference of its numeric columns and how many
cells differ; then the headline lines (test AUC per protocol) of each run. Exit status 0 when
every compared table is identical, 1 otherwise. Timing columns (``seconds``) are ignored.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from workbench.evaluation.summary import headline
from workbench.rundir import RunDir

TABLES = ("radiomics", "kinetic", "deep", "preprocessed", "predictions", "metrics",
          "selection", "signatures", "lasso_cv", "shap", "audit", "audit_summary", "table1",
          "split", "qc_images")
#: Columns that legitimately differ between two runs of the same inputs.
VOLATILE = {"seconds", "cache_key", "cached", "image_pre", "image_early", "image_late", "mask"}


def compare(a: pd.DataFrame, b: pd.DataFrame) -> tuple[bool, str]:
    """(identical, description) of two tables."""
    a = a.drop(columns=[c for c in a.columns if c in VOLATILE], errors="ignore")
    b = b.drop(columns=[c for c in b.columns if c in VOLATILE], errors="ignore")
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return False, f"shape/columns differ: {a.shape} vs {b.shape}"
    if not a.index.equals(b.index):
        return False, "row index differs"
    numeric = a.select_dtypes("number").columns
    other = [c for c in a.columns if c not in numeric]
    x, y = a[numeric].to_numpy(float), b[numeric].to_numpy(float)
    same_nan = np.isnan(x) == np.isnan(y)
    diff = np.where(np.isnan(x) & np.isnan(y), 0.0, np.abs(x - y))
    n_num = int((diff > 0).sum() + (~same_nan).sum())
    n_text = int(sum(((a[c] != b[c]) & ~(a[c].isna() & b[c].isna())).sum() for c in other))
    if n_num == 0 and n_text == 0:
        return True, f"identical ({a.shape[0]} x {a.shape[1]})"
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    return False, f"{n_num} numeric cells differ (max |diff| {worst:.3g}), {n_text} text cells"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args(argv)
    a, b = RunDir(args.run_a), RunDir(args.run_b)
    all_same = True
    for name in TABLES:
        if not (a.exists(name) and b.exists(name)):
            print(f"{name:14s} not in both runs")
            continue
        same, text = compare(a.read(name), b.read(name))
        all_same &= same
        print(f"{name:14s} {text}")
    for run in (a, b):
        if run.exists("metrics"):
            metrics = run.read("metrics")
            sets = [fs for fs in ("fusion_clinical_kinetic", "fusion", "radiomics", "clinical")
                    if fs in set(metrics["feature_set"])]
            for fs in sets[:2]:
                for line in headline(metrics, fs):
                    print(f"{run.root}: {line}")
    print("ALL IDENTICAL" if all_same else "DIFFERENCES FOUND")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
