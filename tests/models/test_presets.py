"""keras-hub presets of CSRAClassifier, written by keras-hub's writer and opened by
keras-hub's own clients (`ImageClassifier.from_preset`, `Backbone.from_preset`,
`upload_preset`'s folder checks, the `hf://` loader), offline."""

import json
import math
import pathlib
import shutil

import keras_hub
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.errors import UserError
from csra_tf.layers import CSRA, AveragePoolingHead
from csra_tf.models import CSRAClassifier, build_classifier, presets
from tests.numpy_reference import csra_logits

PRESET_FILES = {
    "config.json",
    "metadata.json",
    "model.weights.h5",
    "task.json",
    "task.weights.h5",
}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], "float32")
IMAGENET_STD = np.array([0.229, 0.224, 0.225], "float32")


def _pixels(seed=0, size=32):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (2, size, size, 3)).astype("float32")


def _hub_resnet_tiny():
    return keras_hub.models.ResNetBackbone(
        **backbones.TORCHVISION_RESNET_CONFIGS["resnet_tiny"], image_shape=(32, 32, 3)
    )


def _with_trained_head(model, seed=1):
    """Sets the head to weights that a fresh head would not draw."""
    rng = np.random.default_rng(seed)
    model.head.set_weights(
        [rng.normal(size=w.shape).astype("float32") for w in model.head.get_weights()]
    )
    return model


_SAVED = {}


def _saved(name, tmp_path_factory):
    """A classifier on the tiny backbone `name` and the preset it wrote, once."""
    if name not in _SAVED:
        model = build_classifier(
            name, num_classes=3, num_heads=2, lam=0.3, image_size=32
        )
        _with_trained_head(model)
        folder = tmp_path_factory.mktemp(name)
        model.save_to_preset(str(folder))
        _SAVED[name] = model, str(folder)
    return _SAVED[name]


@pytest.fixture(scope="module", params=["tiny", "resnet_tiny"])
def saved(request, tmp_path_factory):
    return _saved(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    return _saved("tiny", tmp_path_factory)


def test_round_trip_keeps_class_parts_and_outputs(saved):
    model, folder = saved
    assert {path.name for path in pathlib.Path(folder).iterdir()} == PRESET_FILES
    restored = CSRAClassifier.from_preset(folder)
    assert type(restored) is CSRAClassifier
    assert isinstance(restored.head, CSRA)
    assert (restored.head.num_heads, restored.head.lam) == (2, 0.3)
    assert restored.head.temperatures == model.head.temperatures
    assert restored.backbone.name == model.backbone.name
    x = _pixels()
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)
    # The head's weights come from task.weights.h5, not a fresh draw.
    fresh = CSRAClassifier.from_preset(folder, load_weights=False)
    assert not np.allclose(np.asarray(fresh(x)), np.asarray(model(x)), atol=1e-3)


def test_the_head_weights_file_holds_the_head_alone(saved):
    model, folder = saved
    restored = CSRAClassifier.from_preset(folder, load_weights=False)
    restored.load_task_weights(f"{folder}/task.weights.h5")
    for loaded, kept in zip(restored.head.weights, model.head.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(kept))
    backbone_weights = restored.backbone.get_weights()
    restored.backbone.load_weights(f"{folder}/model.weights.h5")
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(backbone_weights, restored.backbone.get_weights(), strict=True)
    ]
    assert any(changed)  # task.weights.h5 had left the backbone as drawn


def test_keras_hub_image_classifier_opens_the_folder(saved):
    model, folder = saved
    # keras-hub's own task puts its GAP + Dense head on our saved backbone; no
    # image converter is written, so it feeds pixels to the backbone unchanged.
    hub = keras_hub.models.ImageClassifier.from_preset(folder, num_classes=4)
    x = _pixels(seed=2)
    features = np.asarray(model.backbone(x), "float64")
    np.testing.assert_allclose(np.asarray(hub.backbone(x)), features, atol=1e-6)
    kernel, bias = hub.output_dense.get_weights()
    expected = features.mean(axis=(1, 2)) @ kernel + bias
    np.testing.assert_allclose(hub.predict(x, verbose=0), expected, atol=1e-4)


def test_upload_preset_accepts_the_folder(saved, tmp_path):
    _, folder = saved
    # keras_hub.upload_preset checks the folder, then picks the hub by the URI's
    # scheme: an unknown scheme stops it right after the checks, before any
    # network. An empty folder fails the checks.
    with pytest.raises(ValueError, match="Unknown URI"):
        keras_hub.upload_preset("nowhere://csra-tf/tiny", folder)
    with pytest.raises(FileNotFoundError, match="config.json"):
        keras_hub.upload_preset("nowhere://csra-tf/tiny", str(tmp_path))


def test_a_keras_hub_backbone_part_is_saved_keras_hub_style(tmp_path):
    part = _hub_resnet_tiny()
    model = _with_trained_head(CSRAClassifier(part, CSRA(3, lam=0.2, name="head")))
    model.save_to_preset(str(tmp_path))
    # keras-hub's writer saves a keras-hub backbone with its own save_to_preset.
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert type(backbone) is keras_hub.models.ResNetBackbone
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert "ImageClassifier" in metadata["tasks"]
    x = (_pixels(seed=3) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(part(x)), atol=1e-6)
    restored = CSRAClassifier.from_preset(str(tmp_path))
    assert type(restored.backbone) is keras_hub.models.ResNetBackbone
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)


def test_new_head_on_a_keras_hub_backbone_preset(tmp_path):
    source = _hub_resnet_tiny()
    source.save_to_preset(str(tmp_path))
    model = CSRAClassifier.from_preset(
        str(tmp_path),
        backbone="resnet_tiny",
        num_classes=5,
        num_heads=2,
        lam=0.2,
        temperatures=(1.0, math.inf),
        image_size=32,
    )
    assert isinstance(model, CSRAClassifier) and model.image_size == 32
    assert (model.head.num_classes, model.head.num_heads, model.head.lam) == (5, 2, 0.2)
    x = _pixels(seed=4)
    # The preset's weights under the ImageNet normalisation of keras-hub's ResNets.
    features = np.asarray(source((x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD))
    np.testing.assert_allclose(np.asarray(model.features(x)), features, atol=1e-5)
    kernels = [np.asarray(kernel) for kernel in model.head.kernels]
    expected = csra_logits(
        features.reshape(2, -1, features.shape[-1]), kernels, (1.0, math.inf), 0.2
    )
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-4)


def test_new_head_on_a_saved_classifier(saved):
    model, folder = saved
    new = CSRAClassifier.from_preset(folder, num_classes=7, head="gap", dropout=0.1)
    assert isinstance(new.head, AveragePoolingHead) and new.num_classes == 7
    x = _pixels(seed=5)
    np.testing.assert_allclose(
        np.asarray(new.features(x)), np.asarray(model.features(x)), atol=1e-6
    )


def test_a_shared_classifier_loads_from_its_hf_handle_offline(
    saved_tiny, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    model, folder = saved_tiny
    # The folder as `hf download csra-tf/tiny-csra` leaves it in the cache.
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--csra-tf--tiny-csra"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(folder, repo / "snapshots" / revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    restored = CSRAClassifier.from_preset("hf://csra-tf/tiny-csra")
    x = _pixels(seed=6)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.parametrize(
    "kind, kwargs, fragments",
    [
        ("csra", {"lam": 0.5}, ["lam build a new head", "num_classes=None"]),
        ("csra", {"num_classes": 3, "heads": 2}, ["Unknown", "Received: heads"]),
        ("csra", {"image_size": 64}, ["takes 32 px", "Received: image_size=64"]),
        ("backbone", {"num_classes": 3}, ["no task.json", "backbone='resnet101'"]),
        ("empty", {}, ["has no config.json", "save_to_preset"]),
        ("missing", {}, ["local folder written by `save_to_preset`"]),
    ],
)
def test_mistakes_are_one_line(saved_tiny, tmp_path, kind, kwargs, fragments):
    folder = {
        "csra": saved_tiny[1],
        "backbone": str(tmp_path),
        "empty": str(tmp_path),
        "missing": str(tmp_path / "missing"),
    }[kind]
    if kind == "backbone":
        _hub_resnet_tiny().save_to_preset(folder)
    with pytest.raises(UserError) as error:
        CSRAClassifier.from_preset(folder, **kwargs)
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_another_task_preset_is_refused(tmp_path):
    hub = keras_hub.models.ImageClassifier(_hub_resnet_tiny(), num_classes=3)
    hub.save_to_preset(str(tmp_path))
    with pytest.raises(UserError, match="holds a ResNetImageClassifier|holds a Image"):
        CSRAClassifier.from_preset(str(tmp_path))


def test_the_installed_keras_hub_has_every_private_name(monkeypatch):
    module = presets.preset_utils()
    for name in presets.PRIVATE_KERAS_HUB_NAMES:
        holder = module
        for part in name.split("."):
            assert hasattr(holder, part), f"keras-hub has no preset_utils.{name}"
            holder = getattr(holder, part)
    monkeypatch.delattr(module, "get_preset_saver")
    with pytest.raises(UserError, match="has no keras_hub.src.utils.preset_utils"):
        presets.preset_utils()


def test_a_file_is_not_a_preset_folder(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("")
    model = build_classifier("tiny", num_classes=2, image_size=32)
    with pytest.raises(UserError, match="Received: preset_dir="):
        model.save_to_preset(str(path))
