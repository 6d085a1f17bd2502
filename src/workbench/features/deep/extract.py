"""The deep-feature stage: CNN crops (cached), per-network inference (cached), provenance.

:func:`extract_deep` reads each patient's preprocessed phases and mask, makes the CNN inputs
(:mod:`workbench.features.deep.crops`, one QC PNG per patient), resolves the weights
(:mod:`workbench.features.deep.weights`), runs each network
(:mod:`workbench.features.deep.networks`) on the crops not yet in the store, and returns a
:class:`DeepFeatureResult` whose provenance (with its human-readable ``label``) is also
written to ``<out_dir>/deep_weights.json``.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.batch import Job, problem_row, run_batch
from workbench.cohort.table import MASK_COLUMN, image_column
from workbench.errors import ConfigError, WorkbenchError
from workbench.features.deep.crops import CropSettings, load_patient_crop, save_crop_png
from workbench.features.deep.finetune import FineTuner
from workbench.features.deep.networks import (
    NETWORK_NAMES,
    NETWORKS,
    build_network,
    embed,
    feature_names,
    preprocess_function,
)
from workbench.features.deep.weights import resolve_weights, weights_id, weights_label
from workbench.features.extract import (
    BatchOutcome,
    FeatureResult,
    finish,
    patients_with_inputs,
    prepare_table,
)
from workbench.features.store import (
    FeatureStore,
    errors_frame,
    library_versions,
    make_key,
)
from workbench.files import atomic_write_text
from workbench.rundir import safe_join

log = logging.getLogger(__name__)

#: Bump when this module changes feature values; part of every key.
DEEP_VERSION = 1
NAMESPACE = "deep"
CROP_NAMESPACE = "deep-crop"
DEEP_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scipy", "SimpleITK")


@dataclasses.dataclass
class DeepFeatureResult(FeatureResult):
    """:class:`~workbench.features.extract.FeatureResult` plus the weight provenance.

    Attributes
    ----------
    provenance
        ``networks`` (per-network weight source), ``label`` (:func:`weights_label`), crop
        settings, seed, batch size, library versions, fine-tuning.
    warnings
        Non-fatal problems (e.g. several mask components), columns as ``errors``.
    crops
        One row per patient: slice axis / index, tumour area, box side, components, PNG path.
    """

    provenance: dict = dataclasses.field(default_factory=dict)
    warnings: pd.DataFrame = dataclasses.field(default_factory=lambda: errors_frame([]))
    crops: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    @property
    def label(self) -> str:
        return self.provenance.get("label", "")

    def save(self, path: str | Path) -> Path:
        """Parquet (provenance in its metadata) + errors / warnings CSV + ``<stem>_weights.json``."""
        out = super().save(path)
        self.warnings.to_csv(out.with_name(f"{out.stem}.warnings.csv"), index=False)
        atomic_write_text(out.with_name(f"{out.stem}_weights.json"),
                          json.dumps(self.provenance, indent=1, default=str))
        return out


def _valid(record: dict | None, net: str) -> bool:
    values = None if record is None else record.get("values")
    return isinstance(values, list) and len(values) == NETWORKS[net].width


def _make_crop(paths: Any, mask: Any, settings: CropSettings, pid: str, png: Path) -> Any:
    """One patient's CNN input crop, saved as ``png`` (a :func:`run_batch` job)."""
    crop = load_patient_crop(paths, mask, settings, patient=pid)
    save_crop_png(crop, png)
    return crop


def _crop_units(settings: CropSettings, out: Path, crops_dir: Path, inputs_of: dict,
                digests_of: dict, need: set[str], progress: bool
                ) -> tuple[dict, dict, list[dict]]:
    """Crop records (from the store or computed) and the crops computed this run.

    A patient whose ID cannot be a file name in ``crops_dir`` (:func:`safe_join`) becomes an
    error row: nothing is written outside ``crops_dir``."""
    store, found, jobs, errors = FeatureStore(out, CROP_NAMESPACE), {}, [], []
    for pid in inputs_of:
        key = make_key(CROP_NAMESPACE, {"code": DEEP_VERSION, "inputs": digests_of[pid],
                                        "crop": settings.key()})
        record = store.load(key)
        try:
            png = safe_join(crops_dir, f"{pid}.png", what="patient_id")
        except WorkbenchError as exc:
            errors.append(problem_row(pid, "deep-input", exc.message, str(crops_dir)))
            continue
        if record is not None and pid not in need and png.is_file():
            found[pid] = record
            continue
        paths, mask = inputs_of[pid]
        jobs.append(Job(pid, _make_crop, (paths, mask, settings, pid, png), step="deep-input",
                        tag=(key, png)))
    computed = {}
    for done in run_batch(jobs, progress=progress, desc="deep crops", done_before=len(found)):
        pid = done.job.patient_id
        if not done.ok:
            errors.append(done.problem)
            continue
        key, png = done.job.tag
        crop = done.value
        found[pid] = {"key": key, "patient_id": pid, "info": crop.info, "png": str(png),
                      "warnings": crop.warnings}
        store.save(key, found[pid])
        computed[pid] = crop
    records = {pid: found[pid] for pid in inputs_of if pid in found}  # patient order
    crops = {pid: computed[pid] for pid in inputs_of if pid in computed}
    return records, crops, errors


def extract_deep(table: Any, out_dir: str | Path, *, networks: Sequence[str] = NETWORK_NAMES,
                 weights: str | os.PathLike = "imagenet", require_pretrained: bool = False,
                 channels: str = "phases", margin: float = 0.2, image_size: int = 224,
                 batch_size: int = 32, seed: int = 0, progress: bool = True,
                 phases: Sequence[str] = ("pre", "early", "late"),
                 interpolation: str = "linear", pad: str = "edge", components: str = "largest",
                 download: bool = True, crops_dir: str | Path | None = None,
                 fine_tune: bool = False, labels: Mapping[str, int] | None = None,
                 train_ids: Sequence[str] | None = None, test_ids: Sequence[str] = (),
                 fine_tune_settings: Any = None) -> DeepFeatureResult:
    """Deep features of every patient of a preprocessed table (see module docstring).

    Parameters
    ----------
    table
        Preprocessing table (DataFrame or ``PreprocessResult``): ``patient_id``,
        ``image_<phase>``, ``mask``.
    out_dir
        Store root (namespaces ``deep`` and ``deep-crop``); QC PNGs go to
        ``<out_dir>/crops/<patient>.png`` unless ``crops_dir`` is given.
    networks
        Subset of :data:`NETWORK_NAMES` (default all five: 8,576 features).
    weights, require_pretrained, download
        See :func:`resolve_weights`.
    channels, margin, image_size, phases, interpolation, pad, components
        See :class:`~workbench.features.deep.crops.CropSettings`.
    batch_size
        Images per ``predict_on_batch`` call.
    seed
        Random-weight initialisation and fine-tuning seed.
    fine_tune, labels, train_ids, test_ids, fine_tune_settings
        Optional fine-tuning on the training split only (:mod:`workbench.features.deep.finetune`).

    Returns
    -------
    DeepFeatureResult
        ``features`` (index ``patient_id``, columns ``dl_<net>__<i>``), ``errors``,
        ``warnings``, ``crops``, ``provenance``, counts and ``seconds``.
    """
    start = time.perf_counter()
    networks = list(networks)
    unknown = [n for n in networks if n not in NETWORKS]
    if unknown or not networks or len(set(networks)) != len(networks):
        raise ConfigError(f"networks must be distinct names from {list(NETWORKS)}, got "
                          f"{networks}")
    small = [n for n in networks if image_size < NETWORKS[n].min_size]
    if small:
        raise ConfigError(f"image_size {image_size} is below the minimum of {small} "
                          f"({[NETWORKS[n].min_size for n in small]})")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    settings = CropSettings(margin, image_size, channels, tuple(phases), interpolation, pad,
                            components)
    out = Path(out_dir)
    crops_dir = Path(crops_dir) if crops_dir is not None else out / "crops"
    df = prepare_table(table, [image_column(p) for p in phases] + [MASK_COLUMN])
    sources = resolve_weights(networks, weights, require_pretrained=require_pretrained,
                              seed=seed, download=download)
    tuner = None
    if fine_tune:
        tuner = FineTuner(out, labels, train_ids, test_ids, fine_tune_settings, seed=seed)
    versions = library_versions(DEEP_PACKAGES)
    errors, ready = patients_with_inputs(df, phases)
    inputs_of, digests_of = {}, {}
    for pid, _row, inputs in ready:
        inputs_of[pid] = ({p: inputs[image_column(p)][0] for p in phases}, inputs[MASK_COLUMN][0])
        digests_of[pid] = [inputs[image_column(p)][1] for p in phases] + [inputs[MASK_COLUMN][1]]
    store = FeatureStore(out, NAMESPACE)
    base = {"code": DEEP_VERSION, "crop": settings.key(), "versions": versions}
    tuned = {net: tuner.key(net, sources[net], digests_of) if tuner else None
             for net in networks}
    keys = {(pid, net): make_key(NAMESPACE, {**base, "inputs": digests_of[pid], "network": net,
                                             "weights": weights_id(sources[net]),
                                             "fine_tune": tuned[net]})
            for pid in inputs_of for net in networks}
    records = {k: r for k in keys if _valid(r := store.load(keys[k]), k[1])}
    cached = set(records)
    need = {pid for (pid, net) in keys if (pid, net) not in records}
    if tuner is not None and need:
        need |= set(tuner.train_ids) & set(inputs_of)
    crop_records, crops, crop_errors = _crop_units(settings, out, crops_dir, inputs_of,
                                                   digests_of, need, progress)
    errors += crop_errors
    meta = {"stage": "deep", "crop": settings.key(), "versions": versions}
    todo_of = {net: [p for p in crops if (p, net) not in records] for net in networks}
    with tqdm(total=sum(len(t) * len(crops[t[0]].images) for t in todo_of.values() if t),
              desc="deep", unit="img", disable=not progress) as bar:
        for net in networks:
            todo = todo_of[net]
            if not todo:
                continue
            t0 = time.perf_counter()
            try:
                model = build_network(net, sources[net], image_size)
                if tuner is not None:
                    model, sources[net]["fine_tune"] = tuner.tune(net, model, crops,
                                                                  preprocess_function(net))
                counts = [len(crops[p].images) for p in todo]
                feats = embed(model, net, np.concatenate([crops[p].images for p in todo]),
                              batch_size, bar)
            except WorkbenchError:
                raise  # weights or split problems concern every patient: stop with the cause
            except Exception as exc:
                log.exception("%s inference failed", net)
                errors += [problem_row(p, f"deep-{net}", f"inference failed: {type(exc).__name__}"
                                     f": {exc}") for p in todo]
                continue
            finally:
                model = None
                gc.collect()
            seconds = (time.perf_counter() - t0) / len(todo)
            bounds = np.cumsum([0] + counts)
            for i, pid in enumerate(todo):
                values = feats[bounds[i]:bounds[i + 1]].astype(np.float64).mean(axis=0)
                record = {"key": keys[(pid, net)], "patient_id": pid, "unit": net,
                          "namespace": NAMESPACE, "values": values.tolist(),
                          "seconds": round(seconds, 4), "meta": {**meta, "weights": sources[net]}}
                store.save(record["key"], record)
                records[(pid, net)] = record
    if tuner is not None:
        for net in networks:
            sources[net].setdefault("fine_tune", tuner.record(net))
    rows = {pid: {name: v for net in networks for name, v in
                  zip(feature_names(net), records[(pid, net)]["values"], strict=True)}
            for pid in inputs_of if all((pid, n) in records for n in networks)}
    batch = BatchOutcome({}, errors, cached, set(records) - cached)
    base_result = finish("deep", [str(p) for p in df["patient_id"]], rows, batch,
                         {pid: networks for pid in inputs_of}, start, out)
    provenance = {"stage": "deep", "weights_request": str(weights),
                  "require_pretrained": require_pretrained, "seed": seed, "networks": sources,
                  "n_features": sum(NETWORKS[n].width for n in networks),
                  "crop": settings.key(), "batch_size": batch_size, "versions": versions,
                  "crops_dir": str(crops_dir)}
    provenance["label"] = weights_label(provenance)
    level = logging.WARNING if "RANDOM" in provenance["label"] else logging.INFO
    log.log(level, "deep features: %s", provenance["label"])
    base_result.features = base_result.features.reindex(  # all columns even when empty
        columns=[c for net in networks for c in feature_names(net)])
    base_result.features.attrs["deep_weights"] = provenance
    atomic_write_text(out / "deep_weights.json", json.dumps(provenance, indent=1, default=str))
    warn_rows = [problem_row(pid, "deep-input", w, r.get("png"))
                 for pid, r in crop_records.items() for w in r.get("warnings", [])]
    crop_table = pd.DataFrame([{"patient_id": pid, **r["info"], "png": r["png"]}
                               for pid, r in crop_records.items()])
    fields = {f.name: getattr(base_result, f.name) for f in dataclasses.fields(FeatureResult)}
    return DeepFeatureResult(**fields, provenance=provenance, warnings=errors_frame(warn_rows),
                             crops=crop_table)


__all__ = ["DeepFeatureResult", "extract_deep"]
