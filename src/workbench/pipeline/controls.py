"""Image negative controls: would the radiomics signature score the same without the tumour?

For every patient of a finished run, each control of ``controls.kinds``
(:mod:`workbench.imaging.controls`: ROI voxels shuffled, ROI refilled at random from its own
histogram, ROI moved to non-tumour tissue, random ROI shape) derives new images and masks from
the preprocessed ones (:mod:`workbench.pipeline.derived`, cached by content), extracts the
same radiomics (same parameter file, the ``controls.phases``), and models them with the same
honest protocol as the real images: the study's chain (filters, LASSO, signature) and
``controls.classifier`` on the development split, scored by CV and on the test split. Four
feature families are modelled, on the same patients for real images and every control:

``first_order``
    the histogram features of the phases (original image and wavelet bands): ``shuffled``
    keeps the original image's exactly (a permutation of the ROI voxels), ``random`` keeps its
    distribution;
``texture``
    the texture-matrix features (GLCM, GLRLM, GLSZM, GLDM, NGTDM) of the phases: the spatial
    arrangement that ``shuffled`` and ``random`` destroy;
``shape``
    the 14 shape features: unchanged by ``shuffled`` and ``random`` (same mask) and by
    ``moved`` (same mask, translated);
``volume``
    the tumour volume alone (``original_shape_VoxelVolume``), the same under every control
    (each keeps the voxel count): the baseline a family must beat to read more than size.

Whenever a control's features of a family are identical to the real images' (shape under the
same mask, first order under a permutation when no filter mixes neighbours), the stage checks it
and reports the real AUC for them, with a note, instead of refitting.

Controls are derived from the *preprocessed* images (N4, 1 mm, z-score): the body statistics of
the z-score barely move when only tumour voxels change, so only the extraction is rerun.
Writes ``controls/control_auc.csv`` and ``controls/summary.json`` into the run; the stage is
skipped when its inputs, settings and code are unchanged (:mod:`workbench.pipeline.cache`).
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
from workbench.evaluation.delong import delong_auc_ci
from workbench.features.radiomics import extract_radiomics
from workbench.features.robustness import feature_family
from workbench.models.protocols import ModellingError, run_protocol
from workbench.pipeline import cache
from workbench.pipeline.derived import derive_cohort
from workbench.pipeline.settings import (
    classifiers_for,
    default_cache,
    protocol_settings,
    radiomics_params_path,
    selector_factory,
)
from workbench.rundir import RunDir

log = logging.getLogger(__name__)

__all__ = ["ControlsResult", "control_lines", "controls_stage", "family_columns"]

FAMILIES = ("first_order", "texture", "shape", "volume")
#: The one feature of the ``volume`` family.
VOLUME_FEATURE = "original_shape_VoxelVolume"
#: PyRadiomics feature classes of each family.
FAMILY_CLASSES = {"first_order": frozenset({"firstorder"}),
                  "texture": frozenset({"glcm", "glrlm", "glszm", "gldm", "ngtdm"}),
                  "shape": frozenset({"shape"})}
#: Code whose change reruns the modelling part of the stage.
CONTROLS_CODE = ("models", "selection", "evaluation", "pipeline/controls")


@dataclass
class ControlsResult:
    """What :func:`controls_stage` wrote: the AUC table and the stage summary."""

    auc: pd.DataFrame
    summary: dict
    problems: list[Problem] = field(default_factory=list)
    cached: bool = False


def family_columns(columns, family: str, phases) -> list[str]:
    """Radiomics columns of ``family`` (one of :data:`FAMILIES`) among ``phases``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown feature family {family!r}; one of {list(FAMILIES)}")
    out = []
    for c in columns:
        parts = str(c).split("__")
        if len(parts) < 3 or parts[0] != "rad" or parts[1] not in phases:
            continue
        if (parts[2] == VOLUME_FEATURE if family == "volume"
                else feature_family(str(c)) in FAMILY_CLASSES[family]):
            out.append(c)
    return out


def _shape_dedup(frame: pd.DataFrame) -> pd.DataFrame:
    """Shape features repeat under every phase (identical copies): keep the first phase's."""
    seen, keep = set(), []
    for c in frame.columns:
        name = str(c).split("__", 2)[-1]
        if name not in seen:
            seen.add(name)
            keep.append(c)
    return frame[keep]


def _auc_rows(pred: pd.DataFrame, control: str, family: str, n_features: int) -> list[dict]:
    rows = []
    for split in ("cv", "test"):
        part = pred[(pred["split"] == split) & (pred["repeat"] <= 0)]
        row = {"control": control, "family": family, "split": split, "auc": np.nan,
               "auc_low": np.nan, "auc_high": np.nan, "n": len(part),
               "n_pcr": int(part["label"].sum()) if len(part) else 0,
               "features": n_features, "note": ""}
        if len(part) and part["label"].nunique() == 2:
            ci = delong_auc_ci(part["label"].to_numpy(), part["probability"].to_numpy())
            row.update(auc=ci.auc, auc_low=ci.lo, auc_high=ci.hi)
        else:
            row["note"] = "no prediction (the chain kept no feature)"
        rows.append(row)
    return rows


def _model(cfg: RunConfig, X: pd.DataFrame, y: pd.Series, control: str, family: str, *,
           jobs: int) -> list[dict]:
    """The honest protocol's CV and test AUC of the study chain + classifier on ``X``."""
    try:
        res = run_protocol("honest", X, pd.DataFrame(index=X.index), y,
                           feature_sets=["radiomics"], classifiers=[cfg.controls.classifier],
                           selector=selector_factory(cfg), make_clf=classifiers_for(cfg),
                           settings=protocol_settings(cfg, jobs=jobs, repeats=1))
    except ModellingError as exc:
        rows = _auc_rows(pd.DataFrame(columns=["split", "repeat", "label", "probability"]),
                         control, family, X.shape[1])
        for r in rows:
            r["note"] = f"no prediction: {exc.message}"
        return rows
    return _auc_rows(res.predictions, control, family, X.shape[1])


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Equal feature tables up to float noise of the shape mesh (relative 1e-6)."""
    if list(a.columns) != list(b.columns):
        return False
    x, z = a.to_numpy(float), b.loc[a.index].to_numpy(float)
    scale = np.maximum(np.abs(x), 1e-12)
    return bool(np.all((np.abs(x - z) / scale <= 1e-6) | (np.isnan(x) & np.isnan(z))))


def controls_stage(cfg: RunConfig, run_dir: Path | RunDir, cache_dir: Path | None = None, *,
                   jobs: int = 1, progress: bool = True, force: bool = False
                   ) -> ControlsResult:
    """Derive, extract and model every configured negative control of a finished run.

    Needs the run's ``preprocessed.parquet``, ``features/radiomics.parquet`` and cohort.
    Patients whose derivation or extraction fails are named in the returned problems (and
    ``controls/problems.csv``); every family is modelled on the patients that have real and
    all control features, so the AUCs compare like with like.
    """
    start = time.perf_counter()
    run = RunDir(run_dir)
    c = cfg.controls
    missing = [p for p in c.phases if p not in cfg.radiomics.phases]
    if missing:
        raise WorkbenchError(f"controls.phases {missing} are not among radiomics.phases "
                             f"{list(cfg.radiomics.phases)} in {cfg.source}", step="controls",
                             path=cfg.source)
    for name in ("preprocessed", "radiomics", "cohort"):
        if not run.exists(name):
            raise WorkbenchError(f"negative controls need the run's {run.path(name)}; run "
                                 "`workbench run` first", step="controls", path=run.root)
    cache_dir = Path(cache_dir) if cache_dir else default_cache()
    pre = run.read("preprocessed")
    cohort = run.read("cohort")
    lab = cohort[cohort["pcr"].notna()]
    y_all = pd.Series(lab["pcr"].astype(int).to_numpy(), index=lab["patient_id"].astype(str))
    real = run.read("radiomics")
    real.index = real.index.astype(str)
    pre = pre[pre["patient_id"].astype(str).isin(set(real.index) & set(y_all.index))]
    reference = cfg.cohort.phases[0]
    phases = list(dict.fromkeys([*c.phases, reference]))
    params = radiomics_params_path(cfg)
    derive_seconds = extract_seconds = 0.0
    problems: list[Problem] = []
    tables = {"real": real}
    for kind in c.kinds:
        t0 = time.perf_counter()
        derived, probs = derive_cohort(pre, phases, "control", {"kind": kind},
                                       cache_dir / "controls", seed=c.seed, jobs=jobs,
                                       progress=progress, desc=f"control {kind}",
                                       itk_threads=cfg.itk_threads, reference_phase=reference)
        derive_seconds += time.perf_counter() - t0
        problems += [Problem(p.patient_id, f"control {kind}: {p.step}", p.message, p.file)
                     for p in probs]
        t0 = time.perf_counter()
        res = extract_radiomics(derived, cache_dir / "features", params_path=params,
                                phases=c.phases, jobs=jobs, progress=progress,
                                itk_threads=cfg.itk_threads)
        extract_seconds += time.perf_counter() - t0
        problems += [Problem(p.patient_id, f"control {kind}: {p.step}", p.message, p.file)
                     for p in res.problems("radiomics")]
        feats = res.features
        feats.index = feats.index.astype(str)
        tables[kind] = feats
    common = sorted(set.intersection(*(set(t.index) for t in tables.values()))
                    & set(y_all.index))
    y = y_all.loc[common]
    frames = {(kind, fam): (_shape_dedup(t.loc[common, family_columns(t.columns, fam,
                                                                        c.phases)])
                            if fam in ("shape", "volume") else
                            t.loc[common, family_columns(t.columns, fam, c.phases)])
              for kind, t in tables.items() for fam in FAMILIES}
    settings = {**cfg.model_dump(mode="json", include={"seed", "selection", "protocol",
                                                       "controls"}),
                "patients": common}
    key = cache.stage_key([f for f in frames.values()] + [y], settings, CONTROLS_CODE)
    key_file = run.path("controls_key")
    outputs = [run.path("control_auc"), run.path("controls_summary")]
    if not force and cache.is_current(key_file, key, outputs):
        log.info("controls: inputs, settings and code unchanged; reusing %s", key_file.parent)
        return ControlsResult(run.read("control_auc"), run.read("controls_summary"),
                              problems, cached=True)
    run.folder("controls_key")
    cache.invalidate(key_file)
    t0 = time.perf_counter()
    rows = []
    real_rows = {}
    for kind in ["real", *c.kinds]:
        for fam in FAMILIES:
            X = frames[kind, fam]
            if kind != "real" and _same(frames["real", fam], X):
                why = {"shape": "same mask", "volume": "same voxel count"}.get(
                    fam, "a permutation of the ROI voxels")
                rows += [{**r, "control": kind, "note": f"{fam} features identical to the "
                          f"real images' ({why}): same AUC"} for r in real_rows[fam]]
                continue
            out = _model(cfg, X, y, kind, fam, jobs=jobs)
            if kind == "real":
                real_rows[fam] = out
            rows += out
    model_seconds = time.perf_counter() - t0
    auc = pd.DataFrame(rows)
    run.write("control_auc", auc)
    rad = _radiomics_seconds(run)
    total = time.perf_counter() - start
    summary = {"kinds": list(c.kinds), "phases": list(c.phases), "seed": c.seed,
               "classifier": c.classifier, "protocol": "honest",
               "patients": len(common), "pcr": int(y.sum()),
               "seconds": round(total, 1), "derive_seconds": round(derive_seconds, 1),
               "extract_seconds": round(extract_seconds, 1),
               "model_seconds": round(model_seconds, 1),
               "radiomics_seconds_cold": rad,
               "problems": len(problems)}
    run.write("controls_summary", summary)
    if problems:
        run.write("controls_problems", pd.DataFrame(
            [{"patient_id": p.patient_id, "step": p.step, "severity": p.severity,
              "file": p.file, "message": p.message} for p in problems]))
    cache.mark_done(key_file, key, seconds=round(total, 1))
    return ControlsResult(auc, summary, problems)


def _radiomics_seconds(run: RunDir) -> float | None:
    """The run's radiomics stage time when it extracted every patient itself (cold)."""
    if not run.exists("manifest"):
        return None
    info = (run.read("manifest").get("features") or {}).get("radiomics") or {}
    if info.get("cached", 1) == 0 and info.get("seconds"):
        return float(info["seconds"])
    return None


def control_lines(result: ControlsResult) -> list[str]:
    """Summary lines: each control's honest AUC beside the real images', per family."""
    auc, s = result.auc, result.summary
    lines = [f"negative controls ({s['patients']} patients, phases {', '.join(s['phases'])}, "
             f"honest protocol, study chain + {s['classifier']}):"]
    for fam in FAMILIES:
        part = auc[auc["family"] == fam]
        cells = []
        for control in dict.fromkeys(part["control"]):
            r = part[part["control"] == control].set_index("split")
            cells.append(f"{control} CV {r.loc['cv', 'auc']:.3f} / test "
                         f"{r.loc['test', 'auc']:.3f}")
        lines.append(f"  {fam}: " + "; ".join(cells))
    return lines
