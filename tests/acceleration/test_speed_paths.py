"""`accelerate`: which paths run for training / inference and on which device."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import FoldedBatchNormalization, accelerate, speed_paths
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.models import CSRAClassifier, build_classifier

PIXELS = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")


def _switched(model) -> dict[str, int]:
    """Layer class name -> how many of its layers run a speed path's method."""
    counts: dict[str, int] = {}
    for layer in walk_layers(model):
        if {"call", "_compute_attention"} & set(vars(layer)):
            name = type(layer).__name__
            counts[name] = counts.get(name, 0) + 1
    return counts


def _randomise_batch_norms(model, rng):
    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, shape))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, shape))


def test_training_on_cpu_switches_every_training_path_in_place():
    model = build_classifier("vit_tiny", 3, image_size=32)
    assert _switched(model) == {}
    assert accelerate(model, for_training=True, device="CPU") is model
    assert _switched(model) == {
        "Dense": 4,
        "EinsumDense": 8,
        "LayerNormalization": 5,
        "MultiHeadAttention": 2,
    }


def test_inference_on_cpu_folds_and_keeps_the_training_only_paths_off():
    model = build_classifier("resnet_tiny", 3, image_size=32, num_heads=2)
    _randomise_batch_norms(model, np.random.default_rng(1))
    expected = np.asarray(model(PIXELS, training=False))
    folded = accelerate(model, for_training=False, device="CPU")
    assert isinstance(folded, CSRAClassifier) and folded is not model
    assert folded.head is model.head
    assert any(
        isinstance(layer, FoldedBatchNormalization) for layer in walk_layers(folded)
    )
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in walk_layers(folded)
    )
    np.testing.assert_allclose(
        folded.predict_on_batch(PIXELS),
        expected,
        rtol=1e-4,
        atol=1e-4 * abs(expected).max(),
    )
    vit = build_classifier("vit_tiny", 3, image_size=32)
    assert accelerate(vit, for_training=False, device="CPU") is vit  # nothing folds
    assert _switched(vit) == {"Dense": 4, "EinsumDense": 8}


@pytest.mark.parametrize("for_training", [True, False])
def test_a_gpu_gets_no_cpu_measured_path(for_training):
    model = build_classifier("resnet_tiny", 3, image_size=32)
    vit = build_classifier("vit_tiny", 3, image_size=32)
    result = accelerate(model, for_training=for_training, device="GPU")
    assert accelerate(vit, for_training=for_training, device="GPU") is vit
    assert _switched(model) == _switched(vit) == {}
    # Folding runs on every device; it is the only inference path there.
    assert (result is model) == for_training
    assert _switched(result) == {}


def test_the_device_is_the_processs_own_by_default(monkeypatch):
    assert speed_paths.local_device() == (
        "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    )
    model = build_classifier("vit_tiny", 3, image_size=32)
    monkeypatch.setattr(speed_paths, "local_device", lambda: "GPU")
    accelerate(model, for_training=True)
    assert _switched(model) == {}
    monkeypatch.setattr(speed_paths, "local_device", lambda: "CPU")
    accelerate(model, for_training=True)
    assert _switched(model)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": keras.layers.Dense(2), "for_training": True}, "keras.Model"),
        ({"for_training": "yes"}, "for_training"),
        ({"for_training": True, "device": "TPU"}, "device"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs.setdefault("model", build_classifier("tiny", 3, image_size=32))
    with pytest.raises(ValueError, match=message):
        accelerate(**kwargs)
