"""Table 1: clinical characteristics by split (train / test) and pCR, with p-values.

Continuous variables are shown as mean ± SD and compared with the Wilcoxon rank-sum
(Mann-Whitney U) test; categorical variables as n (%) of patients with a known value and
compared with Fisher's exact test for 2×2 tables and Pearson's χ² otherwise. Missing values
are counted on their own row and left out of percentages and tests. The last column compares
the training and test splits (all patients, whatever the label), which shows whether the split
is balanced.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, fisher_exact, mannwhitneyu

from workbench.errors import CohortError

#: Table 1 rows: cohort column -> (display name, kind)
DEFAULT_VARIABLES: dict[str, tuple[str, str]] = {
    "age": ("Age (years)", "continuous"),
    "race": ("Race", "categorical"),
    "er": ("ER status (ERpos)", "categorical"),
    "pgr": ("PgR status (PgRpos)", "categorical"),
    "hr": ("HR status (HR Pos)", "categorical"),
    "her2": ("HER2 status (Her2MostPos)", "categorical"),
    "hr_her2": ("HR/HER2 subtype (HR_HER2_STATUS)", "categorical"),
    "laterality": ("Laterality", "categorical"),
    "mri_ld_mm": ("MRI longest diameter (mm)", "continuous"),
}
GROUPS = (("train", 1), ("train", 0), ("test", 1), ("test", 0))


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _continuous_p(a: pd.Series, b: pd.Series) -> tuple[float, str]:
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) == 0 or len(b) == 0:
        return math.nan, "Wilcoxon rank-sum"
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue), "Wilcoxon rank-sum"


def _categorical_p(a: pd.Series, b: pd.Series) -> tuple[float, str]:
    a, b = a.dropna().astype(str), b.dropna().astype(str)
    levels = sorted(set(a) | set(b))
    if len(levels) < 2 or len(a) == 0 or len(b) == 0:
        return math.nan, "–"
    table = np.array([[int((a == lv).sum()), int((b == lv).sum())] for lv in levels])
    if table.shape == (2, 2):
        return float(fisher_exact(table).pvalue), "Fisher's exact"
    return float(chi2_contingency(table).pvalue), "χ²"


def table1(df: pd.DataFrame, split: pd.Series, *,
           variables: dict[str, tuple[str, str]] | None = None,
           label: str = "pcr") -> pd.DataFrame:
    """Build Table 1.

    Parameters
    ----------
    df
        Cohort table (``patient_id``, ``pcr`` and clinical columns).
    split
        ``"train"`` / ``"test"`` per patient id (see
        :func:`workbench.models.split.stratified_split`); patients absent from it are left out.
    variables
        Rows to show, ``{column: (display name, "continuous" | "categorical")}``; columns
        missing from ``df`` are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per variable (continuous) or per level (categorical), columns
        ``Variable, Level, Train pCR, Train non-pCR, p (train), Test pCR, Test non-pCR,
        p (test), p (train vs test), Test``; group sizes are in ``df.attrs["n"]``.
    """
    variables = variables or DEFAULT_VARIABLES
    data = df[df["patient_id"].astype(str).isin(split.index)].copy()
    if data.empty:
        raise CohortError("Table 1: no patient of the table is in the split", step="table1")
    data["split"] = data["patient_id"].astype(str).map(split)
    groups = {g: data[(data["split"] == g[0]) & (data[label] == g[1])] for g in GROUPS}
    n = {g: len(v) for g, v in groups.items()}
    names = {("train", 1): "Train pCR", ("train", 0): "Train non-pCR",
             ("test", 1): "Test pCR", ("test", 0): "Test non-pCR"}
    rows: list[dict] = []
    for col, (display, kind) in variables.items():
        if col not in data.columns or data[col].isna().all():
            continue
        tests = {
            "p (train)": (groups[("train", 1)][col], groups[("train", 0)][col]),
            "p (test)": (groups[("test", 1)][col], groups[("test", 0)][col]),
            "p (train vs test)": (data.loc[data["split"] == "train", col],
                                  data.loc[data["split"] == "test", col]),
        }
        test_fn = _continuous_p if kind == "continuous" else _categorical_p
        pvals = {k: test_fn(a, b) for k, (a, b) in tests.items()}
        test_name = next((t for _, t in pvals.values() if t != "–"), "–")
        if kind == "continuous":
            row = {"Variable": display, "Level": "mean ± SD"}
            for g, sub in groups.items():
                values = pd.to_numeric(sub[col], errors="coerce").dropna()
                row[names[g]] = (f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"
                                 if len(values) > 1 else
                                 (f"{values.mean():.1f}" if len(values) else "–"))
            row.update({k: _fmt_p(v[0]) for k, v in pvals.items()})
            row["Test"] = test_name
            rows.append(row)
        else:
            levels = sorted(data[col].dropna().astype(str).unique())
            for i, level in enumerate(levels):
                row = {"Variable": display if i == 0 else "", "Level": level}
                for g, sub in groups.items():
                    known = sub[col].dropna().astype(str)
                    k = int((known == level).sum())
                    row[names[g]] = f"{k} ({100 * k / len(known):.1f}%)" if len(known) else "0"
                row.update({k: (_fmt_p(v[0]) if i == 0 else "") for k, v in pvals.items()})
                row["Test"] = test_name if i == 0 else ""
                rows.append(row)
        n_missing = {g: int(sub[col].isna().sum()) for g, sub in groups.items()}
        if any(n_missing.values()):
            row = {"Variable": "", "Level": "missing"}
            row.update({names[g]: str(m) for g, m in n_missing.items()})
            row.update({k: "" for k in tests})
            row["Test"] = ""
            rows.append(row)
    columns = ["Variable", "Level", "Train pCR", "Train non-pCR", "p (train)", "Test pCR",
               "Test non-pCR", "p (test)", "p (train vs test)", "Test"]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs["n"] = {names[g]: v for g, v in n.items()}
    return out


def _header_with_n(table: pd.DataFrame) -> list[str]:
    n = table.attrs.get("n", {})
    return [f"{c} (n={n[c]})" if c in n else c for c in table.columns]


def to_html(table: pd.DataFrame, *, title: str = "Table 1", notes: Sequence[str] = ()) -> str:
    """Standalone HTML page for Table 1 (group sizes in the header, notes below)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _header_with_n(table))
    body = []
    for _, row in table.iterrows():
        cls = ' class="first"' if row["Variable"] else ""
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in row.to_numpy())
        body.append(f"<tr{cls}>{cells}</tr>")
    note_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;font-size:14px}"
        "th,td{padding:4px 10px;text-align:left;border-bottom:1px solid #eee}"
        "th{background:#f4f6f8;border-bottom:2px solid #999}"
        "tr.first td{border-top:1px solid #bbb}.note{color:#555;font-size:13px}"
        f"</style></head><body><h2>{html.escape(title)}</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"{note_html}</body></html>\n"
    )


def write_table1(table: pd.DataFrame, out_dir: str | Path, *, title: str = "Table 1",
                 notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``table1.csv`` and ``table1.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "table1.csv"
    frame = table.copy()
    frame.columns = _header_with_n(table)
    frame.to_csv(csv, index=False)
    page = out / "table1.html"
    page.write_text(to_html(table, title=title, notes=notes), encoding="utf-8")
    return {"csv": csv, "html": page}
