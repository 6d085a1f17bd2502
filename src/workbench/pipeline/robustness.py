"""Perturbation robustness: how well each radiomics feature reproduces (ICC(3,1)).

Zwanenburg et al. (2019) assess feature robustness without re-scans by perturbing each image
the way a re-scan or a re-segmentation would, extracting again, and computing an intraclass
correlation per feature across the copies. Here, for a seeded, **label-free** sample of
``robustness.patients`` patients of a finished run, every perturbation of
``robustness.perturbations`` (default: three chains of a +-4 degree rotation or half-voxel
shift, noise at 5 % of the body SD, and a one-voxel erosion / dilation or an intensity
re-segmentation; :mod:`workbench.imaging.perturb`) derives new images and masks from the
preprocessed ones (:mod:`workbench.pipeline.derived`, cached by content) and extracts the same
radiomics as the run. ICC(3,1) (two-way mixed, consistency, single measurement;
:func:`~workbench.features.robustness.icc_table`) is computed per feature over the original and
perturbed copies.

Why ICC on a sample: ICC(3,1) needs between-patient variance to compare with, not every
patient; 40 heterogeneous patients and 4 copies are the usual scale (Koo & Li 2016 ask for at
least 30 and 3 raters) and keep the stage at a fraction of a full extraction. The sample is drawn
from the patient IDs with ``robustness.seed``, never from labels, so the ICC table, and the
``selection.robust_icc`` filter built on it, can be computed on the whole cohort without
leaking anything into the honest protocol.

Writes ``robustness/icc.csv``, ``robust_counts.csv``, ``selected.csv`` (the models' selected
radiomics features with their ICC) and ``summary.json``; skipped when inputs, settings and code
are unchanged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.cohort.table import Problem
from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.features.radiomics import extract_radiomics
from workbench.features.robustness import icc_table, robust_counts
from workbench.pipeline import cache
from workbench.pipeline.derived import derive_cohort
from workbench.pipeline.settings import default_cache, radiomics_params_path
from workbench.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["RobustnessResult", "robustness_lines", "robustness_stage", "sample_patients",
           "selected_robust"]

ROBUSTNESS_CODE = ("features/robustness", "pipeline/robustness")


@dataclass
class RobustnessResult:
    icc: pd.DataFrame
    counts: pd.DataFrame
    selected: pd.DataFrame
    summary: dict
    problems: list[Problem] = field(default_factory=list)
    cached: bool = False


def sample_patients(ids, n: int, seed: int) -> list[str]:
    """``n`` patient IDs drawn with ``seed`` from the sorted IDs (all when fewer): label-free."""
    ids = sorted(str(i) for i in ids)
    if len(ids) <= n:
        return ids
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=n, replace=False).tolist())


def selected_robust(selection: pd.DataFrame, icc: pd.DataFrame,
                    thresholds=(0.75, 0.9)) -> pd.DataFrame:
    """The radiomics features each protocol's models kept (LASSO stage), with their ICC.

    One row per (protocol, feature): ``folds`` (CV folds of repeat 0 that kept it), ``final``
    (kept by the final refit on the whole training split), ``icc`` and one ``robust_<t>``
    column per threshold."""
    cols = ["protocol", "feature", "folds", "final", "icc"]
    if selection is None or selection.empty:
        return pd.DataFrame(columns=cols)
    sel = selection[(selection["block"] == "radiomics") & (selection["stage"] == "lasso")
                    & selection["kept"].astype(bool)]
    if sel.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    icc_of = icc.set_index("feature")["icc"]
    for (protocol, feature), part in sel.groupby(["protocol", "feature"], sort=True):
        rows.append({"protocol": protocol, "feature": feature,
                     "folds": int(((part["repeat"] == 0)).sum()),
                     "final": bool((part["repeat"] == -1).any()),
                     "icc": float(icc_of.get(feature, np.nan))})
    out = pd.DataFrame(rows)
    for t in thresholds:
        out[f"robust_{t:g}"] = out["icc"] >= t
    return out


def robustness_stage(cfg: RunConfig, run_dir: Path | RunDir, cache_dir: Path | None = None, *,
                     jobs: int = 1, progress: bool = True, force: bool = False
                     ) -> RobustnessResult:
    """Perturb, extract and compute ICC(3,1) for every radiomics feature of a finished run."""
    start = time.perf_counter()
    run = RunDir(run_dir)
    for name in ("preprocessed", "radiomics"):
        if not run.exists(name):
            raise WorkbenchError(f"the robustness stage needs the run's {run.path(name)}; "
                                 "run the feature stages first", step="robustness",
                                 path=run.root)
    r = cfg.robustness
    cache_dir = Path(cache_dir) if cache_dir else default_cache()
    real = run.read("radiomics")
    real.index = real.index.astype(str)
    pre = run.read("preprocessed")
    pre = pre[pre["patient_id"].astype(str).isin(set(real.index))]
    ids = sample_patients(pre["patient_id"], r.patients, r.seed)
    pre = pre[pre["patient_id"].astype(str).isin(ids)]
    phases = list(cfg.radiomics.phases)
    reference = phases[-1]  # the post-contrast phase: where the tumour's intensities are
    params = radiomics_params_path(cfg)
    copies = {"original": real.loc[ids]}
    problems: list[Problem] = []
    for spec in r.perturbations:
        derived, probs = derive_cohort(pre, phases, "perturb", spec.model_dump(mode="json"),
                                       cache_dir / "perturbed", seed=r.seed, jobs=jobs,
                                       progress=progress, desc=f"perturb {spec.name}",
                                       itk_threads=cfg.itk_threads, reference_phase=reference)
        problems += [Problem(p.patient_id, f"perturbation {spec.name}: {p.step}", p.message,
                             p.file) for p in probs]
        res = extract_radiomics(derived, cache_dir / "features", params_path=params,
                                phases=phases, jobs=jobs, progress=progress,
                                itk_threads=cfg.itk_threads)
        problems += [Problem(p.patient_id, f"perturbation {spec.name}: {p.step}", p.message,
                             p.file) for p in res.problems("radiomics")]
        feats = res.features
        feats.index = feats.index.astype(str)
        copies[spec.name] = feats
    extract_seconds = time.perf_counter() - start
    settings = cfg.model_dump(mode="json", include={"robustness"})
    selection = run.read("selection") if run.exists("selection") else pd.DataFrame()
    key = cache.stage_key([*copies.values(), selection], settings, ROBUSTNESS_CODE)
    key_file = run.path("robustness_key")
    outputs = [run.path(n) for n in ("icc", "robust_counts", "robust_selected",
                                     "robustness_summary")]
    if not force and cache.is_current(key_file, key, outputs):
        log.info("robustness: inputs, settings and code unchanged; reusing %s",
                 key_file.parent)
        return RobustnessResult(run.read("icc"), run.read("robust_counts"),
                                run.read("robust_selected"), run.read("robustness_summary"),
                                problems, cached=True)
    run.folder("robustness_key")
    cache.invalidate(key_file)
    t0 = time.perf_counter()
    icc = icc_table(copies)
    icc_seconds = time.perf_counter() - t0
    counts = robust_counts(icc, tuple(r.thresholds))
    selected = selected_robust(selection, icc, tuple(r.thresholds))
    used = sorted(set.intersection(*(set(f.index) for f in copies.values())))
    summary = {"patients_sampled": len(ids), "patients_used": len(used),
               "copies": list(copies), "perturbations": [p.model_dump(mode="json")
                                                         for p in r.perturbations],
               "reference_phase": reference, "seed": r.seed,
               "thresholds": list(r.thresholds), "features": int(len(icc)),
               "seconds": round(time.perf_counter() - start, 1),
               "extract_seconds": round(extract_seconds, 1),
               "icc_seconds": round(icc_seconds, 3), "problems": len(problems)}
    run.write("icc", icc)
    run.write("robust_counts", counts)
    run.write("robust_selected", selected)
    run.write("robustness_summary", summary)
    if problems:
        run.write("robustness_problems", pd.DataFrame(
            [{"patient_id": p.patient_id, "step": p.step, "severity": p.severity,
              "file": p.file, "message": p.message} for p in problems]))
    cache.mark_done(key_file, key, seconds=summary["seconds"])
    return RobustnessResult(icc, counts, selected, summary, problems)


def robustness_lines(result: RobustnessResult) -> list[str]:
    """Summary lines: robust counts per threshold, and how many selected features are robust."""
    s, counts, sel = result.summary, result.counts, result.selected
    total = counts[counts["family"] == "all"] if "family" in counts else counts
    cells = [f"ICC >= {row['threshold']:g}: {int(row['robust'])}/{int(row['total'])}"
             for _, row in total.iterrows()]
    lines = [f"robustness ({s['patients_used']} patients x {len(s['copies'])} copies, "
             f"ICC(3,1)): " + "; ".join(cells)]
    for protocol, part in (sel.groupby("protocol") if len(sel) else []):
        final = part[part["final"]]
        robust = [f"{int(final[f'robust_{t:g}'].sum())} at {t:g}" for t in s["thresholds"]
                  if f"robust_{t:g}" in final]
        lines.append(f"  {protocol} radiomics signature: {len(final)} features selected, "
                     "robust: " + ", ".join(robust))
    return lines
