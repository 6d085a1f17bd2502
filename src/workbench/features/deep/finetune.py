"""Optional fine-tuning of a CNN backbone on the training split, before feature extraction.

Only training patients are ever seen: :class:`FineTuner` refuses a training list that shares a
patient with ``test_ids`` and builds its images from the training ids alone. A small head
(the backbone's global average pooling -> one dense sigmoid unit with L2 weight decay) is
trained with Adam (learning rate 1e-3, batch 32) on pCR labels; a validation fold drawn from
the training split (stratified by label, split by patient) drives early stopping on its AUC,
and the best epoch's weights are kept. Features are then extracted from the tuned backbone.
TensorFlow uses a GPU by itself when it sees one; the devices are recorded.

Per network, under ``<out_dir>/deep-finetune/<key>/``: ``<net>.weights.h5`` (the tuned
backbone), ``<net>_history.csv`` (loss / AUC per epoch, training and validation) and
``<net>.json`` (summary: epochs, best epoch, validation AUC, sha256 of the weights). The key
hashes the base weights, the settings, the seed and every training patient's id, label and
input digests, so a rerun reuses the tuned weights and any change retrains.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from workbench.errors import ConfigError, WorkbenchError
from workbench.features.store import make_key
from workbench.files import atomic_path, atomic_write_text
from workbench.hashing import sha256_file

log = logging.getLogger(__name__)

NAMESPACE = "deep-finetune"
STEP = "fine-tune"


@dataclasses.dataclass(frozen=True)
class FineTuneSettings:
    """Fine-tuning hyper-parameters (part of the key).

    Parameters
    ----------
    epochs
        Maximum epochs.
    patience
        Epochs without a better validation AUC before stopping.
    learning_rate, batch_size
        Adam learning rate and minibatch size.
    l2
        L2 penalty on the head's kernel.
    val_fraction
        Share of training patients held out for early stopping (stratified).
    train_backbone
        Update the backbone's weights (``False``: train the head only, features unchanged).
    """

    epochs: int = 30
    patience: int = 5
    learning_rate: float = 1e-3
    batch_size: int = 32
    l2: float = 1e-4
    val_fraction: float = 0.2
    train_backbone: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "patience", "batch_size"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ConfigError(f"fine-tune {name} must be an integer >= 1, got "
                                  f"{getattr(self, name)!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"fine-tune val_fraction must be in (0, 1), got "
                              f"{self.val_fraction!r}")
        if not (self.learning_rate > 0 and self.l2 >= 0):
            raise ConfigError("fine-tune learning_rate must be > 0 and l2 >= 0, got "
                              f"{self.learning_rate!r}, {self.l2!r}")


def validation_split(groups: np.ndarray, labels: np.ndarray, fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (fit, validation) masks over images: patients split, stratified by label."""
    per_patient = pd.Series(labels, index=groups).groupby(level=0).first()
    counts = per_patient.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise ConfigError(f"fine-tuning needs at least 2 training patients of each class, got "
                          f"{counts.to_dict()}", step=STEP)
    n_val = max(len(counts), int(round(fraction * len(per_patient))))
    _, val_ids = train_test_split(per_patient.index.to_numpy(), test_size=n_val,
                                  stratify=per_patient.to_numpy(), random_state=seed)
    val = np.isin(groups, val_ids)
    return ~val, val


def fine_tune_backbone(backbone: Any, images01: np.ndarray, labels: Sequence[int],
                       groups: Sequence[str], *, preprocess: Callable | None = None,
                       settings: FineTuneSettings = FineTuneSettings(),
                       seed: int = 0) -> pd.DataFrame:
    """Train a sigmoid head on ``backbone`` (updated in place); return the training curve.

    Parameters
    ----------
    backbone
        Keras model from images to a feature vector (a 4-D output is average-pooled).
    images01
        ``(n, S, S, 3)`` images in [0, 1], training patients only.
    labels, groups
        pCR label and patient id of each image.
    preprocess
        The network's ``preprocess_input``, applied to ``images01 * 255``.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch, loss, auc, val_loss, val_auc``.
    """
    import keras

    keras.utils.set_random_seed(seed)
    y = np.asarray(labels, dtype=np.float32)
    fit, val = validation_split(np.asarray(groups), y, settings.val_fraction, seed)
    x = np.asarray(images01, dtype=np.float32) * 255.0
    x = preprocess(x) if preprocess is not None else x
    backbone.trainable = settings.train_backbone
    inputs = keras.Input(shape=tuple(backbone.input_shape[1:]))
    feats = backbone(inputs, training=False)  # BatchNorm keeps its ImageNet statistics
    if len(feats.shape) == 4:
        feats = keras.layers.GlobalAveragePooling2D()(feats)
    out = keras.layers.Dense(1, activation="sigmoid", name="pcr_head",
                             kernel_regularizer=keras.regularizers.L2(settings.l2))(feats)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", verbose=0,
                                         patience=settings.patience, restore_best_weights=True)
    hist = model.fit(x[fit], y[fit], validation_data=(x[val], y[val]), epochs=settings.epochs,
                     batch_size=settings.batch_size, callbacks=[stop], verbose=0, shuffle=True)
    frame = pd.DataFrame(hist.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    lead = [c for c in ("epoch", "loss", "auc", "val_loss", "val_auc") if c in frame]
    frame = frame[lead + [c for c in frame.columns if c not in lead]]
    frame.attrs.update(n_fit=int(fit.sum()), n_val=int(val.sum()))
    return frame


class FineTuner:
    """Fine-tunes each network once per training split and caches the tuned weights.

    Parameters
    ----------
    out_dir
        Store root; files go to ``<out_dir>/deep-finetune/<key>/``.
    labels
        Patient id -> pCR (0/1); every training id needs one.
    train_ids, test_ids
        The training split (the only patients used) and the held-out ids it must not touch.
    settings
        :class:`FineTuneSettings` (default when ``None``).
    seed
        Validation split and initialisation seed.
    """

    def __init__(self, out_dir: str | Path, labels: Mapping[str, int] | None,
                 train_ids: Sequence[str] | None, test_ids: Sequence[str] = (),
                 settings: FineTuneSettings | None = None, *, seed: int = 0) -> None:
        if labels is None or train_ids is None or len(train_ids) == 0:
            raise ConfigError("fine_tune=True needs labels and train_ids (the training split)",
                              step=STEP)
        self.train_ids = [str(p) for p in train_ids]
        self.test_ids = {str(p) for p in test_ids}
        leaked = sorted(set(self.train_ids) & self.test_ids)
        if leaked:
            raise WorkbenchError(f"test patients {leaked[:5]} are in the fine-tuning training "
                                 "split: fine-tuning may only see training patients", step=STEP)
        labels = {str(k): v for k, v in dict(labels).items()}
        bad = [p for p in self.train_ids if labels.get(p) not in (0, 1, True, False)]
        if bad:
            raise ConfigError(f"training patients {bad[:5]} have no 0/1 pCR label", step=STEP)
        self.labels = {p: int(labels[p]) for p in self.train_ids}
        self.settings = settings or FineTuneSettings()
        self.seed = seed
        self.root = Path(out_dir) / NAMESPACE
        self._keys: dict[str, str] = {}

    def key(self, net: str, source: Mapping[str, Any], digests_of: Mapping[str, Any]) -> str:
        """Key of one network's tuning (see module docstring)."""
        self._keys[net] = make_key(NAMESPACE, {
            "network": net, "weights": [source["kind"], source.get("sha256"),
                                        source.get("seed")],
            "settings": dataclasses.asdict(self.settings), "seed": self.seed,
            "train": sorted((p, self.labels[p], digests_of.get(p)) for p in self.train_ids)})
        return self._keys[net]

    def folder(self, net: str) -> Path:
        return self.root / self._keys[net]

    def record(self, net: str) -> dict | None:
        """The saved summary of a network's tuning, ``None`` when not tuned yet."""
        try:
            return json.loads((self.folder(net) / f"{net}.json").read_text())
        except (OSError, ValueError, KeyError):
            return None

    def tune(self, net: str, backbone: Any, crops: Mapping[str, Any],
             preprocess: Callable) -> tuple[Any, dict]:
        """Tune ``backbone`` on the training crops (or load the cached tuning)."""
        folder = self.folder(net)
        weights = folder / f"{net}.weights.h5"
        record = self.record(net)
        if record is not None and weights.is_file():
            backbone.load_weights(weights)
            log.info("%s: reusing fine-tuned weights %s", net, weights)
            return backbone, record
        used = [p for p in self.train_ids if p in crops]
        if set(used) & self.test_ids:  # unreachable by construction; kept as a guard
            raise WorkbenchError("a test patient reached fine-tuning", step=STEP)
        if len(used) < len(self.train_ids):
            log.warning("%s fine-tuning: %d training patients without crops are left out",
                        net, len(self.train_ids) - len(used))
        counts = [len(crops[p].images) for p in used]
        images = np.concatenate([crops[p].images for p in used])
        labels = np.repeat([self.labels[p] for p in used], counts)
        groups = np.repeat(used, counts)
        history = fine_tune_backbone(backbone, images, labels, groups, preprocess=preprocess,
                                     settings=self.settings, seed=self.seed)
        with atomic_path(weights) as tmp:
            backbone.save_weights(tmp)
        atomic_write_text(folder / f"{net}_history.csv", history.to_csv(index=False))
        record = self._summary(net, history, weights, len(used))
        atomic_write_text(folder / f"{net}.json", json.dumps(record, indent=1))
        return backbone, record

    def _summary(self, net: str, history: pd.DataFrame, weights: Path, n_train: int) -> dict:
        import tensorflow as tf

        val_auc = history["val_auc"] if "val_auc" in history else pd.Series(dtype=float)
        best = int(val_auc.idxmax()) if val_auc.notna().any() else len(history) - 1
        return {"network": net, "settings": dataclasses.asdict(self.settings),
                "seed": self.seed, "n_train_patients": n_train,
                "n_fit_images": history.attrs.get("n_fit"),
                "n_val_images": history.attrs.get("n_val"), "epochs_run": len(history),
                "best_epoch": best + 1,
                "best_val_auc": None if val_auc.empty else float(val_auc.iloc[best]),
                "weights_file": str(weights), "weights_sha256": sha256_file(weights),
                "history_csv": str(weights.with_name(f"{net}_history.csv")),
                "devices": [d.name for d in tf.config.list_logical_devices()]}
