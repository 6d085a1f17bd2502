"""Deep features ``dl_<net>__<i>``: five ImageNet CNNs on the largest tumour slice.

=====================  ===================================================================
module                 job
=====================  ===================================================================
:mod:`.networks`       the network registry (:data:`NETWORKS`, widths, Keras files), building
                       a network with its weights, batched embedding
:mod:`.weights`        which weights each network gets (ImageNet cache, random, local files)
                       and their provenance; :func:`weights_label`
:mod:`.crops`          the CNN input images: largest tumour slice, square crop, [0, 1]
:mod:`.finetune`       optional fine-tuning on the training split
:mod:`.extract`        the stage: :func:`extract_deep` (crop and feature caches, provenance)
=====================  ===================================================================

TensorFlow / Keras are imported only inside the functions that build or run a network, so
importing this package stays cheap. The stage records the weights' provenance, with its
one-line human-readable ``label``, in :attr:`DeepFeatureResult.provenance`, in
``<out_dir>/deep_weights.json`` and in ``features.attrs["deep_weights"]``: readers take the
label from there and never need to import this package.
"""

from __future__ import annotations

from workbench.features.deep.crops import CropSettings, load_patient_crop, save_crop_png
from workbench.features.deep.extract import (
    CROP_NAMESPACE,
    DEEP_VERSION,
    NAMESPACE,
    DeepFeatureResult,
    extract_deep,
)
from workbench.features.deep.networks import (
    N_FEATURES,
    NETWORK_NAMES,
    NETWORKS,
    NetworkSpec,
    build_network,
    embed,
    feature_names,
    preprocess_function,
)
from workbench.features.deep.weights import (
    keras_cache_dir,
    resolve_weights,
    weights_id,
    weights_label,
)
from workbench.features.store import ERROR_COLUMNS

__all__ = ["CROP_NAMESPACE", "CropSettings", "DEEP_VERSION", "DeepFeatureResult",
           "ERROR_COLUMNS", "NAMESPACE", "NETWORKS", "NETWORK_NAMES", "N_FEATURES",
           "NetworkSpec", "build_network", "embed", "extract_deep", "feature_names",
           "keras_cache_dir", "load_patient_crop", "preprocess_function", "resolve_weights",
           "save_crop_png", "weights_id", "weights_label"]
