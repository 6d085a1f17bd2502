"""Deep features: networks and widths, weight resolution and provenance, batching, cache, errors.

No network access: the Keras cache is a temporary folder and downloads are stubbed out. Models
are built at small input sizes (32 px; 75 px for the Inception networks) with random weights.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from test_deep_crops import _volume, write_patient

from workbench.errors import ConfigError, WorkbenchError
from workbench.features import deep
from workbench.features.deep import (
    N_FEATURES,
    NETWORKS,
    build_network,
    embed,
    extract_deep,
    finetune,
    resolve_weights,
    weights_label,
)
from workbench.features.deep import extract as deep_extract
from workbench.features.deep import weights as deep_weights
from workbench.hashing import sha256_file

SMALL = {"image_size": 32, "progress": False, "download": False}
# Keras/TF internals call np.array(tensor, copy=False): noise from the libraries, not ours.
pytestmark = [pytest.mark.tf,
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


@pytest.fixture(autouse=True)
def offline_keras_cache(tmp_path, monkeypatch):
    """An empty Keras cache and no downloads, whatever the machine has."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(deep_weights, "_download_weights", lambda net: None)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("deep_patients")
    rows = []
    for i in range(3):
        mask = np.zeros((6, 30, 30), np.uint8)
        mask[2:4, 8:16, 10:18 + i] = 1
        paths, mask_path = write_patient(root, f"P{i}", _volume((6, 30, 30), seed=i), mask)
        rows.append({"patient_id": f"P{i}", **{f"image_{p}": v for p, v in paths.items()},
                     "mask": mask_path})
    return pd.DataFrame(rows)


def _random(nets, seed=0):
    return resolve_weights(nets, "random", seed=seed)


def test_registry_widths_sum_to_8576():
    assert N_FEATURES == 8576
    assert [n for n in NETWORKS] == ["resnet50", "densenet169", "inceptionv3",
                                     "inceptionresnetv2", "efficientnetb0"]
    assert deep.feature_names("efficientnetb0")[:2] == ["dl_efficientnetb0__0",
                                                        "dl_efficientnetb0__1"]


@pytest.mark.slow
def test_all_five_networks_give_8576_columns(table, tmp_path):
    """Every network built once, at 75 px (the Inception minimum), end to end."""
    result = extract_deep(table.head(1), tmp_path / "store", weights="random", image_size=75,
                          progress=False)
    assert result.features.shape == (1, 8576)
    for net, spec in NETWORKS.items():
        cols = [c for c in result.features.columns if c.startswith(f"dl_{net}__")]
        assert len(cols) == spec.width and cols[-1] == f"dl_{net}__{spec.width - 1}"
    assert np.isfinite(result.features.to_numpy()).all()
    assert result.provenance["n_features"] == 8576


def test_random_weights_are_seeded_and_batching_matches_single_images():
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    src = _random(["efficientnetb0"])["efficientnetb0"]
    a = embed(build_network("efficientnetb0", src, 32), "efficientnetb0", x, batch_size=2)
    b = embed(build_network("efficientnetb0", src, 32), "efficientnetb0", x, batch_size=1)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    other = _random(["efficientnetb0"], seed=1)["efficientnetb0"]
    c = embed(build_network("efficientnetb0", other, 32), "efficientnetb0", x)
    assert not np.allclose(a, c)


def test_fallback_to_random_warns_loudly(caplog):
    with pytest.warns(UserWarning, match="RANDOM weights.*NOT ImageNet"):
        sources = resolve_weights(["resnet50", "efficientnetb0"], "imagenet", download=True)
    assert {s["kind"] for s in sources.values()} == {"random-fallback"}
    assert any("RANDOM" in r.message and r.levelname == "WARNING" for r in caplog.records)
    assert weights_label(sources) == ("RANDOM weights (no ImageNet weights found) — features "
                                      "are not ImageNet features")


def test_require_pretrained_turns_the_fallback_into_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning first
        with pytest.raises(WorkbenchError, match="no ImageNet weights found for resnet50"):
            resolve_weights(["resnet50"], "imagenet", require_pretrained=True)
    with pytest.raises(ConfigError, match="contradicts"):
        resolve_weights(["resnet50"], "random", require_pretrained=True)


def test_corrupt_cached_imagenet_file_is_an_error_naming_it():
    cache = deep.keras_cache_dir()
    cache.mkdir(parents=True)
    bad = cache / NETWORKS["resnet50"].keras_file
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(WorkbenchError, match="md5") as info:
        resolve_weights(["resnet50"], "imagenet")
    assert str(bad) in str(info.value)


def test_local_weights_load_exactly_and_are_traced(table, tmp_path):
    model = build_network("resnet50", _random(["resnet50"], seed=5)["resnet50"], 32)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    model.save_weights(wdir / "resnet50.weights.h5")
    local = extract_deep(table, tmp_path / "s1", networks=["resnet50"], weights=wdir, **SMALL)
    src = local.provenance["networks"]["resnet50"]
    assert src["kind"] == "local" and src["sha256"] == sha256_file(wdir / "resnet50.weights.h5")
    assert local.label == "local weight files"
    crops = np.concatenate([deep.load_patient_crop(
        {p: row[f"image_{p}"] for p in ("pre", "early", "late")}, row["mask"],
        deep.CropSettings(image_size=32)).images for _, row in table.iterrows()])
    direct = embed(model, "resnet50", crops)
    np.testing.assert_array_equal(local.features.to_numpy(), direct.astype(np.float64))
    one_file = extract_deep(table, tmp_path / "s2", networks=["resnet50"],
                            weights=wdir / "resnet50.weights.h5", **SMALL)
    np.testing.assert_array_equal(one_file.features.to_numpy(), local.features.to_numpy())
    seeded = extract_deep(table, tmp_path / "s3", networks=["resnet50"], weights="random",
                          **SMALL)
    assert not np.allclose(seeded.features.to_numpy(), local.features.to_numpy())


def test_bad_weight_files_are_errors_naming_the_file(table, tmp_path):
    bad = tmp_path / "resnet50.weights.h5"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(WorkbenchError, match="cannot load resnet50 weights") as info:
        extract_deep(table, tmp_path / "store", networks=["resnet50"], weights=bad, **SMALL)
    assert str(bad) in str(info.value)
    other = build_network("efficientnetb0", _random(["efficientnetb0"])["efficientnetb0"], 32)
    wrong = tmp_path / "wrong" / "resnet50.weights.h5"
    wrong.parent.mkdir()
    other.save_weights(wrong)
    with pytest.raises(WorkbenchError, match="another network"):
        build_network("resnet50", resolve_weights(["resnet50"], wrong)["resnet50"], 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no file for resnet50"):
        resolve_weights(["resnet50"], tmp_path / "empty")
    with pytest.raises(ConfigError, match="one file but 2 networks"):
        resolve_weights(["resnet50", "efficientnetb0"], wrong)


def test_keras_imagenet_efficientnet_file_gets_the_imagenet_scaling(tmp_path, monkeypatch):
    """A legacy notop .h5 gives what ``EfficientNetB0(weights="imagenet")`` gives."""
    import h5py
    import keras
    from keras.src.applications import efficientnet
    from keras.src.legacy.saving import legacy_h5_format

    src = build_network("efficientnetb0", _random(["efficientnetb0"], seed=3)["efficientnetb0"],
                        32)
    norm = next(la for la in src.layers if isinstance(la, keras.layers.Normalization))
    norm.adapt_mean.assign(np.array([0.485, 0.456, 0.406], np.float32))
    norm.adapt_variance.assign(np.array([0.229, 0.224, 0.225], np.float32) ** 2)
    path = tmp_path / NETWORKS["efficientnetb0"].keras_file
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, src)
    monkeypatch.setattr(efficientnet.file_utils, "get_file", lambda *a, **k: str(path))
    reference = keras.applications.EfficientNetB0(include_top=False, weights="imagenet",
                                                  pooling="avg", input_shape=(32, 32, 3))
    ours = build_network("efficientnetb0", resolve_weights(["efficientnetb0"],
                                                           tmp_path)["efficientnetb0"], 32)
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(embed(ours, "efficientnetb0", x),
                               embed(reference, "efficientnetb0", x), rtol=1e-4, atol=1e-5)


def test_cache_resume_errors_and_provenance(table, tmp_path, monkeypatch):
    bad = table.copy()
    bad.loc[1, "image_early"] = None  # missing phase
    empty_mask = tmp_path / "empty_mask.nii.gz"
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((6, 30, 30), np.uint8)), str(empty_mask))
    bad.loc[2, "mask"] = str(empty_mask)
    store = tmp_path / "store"
    first = extract_deep(bad, store, networks=["efficientnetb0"], weights="random", **SMALL)
    assert first.features.index.tolist() == ["P0"] and first.n_computed == 1
    assert set(first.errors["patient_id"]) == {"P1", "P2"}
    assert "'early'" in first.errors.set_index("patient_id").loc["P1", "message"]
    assert "empty" in first.errors.set_index("patient_id").loc["P2", "message"]
    assert (store / "crops" / "P0.png").is_file()

    monkeypatch.setattr(deep_extract, "build_network", lambda *a, **k: pytest.fail("rebuilt"))
    again = extract_deep(table.head(1), store, networks=["efficientnetb0"], weights="random",
                         **SMALL)
    assert again.n_cached == 1 and again.n_computed == 0
    pd.testing.assert_frame_equal(again.features, first.features)

    out = again.save(tmp_path / "run" / "deep.parquet")
    assert pd.read_parquet(out).attrs["deep_weights"]["networks"]["efficientnetb0"]["kind"] \
        == "random"
    sidecar = json.loads((out.parent / "deep_weights.json").read_text())
    assert sidecar["label"].startswith("RANDOM weights (requested, seed 0)")
    assert json.loads((store / "deep_weights.json").read_text())["seed"] == 0


def test_grey_mode_averages_phase_features(table, tmp_path):
    result = extract_deep(table.head(1), tmp_path / "store", networks=["efficientnetb0"],
                          weights="random", channels="grey", **SMALL)
    row = table.iloc[0]
    crop = deep.load_patient_crop({p: row[f"image_{p}"] for p in ("pre", "early", "late")},
                                  row["mask"], deep.CropSettings(image_size=32, channels="grey"))
    model = build_network("efficientnetb0", _random(["efficientnetb0"])["efficientnetb0"], 32)
    expected = embed(model, "efficientnetb0", crop.images).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(result.features.to_numpy()[0], expected, rtol=1e-5, atol=1e-6)


def test_two_components_warning_reaches_the_result(table, tmp_path):
    import SimpleITK as sitk

    mask = np.zeros((6, 30, 30), np.uint8)
    mask[2:4, 8:16, 10:18] = 1
    mask[5, 25:28, 25:28] = 1
    path = tmp_path / "two.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(path))
    two = table.head(1).assign(mask=str(path))
    result = extract_deep(two, tmp_path / "store", networks=["efficientnetb0"],
                          weights="random", **SMALL)
    assert len(result.features) == 1 and result.errors.empty
    assert result.warnings["message"].str.startswith("2 components, used the largest").all()
    assert result.crops.loc[0, "n_components"] == 2


def test_weights_label_mixed_sources():
    nets = {"resnet50": {"kind": "imagenet"}, "densenet169": {"kind": "random-fallback"},
            "efficientnetb0": {"kind": "imagenet", "fine_tune": {"epochs_run": 2}}}
    label = weights_label({"networks": nets})
    assert label.startswith("RANDOM weights for densenet169 (no ImageNet weights found)")
    assert "ImageNet weights for resnet50, efficientnetb0" in label
    assert label.endswith("fine-tuned on the training split (efficientnetb0)")


def test_configuration_errors(table, tmp_path):
    with pytest.raises(ConfigError, match="networks"):
        extract_deep(table, tmp_path, networks=["vgg16"], **SMALL)
    with pytest.raises(ConfigError, match="minimum"):
        extract_deep(table, tmp_path, networks=["inceptionv3"], **SMALL)
    with pytest.raises(ConfigError, match="batch_size"):
        extract_deep(table, tmp_path, networks=["resnet50"], batch_size=0, **SMALL)
    with pytest.raises(ConfigError, match="weights must be"):
        resolve_weights(["resnet50"], tmp_path / "nowhere")


# --------------------------------------------------------------------------- fine-tuning
def _tiny_backbone(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_fine_tune_backbone_trains_a_head_and_records_the_curve():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 4)
    images = rng.random((8, 16, 16, 3)).astype(np.float32) * 0.5 + labels[:, None, None,
                                                                          None] * 0.5
    backbone = _tiny_backbone()
    before = [w.copy() for w in backbone.get_weights()]
    settings = finetune.FineTuneSettings(epochs=2, batch_size=4, val_fraction=0.25)
    history = finetune.fine_tune_backbone(backbone, images, labels,
                                          [f"P{i}" for i in range(8)], settings=settings)
    assert list(history.columns) == ["epoch", "loss", "auc", "val_loss", "val_auc"]
    assert len(history) == 2 and history.attrs == {"n_fit": 6, "n_val": 2}
    assert any(not np.array_equal(a, b) for a, b in zip(before, backbone.get_weights(),
                                                        strict=True))


def test_fine_tuner_refuses_test_patients_and_missing_labels(tmp_path):
    with pytest.raises(WorkbenchError, match=r"test patients \['B'\]"):
        finetune.FineTuner(tmp_path, {"A": 0, "B": 1}, ["A", "B"], test_ids=["B", "C"])
    with pytest.raises(ConfigError, match="no 0/1 pCR label"):
        finetune.FineTuner(tmp_path, {"A": 0}, ["A", "B"])
    with pytest.raises(ConfigError, match="needs labels and train_ids"):
        extract_deep(pd.DataFrame({"patient_id": ["A"]}), tmp_path, networks=["resnet50"],
                     weights="random", fine_tune=True, **SMALL)


@pytest.mark.slow
def test_fine_tuned_features_use_the_training_split_only(tmp_path, monkeypatch):
    """EfficientNetB0 at 32 px, 10 tiny patients (8 train, 2 test), 2 epochs."""
    rows, labels = [], {}
    for i in range(10):
        mask = np.zeros((4, 24, 24), np.uint8)
        mask[1:3, 6:14, 6:12 + i % 4] = 1
        paths, mask_path = write_patient(tmp_path / "data", f"P{i}",
                                         _volume((4, 24, 24), seed=i), mask)
        rows.append({"patient_id": f"P{i}", **{f"image_{p}": v for p, v in paths.items()},
                     "mask": mask_path})
        labels[f"P{i}"] = i % 2
    table = pd.DataFrame(rows)
    train, test = [f"P{i}" for i in range(8)], ["P8", "P9"]
    seen = []
    real = finetune.fine_tune_backbone

    def spy(backbone, images, y, groups, **kwargs):
        seen.extend(groups)
        return real(backbone, images, y, groups, **kwargs)

    monkeypatch.setattr(finetune, "fine_tune_backbone", spy)
    settings = finetune.FineTuneSettings(epochs=2, batch_size=4, val_fraction=0.25)
    kwargs = dict(networks=["efficientnetb0"], weights="random", fine_tune=True,
                  labels=labels, train_ids=train, test_ids=test, fine_tune_settings=settings,
                  **SMALL)
    tuned = extract_deep(table, tmp_path / "store", **kwargs)
    assert set(seen) == set(train)  # no test patient reached training
    assert tuned.features.index.tolist() == [f"P{i}" for i in range(10)]
    record = tuned.provenance["networks"]["efficientnetb0"]["fine_tune"]
    assert record["epochs_run"] == 2 and record["n_train_patients"] == 8
    curve = pd.read_csv(record["history_csv"])
    assert list(curve.columns) == ["epoch", "loss", "auc", "val_loss", "val_auc"]
    assert tuned.label.endswith("fine-tuned on the training split (efficientnetb0)")
    plain = extract_deep(table, tmp_path / "store", **{**kwargs, "fine_tune": False})
    assert not np.allclose(plain.features.to_numpy(), tuned.features.to_numpy())
    seen.clear()
    again = extract_deep(table, tmp_path / "store", **kwargs)
    assert again.n_cached == 10 and not seen
    assert again.provenance["networks"]["efficientnetb0"]["fine_tune"] == record
