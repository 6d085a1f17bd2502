"""DCE kinetic features ``kin__*`` from the preprocessed pre / early / late phases and the mask.

Per tumour voxel:

* percent enhancement ``PE = (early - pre) / pre`` (a fraction: 0.7 = 70 %);
* signal enhancement ratio ``SER = (early - pre) / (late - pre)``.

Which intensities
-----------------
Ratios need the acquired signal with its positive baseline, not z-scores (a z-scored voxel can
be 0 or negative, and ``x / pre`` then means nothing). The preprocessing stage z-scores all
phases of a patient with one pooled mean and standard deviation and records them
(``zscore_mean``, ``zscore_std`` in its table and in each patient's ``done.json``), so we undo
it exactly: ``x_raw = z * zscore_std + zscore_mean``. That gives the N4-corrected, 1 mm
resampled signal. With the default ``n4_mode="shared"`` one bias field divides every phase
and all ratios are those acquired; with ``"per_phase"`` (the study's setting) each phase has
its own field, which slightly distorts them (see :mod:`workbench.imaging.preprocess`).

Guards (documented thresholds, module constants)
------------------------------------------------
* No baseline: voxels with ``pre <= MIN_BASELINE_FRACTION x zscore_mean`` (1 % of the
  patient's mean body signal: noise floor or interpolation ringing) get neither PE nor SER;
  their share is ``kin__invalid_fraction``. A patient with no valid voxel fails.
* Late ≈ baseline: when ``(late - pre) / pre <= MIN_LATE_ENHANCEMENT`` (1 %) the SER
  denominator vanishes. If the voxel enhanced early (``PE > MIN_LATE_ENHANCEMENT``) the signal
  has washed back to baseline: SER is set to ``SER_CAP`` (strongest washout); otherwise the
  voxel did not enhance at all and SER is undefined (left out).
* SER is clipped to ``[0, SER_CAP]`` (3.0): beyond that it only measures noise in a small
  denominator, and a negative SER (early below baseline) carries no kinetic meaning.

Features (17): ``pe_mean, pe_median, pe_p10, pe_p90, pe_std`` over valid tumour voxels;
``ser_mean, ser_median, ser_p10, ser_p90, ser_std`` over tumour voxels with a defined SER
(NaN when the tumour does not enhance at all); ``tumour_ml``; I-SPY functional tumour volume
``ftv_ml`` (voxels with ``PE >= pe_threshold``) and ``ftv_fraction``; within the FTV the
fractions ``washout_fraction`` (SER > ``ser_washout``), ``plateau_fraction``
(``ser_persistent <= SER <= ser_washout``) and ``persistent_fraction`` (SER <
``ser_persistent``), all 0 when the FTV is empty; ``invalid_fraction``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from workbench.batch import DEFAULT_ITK_THREADS, problem_row
from workbench.cohort.table import MASK_COLUMN, image_column
from workbench.errors import ConfigError
from workbench.features.extract import (
    FeatureError,
    FeatureResult,
    Task,
    finish,
    patients_with_inputs,
    prepare_table,
    run_tasks,
)
from workbench.features.store import library_versions, make_key
from workbench.hashing import code_digest
from workbench.imaging.io import read_image

log = logging.getLogger(__name__)

#: Source that computes the values; its :func:`~workbench.hashing.code_digest` is part of
#: every key (with the settings, guards, SimpleITK threads and library versions).
KINETIC_CODE = ("features/kinetic", "imaging/io")
PREFIX = "kin"
NAMESPACE = "kinetic"
KINETIC_PACKAGES = ("numpy", "SimpleITK")
MIN_BASELINE_FRACTION = 0.01
MIN_LATE_ENHANCEMENT = 0.01
SER_CAP = 3.0
ZSCORE_COLUMNS = ("zscore_mean", "zscore_std")
FEATURES = ("pe_mean", "pe_median", "pe_p10", "pe_p90", "pe_std", "ser_mean", "ser_median",
            "ser_p10", "ser_p90", "ser_std", "tumour_ml", "ftv_ml", "ftv_fraction",
            "washout_fraction", "plateau_fraction", "persistent_fraction", "invalid_fraction")


@dataclasses.dataclass(frozen=True)
class KineticSettings:
    """Thresholds of the kinetic features (part of the cache key).

    Parameters
    ----------
    pe_threshold
        PE (fraction) at or above which a voxel belongs to the functional tumour volume.
    ser_washout, ser_persistent
        SER above ``ser_washout`` is washout, below ``ser_persistent`` persistent, between
        them (inclusive) plateau.
    """

    pe_threshold: float = 0.7
    ser_washout: float = 1.1
    ser_persistent: float = 0.9

    def __post_init__(self) -> None:
        for name in ("pe_threshold", "ser_washout", "ser_persistent"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"kinetic {name} must be a number > 0, got {value!r}")
        if self.ser_persistent > self.ser_washout:
            raise ConfigError(f"kinetic ser_persistent ({self.ser_persistent}) must not exceed "
                              f"ser_washout ({self.ser_washout})")


def kinetic_maps(pre: np.ndarray, early: np.ndarray, late: np.ndarray, *,
                 baseline_floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-voxel PE and SER (NaN where undefined) and the valid-baseline mask.

    Inputs are raw (not z-scored) intensities; see the module docstring for the guards.
    """
    pre, early, late = (np.asarray(a, dtype=np.float64) for a in (pre, early, late))
    valid = pre > baseline_floor
    safe = np.where(valid, pre, 1.0)
    pe = np.where(valid, (early - pre) / safe, np.nan)
    le = np.where(valid, (late - pre) / safe, np.nan)
    has_den = le > MIN_LATE_ENHANCEMENT
    ser = np.where(has_den, pe / np.where(has_den, le, 1.0),
                   np.where(pe > MIN_LATE_ENHANCEMENT, SER_CAP, np.nan))
    ser = np.where(valid, np.clip(ser, 0.0, SER_CAP), np.nan)
    return pe, ser, valid


def kinetic_features(pre: np.ndarray, early: np.ndarray, late: np.ndarray, roi: np.ndarray, *,
                     voxel_ml: float, baseline_floor: float,
                     settings: KineticSettings = KineticSettings(),
                     patient: str | None = None) -> dict[str, float]:
    """The :data:`FEATURES` of one tumour (``roi`` boolean, same shape as the images)."""
    roi = np.asarray(roi, dtype=bool)
    n = int(roi.sum())
    if n == 0:
        raise FeatureError("tumour mask is empty; no kinetics to compute", patient=patient,
                           step="kinetic")
    pe, ser, valid = kinetic_maps(pre[roi], early[roi], late[roi], baseline_floor=baseline_floor)
    if not valid.any():
        raise FeatureError("no tumour voxel has a positive pre-contrast baseline (above "
                           f"{baseline_floor:.4g}); PE and SER are undefined", patient=patient,
                           step="kinetic")
    out: dict[str, float] = {}
    for name, values in (("pe", pe[valid]), ("ser", ser[np.isfinite(ser)])):
        if values.size:
            p10, median, p90 = np.percentile(values, [10, 50, 90])
            out.update({f"{name}_mean": values.mean(), f"{name}_median": median,
                        f"{name}_p10": p10, f"{name}_p90": p90, f"{name}_std": values.std()})
        else:
            out.update({f"{name}_{s}": math.nan for s in ("mean", "median", "p10", "p90", "std")})
    ftv = valid & (np.nan_to_num(pe, nan=-np.inf) >= settings.pe_threshold)
    n_ftv = int(ftv.sum())
    ser_ftv = ser[ftv]
    out.update({
        "tumour_ml": n * voxel_ml,
        "ftv_ml": n_ftv * voxel_ml,
        "ftv_fraction": n_ftv / n,
        "washout_fraction": float((ser_ftv > settings.ser_washout).sum()) / n_ftv if n_ftv else 0.0,
        "plateau_fraction": float(((ser_ftv >= settings.ser_persistent)
                                   & (ser_ftv <= settings.ser_washout)).sum()) / n_ftv
        if n_ftv else 0.0,
        "persistent_fraction": float((ser_ftv < settings.ser_persistent).sum()) / n_ftv
        if n_ftv else 0.0,
        "invalid_fraction": 1.0 - float(valid.sum()) / n,
    })
    return {k: float(out[k]) for k in FEATURES}


def kinetic_unit(paths: dict[str, str], mask_path: str, zscore: tuple[float, float],
                 settings_json: str, *, patient: str | None = None) -> dict[str, float]:
    """Kinetic features of one patient from preprocessed (z-scored) files; see module doc."""
    settings = KineticSettings(**json.loads(settings_json))
    mean, std = zscore
    arrays = {}
    ref = None
    for role, path in paths.items():
        image = read_image(path, patient=patient, what=f"phase '{role}'")
        if ref is not None and (image.GetSize() != ref.GetSize()
                                or not np.allclose(image.GetSpacing(), ref.GetSpacing())):
            raise FeatureError(f"phase '{role}' is not on the grid of the other phases",
                               patient=patient, step="kinetic", path=path)
        ref = image
        arrays[role] = sitk.GetArrayViewFromImage(image).astype(np.float64) * std + mean
    mask = read_image(mask_path, patient=patient, what="tumour mask")
    if mask.GetSize() != ref.GetSize():
        raise FeatureError("tumour mask is not on the grid of the phases", patient=patient,
                           step="kinetic", path=mask_path)
    roi = sitk.GetArrayViewFromImage(mask) > 0
    if not roi.any():
        raise FeatureError("tumour mask is empty; no kinetics to compute", patient=patient,
                           step="kinetic", path=mask_path)
    pre, early, late = arrays.values()
    voxel_ml = float(np.prod(ref.GetSpacing())) / 1000.0
    return kinetic_features(pre, early, late, roi, voxel_ml=voxel_ml,
                            baseline_floor=MIN_BASELINE_FRACTION * mean, settings=settings,
                            patient=patient)


def _zscore_stats(row: pd.Series, mask_path: str, pid: str) -> tuple[float, float] | dict:
    """``(mean, std)`` of the preprocessing z-score: table columns, else ``done.json``."""
    values = [row.get(c) for c in ZSCORE_COLUMNS]
    source = "table"
    if any(v is None or pd.isna(v) for v in values):
        done = Path(mask_path).parent / "done.json"
        source = str(done)
        try:
            record = json.loads(done.read_text())["record"]
            values = [record[c] for c in ZSCORE_COLUMNS]
        except (OSError, ValueError, KeyError, TypeError):
            return problem_row(pid, "kinetic", "no z-score statistics to undo the z-score: pass "
                             "the preprocessing table (columns zscore_mean, zscore_std) or keep "
                             "done.json beside the images", mask_path)
    mean, std = (float(v) for v in values)
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0 and mean > 0):
        return problem_row(pid, "kinetic", f"z-score statistics mean={mean}, std={std} (from "
                         f"{source}) cannot give raw intensities with a positive baseline",
                         mask_path)
    return mean, std


def extract_kinetic(table: Any, out_dir: str | Path, *, pe_threshold: float = 0.7,
                    ser_washout: float = 1.1, ser_persistent: float = 0.9,
                    phases: Sequence[str] = ("pre", "early", "late"), jobs: int = 1,
                    scheduler: Any = None, progress: bool = True,
                    itk_threads: int = DEFAULT_ITK_THREADS) -> FeatureResult:
    """Kinetic features (``kin__*``) of every patient of a preprocessed table.

    Parameters
    ----------
    table
        The preprocessing table (DataFrame or
        :class:`~workbench.pipeline.preprocess.PreprocessResult`): ``patient_id``,
        ``image_<phase>`` for the three ``phases``, ``mask``, and ``zscore_mean`` /
        ``zscore_std`` (written by preprocessing; when absent they are read from the
        ``done.json`` beside each patient's mask).
    out_dir
        Store root; kinetics use the namespace ``kinetic`` (independent of radiomics).
    pe_threshold, ser_washout, ser_persistent
        See :class:`KineticSettings`.
    phases
        Names of the pre-contrast, early and late phases, in that order.
    jobs, scheduler, progress
        See :func:`~workbench.features.extract.run_tasks`.
    itk_threads
        SimpleITK threads of every unit (part of every key).

    Returns
    -------
    FeatureResult
        ``features`` columns ``kin__<name>`` for :data:`FEATURES`.
    """
    start = time.perf_counter()
    if len(phases) != 3:
        raise ConfigError(f"kinetics need exactly three phases (pre, early, late), got {phases}")
    settings = KineticSettings(pe_threshold, ser_washout, ser_persistent)
    settings_json = json.dumps(dataclasses.asdict(settings))
    df = prepare_table(table, [image_column(p) for p in phases] + [MASK_COLUMN])
    versions = library_versions(KINETIC_PACKAGES)
    computed_by = {"code": code_digest(KINETIC_CODE), "itk_threads": int(itk_threads)}
    meta = {"stage": "kinetic", "settings": dataclasses.asdict(settings), "versions": versions,
            **computed_by}
    errors, ready = patients_with_inputs(df, phases)
    tasks, units_of = [], {}
    for pid, row, inputs in ready:
        mask, mask_digest = inputs[MASK_COLUMN]
        zscore = _zscore_stats(row, mask, pid)
        if isinstance(zscore, dict):
            errors.append(zscore)
            continue
        paths = {p: inputs[image_column(p)][0] for p in phases}
        key = make_key(NAMESPACE, {
            "settings": dataclasses.asdict(settings), **computed_by,
            "guards": [MIN_BASELINE_FRACTION, MIN_LATE_ENHANCEMENT, SER_CAP],
            "images": [inputs[image_column(p)][1] for p in phases], "mask": mask_digest,
            "zscore": [repr(zscore[0]), repr(zscore[1])], "versions": versions})
        tasks.append(Task(pid, "kinetic", NAMESPACE, key, kinetic_unit,
                          (paths, mask, zscore, settings_json)))
        units_of[pid] = ["kinetic"]
    batch = run_tasks(tasks, out_dir, meta=meta, jobs=jobs, scheduler=scheduler,
                      progress=progress, desc="kinetic", errors=errors,
                      itk_threads=itk_threads)
    rows = {pid: {f"{PREFIX}__{k}": v for k, v in batch.records[(pid, "kinetic")]
                  ["features"].items()}
            for pid in units_of if (pid, "kinetic") in batch.records}
    return finish("kinetic", [str(p) for p in df["patient_id"]], rows, batch, units_of, start,
                  Path(out_dir))
