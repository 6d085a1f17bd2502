"""The known-truth table (:func:`~workbench.evaluation.truth.known_truth_table`) as the
report and the dashboard show it: small frames of formatted strings, pure pandas.

* :func:`reference_rows` — oracle, learnable bound and clinical reference.
* :func:`proxy_rows` — per latent driver, its best feature overall and the best |rho| of
  each feature block.
* :func:`model_rows` — the honest models with the best cross-validated AUC, their CV and test
  AUCs and the share of the learnable gap each closes. Models are ranked on the CV AUC (the
  training patients): the test split never chooses what is shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.evaluation.display import format_ci

__all__ = ["REFERENCE_LABELS", "REPEATED_COLUMNS", "model_rows", "proxy_rows", "reference_rows"]

#: Columns :func:`model_rows` adds when the run recorded repeated cross-validation.
REPEATED_COLUMNS = ["Repeated CV AUC (mean ± SD)", "Repeated CV gap closed"]
#: Row kinds of the references, in display order, with their labels.
REFERENCE_LABELS: dict[str, str] = {
    "oracle": "Oracle",
    "learnable_bound": "Learnable bound",
    "clinical_reference": "Clinical reference",
}


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if value is not None and np.isfinite(value) else "n/a"


def _auc_text(row: pd.Series) -> str:
    lo, hi, sd = (float(row.get(k, np.nan)) for k in ("lo", "hi", "sd"))
    if np.isfinite(lo) and np.isfinite(hi):
        return format_ci(float(row["auc"]), lo, hi, 3)
    if np.isfinite(sd):
        return f"{float(row['auc']):.3f} ± {sd:.3f} (SD over repeats)"
    return _fmt(float(row["auc"]))


def reference_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Columns ``Reference, AUC, n, How``: the oracle (DeLong 95 % CI), the learnable bound
    and the clinical reference (mean ± SD over CV repeats)."""
    out = []
    for kind, label in REFERENCE_LABELS.items():
        for _, row in table[table["kind"] == kind].iterrows():
            n = row.get("n")
            out.append({"Reference": f"{label}: {row['name']}", "AUC": _auc_text(row),
                        "n": "" if pd.isna(n) else str(int(n)),
                        "How": "" if pd.isna(row.get("detail")) else str(row["detail"])})
    return pd.DataFrame(out, columns=["Reference", "AUC", "n", "How"])


def proxy_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Columns ``Latent, Best feature, rho, |rho|`` and one ``|rho| <block>`` per feature
    block (the best of that block), one row per latent driver; empty without proxies."""
    best = table[table["kind"] == "proxy"]
    if best.empty:
        return pd.DataFrame(columns=["Latent", "Best feature", "rho", "|rho|"])
    out = pd.DataFrame({"Latent": best["latent"].astype(str).to_numpy(),
                        "Best feature": best["feature"].astype(str).to_numpy(),
                        "rho": [_fmt(v, 2) for v in best["rho"]],
                        "|rho|": [_fmt(v, 2) for v in best["abs_rho"]]})
    per_block = table[table["kind"] == "proxy_block"]
    if len(per_block):
        wide = per_block.pivot_table(index="latent", columns="block", values="abs_rho",
                                     aggfunc="max", sort=False)
        for block in dict.fromkeys(per_block["block"].astype(str)):
            values = wide[block].reindex(out["Latent"]).to_numpy(dtype=float)
            out[f"|rho| {block}"] = [_fmt(v, 2) for v in values]
    return out


def model_rows(table: pd.DataFrame, protocol: str = "honest", top: int = 5) -> pd.DataFrame:
    """The ``top`` models of ``protocol`` by cross-validated AUC (by test AUC when the run
    has no CV estimate), with CV and test ``AUC`` and ``gap closed`` (fraction of the way
    from the clinical reference to the learnable bound).

    Columns ``Feature set, Classifier, CV AUC, CV gap closed, Test AUC, Test gap closed``
    (and :data:`REPEATED_COLUMNS` when the run recorded ``auc_repeated``: the mean over
    repeated CV, the least noisy estimate); empty when the protocol has no model rows.
    """
    m = table[(table["kind"] == "model") & (table["protocol"].astype(str) == protocol)]
    cols = ["Feature set", "Classifier", "CV AUC", "CV gap closed", "Test AUC",
            "Test gap closed"]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m = m.assign(feature_set=m["feature_set"].astype(str),
                 classifier=m["classifier"].astype(str))
    keys = ["feature_set", "classifier"]
    rank_split = "cv" if ((m["split"] == "cv") & (m["metric"] == "auc")
                          & m["auc"].notna()).any() else "test"
    ranking = (m[(m["split"] == rank_split) & (m["metric"] == "auc") & m["auc"].notna()]
               .sort_values("auc", ascending=False, kind="stable").head(top))
    repeated = (m["metric"] == "auc_repeated").any()
    out = []
    for fs, clf in ranking[keys].itertuples(index=False):
        one = m[(m["feature_set"] == fs) & (m["classifier"] == clf)]
        row = {"Feature set": fs, "Classifier": clf}
        for split, label in (("cv", "CV"), ("test", "Test")):
            hit = one[(one["split"] == split) & (one["metric"] == "auc")]
            row[f"{label} AUC"] = _auc_text(hit.iloc[0]) if len(hit) else "n/a"
            row[f"{label} gap closed"] = (_fmt(float(hit["gap_closed"].iloc[0]), 2)
                                          if len(hit) else "n/a")
        if repeated:
            hit = one[one["metric"] == "auc_repeated"]
            row["Repeated CV AUC (mean ± SD)"] = (_repeated_text(hit.iloc[0]) if len(hit)
                                                  else "n/a")
            row["Repeated CV gap closed"] = (_fmt(float(hit["gap_closed"].iloc[0]), 2)
                                             if len(hit) else "n/a")
        out.append(row)
    return pd.DataFrame(out, columns=cols + (REPEATED_COLUMNS if repeated else []))


def _repeated_text(row: pd.Series) -> str:
    sd = float(row.get("sd", np.nan))
    auc = float(row["auc"])
    return f"{auc:.3f} ± {sd:.3f}" if np.isfinite(sd) else _fmt(auc)
