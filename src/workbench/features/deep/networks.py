"""The five ImageNet CNNs: registry, construction with resolved weights, batched embedding.

Networks (``keras.applications``, ``include_top=False``, ``pooling="avg"``, built once per
run): ResNet50 (2,048), DenseNet169 (1,664), InceptionV3 (2,048), InceptionResNetV2 (1,536),
EfficientNetB0 (1,280): 8,576 features. Each batch of [0, 1] crops is mapped to [0, 255] and
passed through the network's own ``preprocess_input`` before ``model.predict_on_batch``.
Keras is imported inside the functions, so importing this module stays cheap. Which weights a
network gets is decided by :mod:`workbench.features.deep.weights`.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.names import NETWORK_NAMES, check_registry

log = logging.getLogger(__name__)

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
check_registry("workbench.features.deep.NETWORKS", NETWORKS, NETWORK_NAMES)
N_FEATURES = sum(s.width for s in NETWORKS.values())  # 8,576
_EFFICIENTNET_STD = (0.229, 0.224, 0.225)
_PARTIAL_LOAD_HINTS = ("skipping", "retain", "freshly-initialized", "could not be loaded")


def feature_names(net: str) -> list[str]:
    """Column names of one network: ``dl_<net>__0`` ... ``dl_<net>__<width-1>``."""
    return [f"dl_{net}__{i}" for i in range(NETWORKS[net].width)]



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



__all__ = ["NETWORKS", "NETWORK_NAMES", "N_FEATURES", "NetworkSpec", "build_network", "embed",
           "feature_names", "preprocess_function"]
