"""Which weights each CNN gets, and their provenance.

Weights (``weights=``)
----------------------
``"imagenet"`` (default)
    The Keras notop file in the Keras cache, ``$KERAS_HOME/models/<file>`` (default
    ``~/.keras/models``; :data:`~workbench.features.deep.networks.NETWORKS` lists the file names, e.g.
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
    :func:`~workbench.features.deep.networks.build_network` makes, e.g. by ``model.save_weights``) or else the Keras notop file
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
``md5``, ``seed``, ``reason``. It is in
:attr:`~workbench.features.deep.extract.DeepFeatureResult.provenance`, in
``features.attrs["deep_weights"]`` (kept by ``to_parquet``), in every store record, and in the
``<stem>_weights.json`` sidecar :meth:`DeepFeatureResult.save` writes;
:func:`weights_label` gives the one-line label for figures and reports.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, WorkbenchError
from workbench.features.deep.networks import NETWORKS

log = logging.getLogger(__name__)


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


def _host_unreachable(url: str) -> str | None:
    """Why a download from ``url`` cannot work, when that is plain without trying: no proxy
    is configured and the host name does not resolve (offline). ``None``: try it.

    Importing Keras (and TensorFlow) to learn that costs seconds on every run without the
    weights, even when every deep feature is already in the store."""
    if urllib.request.getproxies():  # a proxy may reach what this machine cannot resolve
        return None
    host = urllib.parse.urlsplit(url).hostname
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:  # socket.gaierror: no DNS, no network
        return f"cannot resolve {host}: {exc}"
    return None


def _download_weights(net: str) -> Path | None:
    """Download a network's notop file into the Keras cache; ``None`` when that fails."""
    spec = NETWORKS[net]
    offline = _host_unreachable(spec.url)
    if offline is not None:
        log.info("cannot download %s weights: %s", net, offline)
        return None
    import keras

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


def weights_id(source: Mapping[str, Any]) -> str:
    """The part of a cache key that identifies a network's weights (seed or file hash)."""
    if source["kind"].startswith("random"):
        return f"random:seed={source['seed']}"
    return f"{source['kind']}:{source['sha256']}"



__all__ = ["keras_cache_dir", "resolve_weights", "weights_id", "weights_label"]
