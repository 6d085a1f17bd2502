"""Display tables and explanatory text of the radiomics-rigour analyses, shared by the report
and the dashboard: negative controls (``controls/``), perturbation robustness
(``robustness/``) and ComBat harmonisation (``harmonisation/``). Formatting only: every number
comes from the stage's tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.evaluation.display import format_ci

__all__ = ["CONTROLS_TEXT", "CONTROL_ORDER", "FAMILY_ORDER", "HARMONISATION_LEAK", "HARMONISATION_TEXT", "LEAKY_VARIANTS",
           "ROBUSTNESS_TEXT", "control_rows", "harmonisation_rows", "perturbation_rows",
           "robust_count_rows", "selected_robust_rows", "variant_protocol"]

#: Negative controls and radiomics families in display order (``controls/control_auc.csv``).
CONTROL_ORDER = ("real", "shuffled", "random", "moved", "random_shape")
FAMILY_ORDER = ("first_order", "texture", "shape", "volume")

#: Variants whose features were harmonised on every patient before the train/test split.
LEAKY_VARIANTS = frozenset({"combat_whole_cohort", "combat_whole_cohort_pcr"})

CONTROLS_TEXT = (
    "Image negative controls ask what the radiomics signature reads. Each control rebuilds "
    "every patient's images and re-extracts the same features: shuffled (tumour voxels "
    "permuted), random (tumour voxels redrawn from their own histogram), moved (the mask "
    "translated onto non-tumour tissue) and random_shape (a random mask of the same size). "
    "Shuffled and random destroy only the spatial arrangement inside the tumour: first-order "
    "features keep their AUC there (exactly, for the original image under shuffling), and so "
    "do texture features that mostly restate the histogram or the tumour size. Shape features "
    "keep their AUC under shuffled, random and moved (same mask, at most translated): they "
    "measure the mask, not the voxels. A texture signature that scores about 0.5 on shuffled "
    "and random reads the spatial pattern; one that keeps its AUC reads the intensity "
    "distribution or the size; one that keeps it on moved reads the size or the patient's "
    "background, not the tumour. The volume row (tumour volume alone, the same under every "
    "control) is the baseline a family must beat to read more than size.")
ROBUSTNESS_TEXT = (
    "Each sampled patient's images are perturbed as a re-scan or a re-segmentation would "
    "(rotation, translation, noise, erosion / dilation or re-segmentation) and the radiomics "
    "re-extracted; ICC(3,1) per feature measures how well the patients keep their order "
    "across the copies. A feature is robust at a threshold when its ICC reaches it (0.75: "
    "good, 0.9: excellent reliability). The sample is drawn from patient IDs, never labels, "
    "so the ICC is label-free.")
HARMONISATION_TEXT = (
    "The audit feature set modelled under the honest protocol without harmonisation, with "
    "ComBat fitted inside every training fold (honest), and with ComBat fitted once on the "
    "whole cohort before the split, as multi-site studies often do. The null audit reruns "
    "each variant on permuted labels: an honest variant centres on 0.5.")
HARMONISATION_LEAK = (
    "LEAKY BY DESIGN: combat_whole_cohort harmonised the features on every patient, test "
    "patients included, before the split, so the test patients' features shaped the ComBat "
    "estimates; combat_whole_cohort_pcr also protected pCR as a covariate, which writes the "
    "test patients' labels into their own features (its null-audit mean far above 0.5 shows "
    "it). Their AUCs are optimistically biased even though the models were fitted under the "
    "honest protocol.")


def variant_protocol(variant: str, protocol: str = "honest") -> str:
    """The protocol cell of a harmonisation variant: ``honest``, or ``honest + ComBat on the
    whole cohort (LEAKY)``."""
    if str(variant) in LEAKY_VARIANTS:
        return f"{protocol} + ComBat on the whole cohort (LEAKY)"
    return str(protocol)


def _ci(row: pd.Series) -> str:
    return format_ci(float(row["auc"]), float(row.get("auc_low", np.nan)),
                     float(row.get("auc_high", np.nan)))


def control_rows(control_auc: pd.DataFrame, protocol: str = "honest") -> pd.DataFrame:
    """One row per (family, control): CV and test AUC (95 % CI), patients and features."""
    rows = []
    for (family, control), part in control_auc.groupby(["family", "control"], sort=False):
        by = part.set_index("split")
        row = {"family": family, "control": control, "protocol": protocol}
        for split, name in (("cv", "CV AUC (95% CI)"), ("test", "test AUC (95% CI)")):
            row[name] = _ci(by.loc[split]) if split in by.index else "n/a"
        for col in ("n", "n_pcr"):
            if col in by.columns:
                row[f"{col} cv / test"] = " / ".join(
                    str(int(by.loc[s, col])) if s in by.index and pd.notna(by.loc[s, col])
                    else "?" for s in ("cv", "test"))
        if "features" in part.columns:
            row["features"] = int(part["features"].max())
        notes = [str(n) for n in part.get("note", pd.Series(dtype=object)).dropna() if str(n)]
        row["note"] = notes[0] if notes else ""
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {"control": {c: i for i, c in enumerate(CONTROL_ORDER)},
             "family": {f: i for i, f in enumerate(FAMILY_ORDER)}}
    return out.sort_values(["family", "control"], key=lambda s: s.map(order[s.name]).fillna(99),
                           ignore_index=True) if len(out) else out


def perturbation_rows(summary: dict) -> pd.DataFrame:
    """The perturbation set of ``robustness/summary.json``, one row per perturbed copy."""
    rows = []
    for p in summary.get("perturbations") or []:
        shift = p.get("translate_mm")
        rows.append({"perturbation": p.get("name"), "rotation (deg)": p.get("rotate_deg"),
                     "translation (mm)": ", ".join(f"{float(v):g}" for v in shift)
                     if isinstance(shift, list | tuple) else shift,
                     "noise (SD of body)": p.get("noise_sd"), "mask": p.get("mask")})
    return pd.DataFrame(rows)


def robust_count_rows(counts: pd.DataFrame) -> pd.DataFrame:
    """Robust features per family (rows, ``all`` first) and threshold (columns), as
    ``robust / total (share)``."""
    if counts.empty:
        return pd.DataFrame()
    cells = counts.assign(cell=[
        f"{int(r.robust)} / {int(r.total)} ({r.share:.0%})" if pd.notna(r.share)
        else f"{int(r.robust)} / {int(r.total)}" for r in counts.itertuples()])
    table = cells.pivot(index="family", columns="threshold", values="cell")
    table.columns = [f"ICC ≥ {float(t):g}" for t in table.columns]
    order = ["all"] + sorted(f for f in table.index if f != "all")
    return table.reindex([f for f in order if f in table.index]).reset_index()


def selected_robust_rows(selected: pd.DataFrame, thresholds) -> pd.DataFrame:
    """Per protocol: features the final models selected and how many reach each threshold."""
    if selected.empty or "protocol" not in selected.columns:
        return pd.DataFrame()
    rows = []
    for protocol, part in selected.groupby("protocol", sort=False):
        final = part[part["final"].astype(str).str.lower().isin(("true", "1"))] \
            if "final" in part.columns else part
        row = {"protocol": protocol, "selected (final models)": len(final),
               "selected in any CV fold": len(part)}
        for t in thresholds:
            col = f"robust_{float(t):g}"
            hits = (final[col].astype(str).str.lower().isin(("true", "1")) if col in final
                    else pd.to_numeric(final["icc"], errors="coerce") >= float(t))
            row[f"robust at ICC ≥ {float(t):g}"] = f"{int(hits.sum())} / {len(final)}"
        rows.append(row)
    return pd.DataFrame(rows)


def harmonisation_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, split): protocol (leaky variants marked), AUC (95 % CI), the
    null audit's mean ± SD and runs, patients."""
    rows = []
    for r in table.itertuples(index=False):
        r = pd.Series(r._asdict())
        null = (f"{float(r['null_mean']):.2f} ± {float(r['null_sd']):.2f}"
                if pd.notna(r.get("null_mean")) else "n/a")
        if pd.notna(r.get("null_mean")) and pd.isna(r.get("null_sd")):
            null = f"{float(r['null_mean']):.2f}"
        rows.append({"variant": r["variant"],
                     "protocol": variant_protocol(r["variant"], r.get("protocol", "honest")),
                     "feature set / classifier": f"{r.get('feature_set', '?')} / "
                                                 f"{r.get('classifier', '?')}",
                     "split": r["split"], "AUC (95% CI)": _ci(r),
                     "vs none (paired DeLong p)": (
                         f"{float(r['delta_vs_none']):+.2f} (p {float(r['p_vs_none']):.2f})"
                         if pd.notna(r.get("p_vs_none")) else ""),
                     "null AUC mean ± SD": null,
                     "null runs": int(r["null_runs"]) if pd.notna(r.get("null_runs")) else 0,
                     "n": int(r["n"]) if pd.notna(r.get("n")) else None})
    return pd.DataFrame(rows)
