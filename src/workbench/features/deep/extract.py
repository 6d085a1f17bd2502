"""Deep features ``dl_<net>__<i>``: five ImageNet CNNs on the largest tumour slice.

Networks (``keras.applications``, ``include_top=False``, ``pooling="avg"``, built once per
run): ResNet50 (2,048), DenseNet169 (1,664), InceptionV3 (2,048), InceptionResNetV2 (1,536),
EfficientNetB0 (1,280): 8,576 features. Inputs come from :mod:`workbench.features.deep_input`
(crop scaled to [0, 1]); each batch is mapped to [0, 255] and passed through the network's
own ``preprocess_input`` before ``model.predict_on_batch``.

Weights (``weights=``)
----------------------
``"imagenet"`` (default)
    The Keras notop file in the Keras cache, ``$KERAS_HOME/models/<file>`` (default
    ``~/.keras/models``; :data:`NETWORKS` lists the file names, e.g.
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``, ``efficientnetb0_notop.h5``),
    downloaded by ``keras.utils.get_file`` when absent and ``download=True``. A cached file
    whose md5 differs from the one Keras publishes is an error naming the file. When no file
    can be had (offline) the network falls back to seeded random weights with a loud
    ``warnings.warn`` and log warning, recorded as kind ``"random-fallback"``;
    ``require_pretrained=True`` makes that an error.
``"random"``
    Seeded initialisation: ``keras.utils.set_random_seed(seed)`` before building each network,
    so features are reproducible.
a folder
    Per network ``<dir>/<net>.weights.h5`` (Keras 3 format, saved from the architecture
    :func:`build_network` makes, e.g. by ``model.save_weights``) or else the Keras notop file
    name. Every requested network must have one.
a file
    Weights of the single requested network.

A file that cannot be loaded (corrupt, another network) raises a
:class:`~workbench.errors.WorkbenchError` naming it; never silent random weights. A legacy
``.h5`` EfficientNet file is taken to be the Keras ImageNet file: Keras adds a
``Rescaling(1/sqrt(std))`` after the input normalisation only when it loads ImageNet weights;
we build one architecture for every source and fold that factor into the normalisation
variance instead (identical outputs).

Provenance
----------
Per network: ``kind`` (imagenet / local / random-fallback / random), ``file``, ``sha256``,
``md5``, ``seed``, ``reason``. It is in :attr:`DeepFeatureResult.provenance`, in
``features.attrs["deep_weights"]`` (kept by ``to_parquet``), in every store record, and in the
``<stem>_weights.json`` sidecar :meth:`DeepFeatureResult.save` writes;
:func:`weights_label` gives the one-line label for figures and reports.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.cohort.table import MASK_COLUMN, image_column
from workbench.errors import ConfigError, WorkbenchError
from workbench.features.deep_input import CropSettings, load_patient_crop, save_crop_png
from workbench.features.extract import (
    BatchOutcome,
    FeatureResult,
    finish,
    patients_with_inputs,
    prepare_table,
)
from workbench.features.store import (
    ERROR_COLUMNS,
    FeatureStore,
    atomic_write_text,
    error_row,
    errors_frame,
    library_versions,
    make_key,
)

log = logging.getLogger(__name__)

#: Bump when this module changes feature values; part of every key.
DEEP_VERSION = 1
NAMESPACE = "deep"
CROP_NAMESPACE = "deep-crop"
DEEP_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scipy", "SimpleITK")
_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """A ``keras.applications`` network and its ImageNet notop weight file."""

    app: str  # keras.applications constructor
    module: str  # keras.applications.<module>.preprocess_input
    width: int  # features (pooled channels)
    keras_file: str  # notop file name in the Keras cache
    md5: str  # md5 Keras publishes for that file
    url: str  # download folder
    min_size: int  # smallest input Keras accepts


NETWORKS: dict[str, NetworkSpec] = {
    "resnet50": NetworkSpec("ResNet50", "resnet50", 2048,
                            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                            "4d473c1dd8becc155b73f8504c6f6626", _GCS + "resnet/", 32),
    "densenet169": NetworkSpec("DenseNet169", "densenet", 1664,
                               "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5",
                               "b8c4d4c20dd625c148057b9ff1c1176b", _GCS + "densenet/", 32),
    "inceptionv3": NetworkSpec("InceptionV3", "inception_v3", 2048,
                               "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                               "bcbd6486424b2319ff4ef7d526e38f63", _GCS + "inception_v3/", 75),
    "inceptionresnetv2": NetworkSpec(
        "InceptionResNetV2", "inception_resnet_v2", 1536,
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "d19885ff4a710c122648d3b5c3b684e4", _GCS + "inception_resnet_v2/", 75),
    "efficientnetb0": NetworkSpec("EfficientNetB0", "efficientnet", 1280,
                                  "efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d",
                                  "https://storage.googleapis.com/keras-applications/", 32),
}
NETWORK_NAMES: tuple[str, ...] = tuple(NETWORKS)
N_FEATURES = sum(s.width for s in NETWORKS.values())  # 8,576
_EFFICIENTNET_STD = (0.229, 0.224, 0.225)
_PARTIAL_LOAD_HINTS = ("skipping", "retain", "freshly-initialized", "could not be loaded")


def feature_names(net: str) -> list[str]:
    """Column names of one network: ``dl_<net>__0`` ... ``dl_<net>__<width-1>``."""
    return [f"dl_{net}__{i}" for i in range(NETWORKS[net].width)]


# --------------------------------------------------------------------------- weights
def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, else ``~/.keras/models``
    (``/tmp/.keras/models`` when the home folder is not writable), as ``keras.utils.get_file``."""
    base = os.environ.get("KERAS_HOME")
    if not base:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return Path(base) / "models"


def _hashes(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _download_weights(net: str) -> Path | None:
    """Download a network's notop file into the Keras cache; ``None`` when that fails."""
    import keras

    spec = NETWORKS[net]
    try:
        return Path(keras.utils.get_file(spec.keras_file, spec.url + spec.keras_file,
                                         cache_subdir="models", file_hash=spec.md5,
                                         cache_dir=str(keras_cache_dir().parent)))
    except Exception as exc:  # offline, proxy, HTTP error, hash mismatch after download
        log.info("cannot download %s weights: %s", net, exc)
        return None


def _source(net: str, kind: str, path: Path | None, seed: int, reason: str) -> dict:
    sha = md5 = None
    if path is not None:
        try:
            sha, md5 = _hashes(path)
        except OSError as exc:
            raise WorkbenchError(f"cannot read {net} weights ({exc.strerror})", step="weights",
                                 path=path) from exc
    return {"network": net, "kind": kind, "file": None if path is None else str(path),
            "sha256": sha, "md5": md5, "seed": seed if kind.startswith("random") else None,
            "reason": reason, "keras_file_name": NETWORKS[net].keras_file}


def resolve_weights(networks: Sequence[str], weights: str | os.PathLike = "imagenet", *,
                    require_pretrained: bool = False, seed: int = 0,
                    download: bool = True) -> dict[str, dict]:
    """Decide, per network, which weights to load (see module docstring); builds nothing.

    Returns
    -------
    dict
        Network name -> provenance dict (``kind``, ``file``, ``sha256``, ``md5``, ``seed``,
        ``reason``, ``keras_file_name``).

    Raises
    ------
    ConfigError
        Unknown ``weights`` value, a folder lacking a network's file, contradictory options.
    WorkbenchError
        A cached ImageNet file with the wrong md5; no pretrained weights while
        ``require_pretrained``.
    """
    out: dict[str, dict] = {}
    if str(weights) == "random":
        if require_pretrained:
            raise ConfigError("require_pretrained=True contradicts weights='random'")
        return {n: _source(n, "random", None, seed, "requested") for n in networks}
    if str(weights) == "imagenet":
        missing = []
        for net in networks:
            path = keras_cache_dir() / NETWORKS[net].keras_file
            if not path.is_file() and download:
                path = _download_weights(net) or path
            if not path.is_file():
                missing.append(net)
                continue
            out[net] = _source(net, "imagenet", path, seed, "Keras cache")
            if out[net]["md5"] != NETWORKS[net].md5:
                raise WorkbenchError(
                    f"{net} ImageNet weights have md5 {out[net]['md5']}, Keras publishes "
                    f"{NETWORKS[net].md5}: the file is corrupt or a partial download; delete "
                    "it and download it again, or pass weights=PATH", step="weights", path=path)
        if missing:
            how = "download failed (offline?)" if download else "download disabled"
            reason = (f"no ImageNet weights found for {', '.join(missing)} in "
                      f"{keras_cache_dir()} ({how})")
            if require_pretrained:
                raise WorkbenchError(f"{reason}; put the Keras notop files there (names in "
                                     "workbench.features.deep.NETWORKS), pass weights=DIR, or "
                                     "set require_pretrained=False", step="weights")
            message = (f"{reason}: using RANDOM weights (seed {seed}) for them; their features "
                       "are NOT ImageNet features")
            warnings.warn(message, UserWarning, stacklevel=3)
            log.warning("%s", message)
            out.update({n: _source(n, "random-fallback", None, seed, reason) for n in missing})
        return {n: out[n] for n in networks}
    root = Path(weights)
    if root.is_dir():
        for net in networks:
            candidates = [root / f"{net}.weights.h5", root / NETWORKS[net].keras_file]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise ConfigError(f"weights folder {root} has no file for {net}: expected "
                                  f"{candidates[0].name} or {candidates[1].name}")
            out[net] = _source(net, "local", found, seed, f"weights folder {root}")
        return out
    if root.is_file():
        if len(networks) != 1:
            raise ConfigError(f"weights={str(root)!r} is one file but {len(networks)} networks "
                              "are requested: pass a folder with one file per network")
        return {networks[0]: _source(networks[0], "local", root, seed, "weights file")}
    raise ConfigError(f"weights must be 'imagenet', 'random' or an existing file or folder, got "
                      f"{str(weights)!r}")


def weights_label(provenance: Mapping[str, Any]) -> str:
    """Short human label of the weights behind a feature table, for figures and reports.

    ``provenance`` is :attr:`DeepFeatureResult.provenance` or its ``"networks"`` mapping.
    """
    nets = provenance.get("networks", provenance)
    by_kind: dict[str, list[str]] = {}
    for net, src in nets.items():
        by_kind.setdefault(src["kind"], []).append(net)
    tuned = [n for n, s in nets.items() if s.get("fine_tune")]
    parts = []
    every = len(by_kind) == 1
    if "random-fallback" in by_kind:
        who = "" if every else f" for {', '.join(by_kind['random-fallback'])}"
        parts.append(f"RANDOM weights{who} (no ImageNet weights found) — "
                     f"{'features are' if every else 'their features are'} not ImageNet "
                     "features")
    if "random" in by_kind:
        who = "" if every else f" for {', '.join(by_kind['random'])}"
        seed = next(iter(nets.values())).get("seed")
        parts.append(f"RANDOM weights{who} (requested, seed {seed}) — not ImageNet features")
    if "imagenet" in by_kind:
        parts.append("ImageNet weights" + ("" if every else f" for {', '.join(by_kind['imagenet'])}"))
    if "local" in by_kind:
        parts.append("local weight files" + ("" if every else f" for {', '.join(by_kind['local'])}"))
    label = "; ".join(parts)
    if tuned:
        label += f"; fine-tuned on the training split ({', '.join(tuned)})"
    return label


def _weights_id(source: Mapping[str, Any]) -> str:
    if source["kind"].startswith("random"):
        return f"random:seed={source['seed']}"
    return f"{source['kind']}:{source['sha256']}"


# --------------------------------------------------------------------------- networks
def build_network(net: str, source: Mapping[str, Any], image_size: int = 224) -> Any:
    """Build one network (``include_top=False``, ``pooling="avg"``) with its resolved weights.

    ``keras.utils.set_random_seed(seed)`` runs first, so random weights are reproducible.

    Raises
    ------
    WorkbenchError
        The weights file cannot be loaded into the network (names the file).
    """
    import keras

    spec = NETWORKS[net]
    keras.utils.set_random_seed(int(source.get("seed") or 0))
    model = getattr(keras.applications, spec.app)(
        include_top=False, weights=None, pooling="avg", input_shape=(image_size, image_size, 3))
    path = source.get("file")
    if path:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.load_weights(path)
            except Exception as exc:
                raise WorkbenchError(f"cannot load {net} weights from this file ("
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                                     "it is corrupt or holds another network's weights: "
                                     "replace it", step="weights", path=path) from exc
        # Keras only warns when it skips part of a file: those layers would stay random.
        skipped = [str(w.message) for w in caught
                   if any(k in str(w.message).lower() for k in _PARTIAL_LOAD_HINTS)]
        if skipped:
            raise WorkbenchError(f"{net} weights load only partly ({len(skipped)} Keras warnings"
                                 f", e.g. {skipped[0][:160]!r}); the file holds another "
                                 "network's weights: replace it", step="weights", path=path)
        for w in caught:
            if not issubclass(w.category, DeprecationWarning | FutureWarning):
                log.warning("loading %s weights: %s", net, w.message)
        if net.startswith("efficientnet") and not str(path).endswith(".weights.h5"):
            _fold_imagenet_rescaling(model)
    return model


def _fold_imagenet_rescaling(model: Any) -> None:
    """Give an EfficientNet the input scaling Keras adds for ImageNet weights (module doc)."""
    import keras

    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    # (x - mean) / sqrt(var) / sqrt(std) == (x - mean) / sqrt(var * std)
    norm.adapt_variance.assign(np.asarray(norm.adapt_variance) * np.asarray(
        _EFFICIENTNET_STD, dtype=np.float32).reshape(norm.adapt_variance.shape))
    norm.finalize_state()  # the layer uses tensors derived from its variables


def preprocess_function(net: str) -> Any:
    """The network's own ``keras.applications.<module>.preprocess_input``."""
    import keras

    return getattr(keras.applications, NETWORKS[net].module).preprocess_input


def embed(model: Any, net: str, images01: np.ndarray, batch_size: int = 32,
          bar: Any = None) -> np.ndarray:
    """Features of ``images01`` (``(n, S, S, 3)`` in [0, 1]) in batches of ``batch_size``."""
    pre = preprocess_function(net)
    out = np.empty((len(images01), NETWORKS[net].width), dtype=np.float32)
    for i in range(0, len(images01), batch_size):
        x = pre(np.asarray(images01[i:i + batch_size], dtype=np.float32) * 255.0)
        out[i:i + batch_size] = np.asarray(model.predict_on_batch(x))
        if bar is not None:
            bar.update(len(x))
    return out


# --------------------------------------------------------------------------- the stage
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


def _crop_units(settings: CropSettings, out: Path, crops_dir: Path, inputs_of: dict,
                digests_of: dict, need: set[str], progress: bool
                ) -> tuple[dict, dict, list[dict]]:
    """Crop records (from the store or computed) and the crops computed this run."""
    from tqdm.auto import tqdm

    store, crops, records, errors = FeatureStore(out, CROP_NAMESPACE), {}, {}, []
    for pid in tqdm(list(inputs_of), desc="deep crops", unit="patient", disable=not progress):
        key = make_key(CROP_NAMESPACE, {"code": DEEP_VERSION, "inputs": digests_of[pid],
                                        "crop": settings.key()})
        record = store.load(key)
        png = crops_dir / f"{pid}.png"
        if record is not None and pid not in need and png.is_file():
            records[pid] = record
            continue
        paths, mask = inputs_of[pid]
        try:
            crop = load_patient_crop(paths, mask, settings, patient=pid)
            save_crop_png(crop, png)
        except WorkbenchError as err:
            errors.append(error_row(pid, err.step or "deep-input", err.message, err.path))
            continue
        except Exception as exc:  # an unforeseen failure stays with its patient
            errors.append(error_row(pid, "deep-input", f"unexpected {type(exc).__name__}: {exc}"))
            continue
        records[pid] = {"key": key, "patient_id": pid, "info": crop.info, "png": str(png),
                        "warnings": crop.warnings}
        store.save(key, records[pid])
        crops[pid] = crop
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
        See :class:`~workbench.features.deep_input.CropSettings`.
    batch_size
        Images per ``predict_on_batch`` call.
    seed
        Random-weight initialisation and fine-tuning seed.
    fine_tune, labels, train_ids, test_ids, fine_tune_settings
        Optional fine-tuning on the training split only (:mod:`workbench.features.finetune`).

    Returns
    -------
    DeepFeatureResult
        ``features`` (index ``patient_id``, columns ``dl_<net>__<i>``), ``errors``,
        ``warnings``, ``crops``, ``provenance``, counts and ``seconds``.
    """
    from tqdm.auto import tqdm

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
        from workbench.features.finetune import FineTuner

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
                                             "weights": _weights_id(sources[net]),
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
                errors += [error_row(p, f"deep-{net}", f"inference failed: {type(exc).__name__}"
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
    warn_rows = [error_row(pid, "deep-input", w, r.get("png"))
                 for pid, r in crop_records.items() for w in r.get("warnings", [])]
    crop_table = pd.DataFrame([{"patient_id": pid, **r["info"], "png": r["png"]}
                               for pid, r in crop_records.items()])
    fields = {f.name: getattr(base_result, f.name) for f in dataclasses.fields(FeatureResult)}
    return DeepFeatureResult(**fields, provenance=provenance, warnings=errors_frame(warn_rows),
                             crops=crop_table)


__all__ = ["DeepFeatureResult", "ERROR_COLUMNS", "NETWORKS", "NETWORK_NAMES", "N_FEATURES",
           "build_network", "embed", "extract_deep", "feature_names", "keras_cache_dir",
           "resolve_weights", "weights_label"]
