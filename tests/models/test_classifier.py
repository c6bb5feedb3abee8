"""build_classifier: heads, shapes, GAP/CSRA equivalence and .keras round trips."""

import inspect
import json

import keras
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.layers import CSRA, AveragePoolingHead
from csra_tf.models import CSRAClassifier, build_classifier
from tests.keras_harness import (
    run_model_saving_test,
    run_model_test,
    run_serialization_test,
)


@pytest.mark.parametrize("head", ["csra", "gap"])
def test_output_is_logits_per_class(head):
    model = build_classifier(
        "tiny", num_classes=5, head=head, image_size=32, num_heads=2
    )
    out = model(
        np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    )
    assert out.shape == (3, 5)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert model.head is not None


def test_gap_head_equals_csra_with_lambda_zero():
    gap = build_classifier("tiny", num_classes=4, head="gap", image_size=32)
    csra = build_classifier(
        gap.backbone,
        num_classes=4,
        head="csra",
        lam=0.0,
        normalize=False,
        image_size=32,
    )
    kernel, _ = gap.head.get_weights()
    gap.head.set_weights([kernel, np.zeros(4, "float32")])
    csra.head.set_weights([kernel])
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(csra(x)), np.asarray(gap(x)), atol=1e-5)


def test_classifier_model_harness():
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model, restored = run_model_test(
        lambda: build_classifier(
            "tiny", num_classes=3, num_heads=4, lam=0.5, image_size=32
        ),
        x,
        expected_output_shape=(2, 3),
        atol=1e-5,
    )
    assert isinstance(restored.head, CSRA) and restored.head.num_heads == 4
    config = run_serialization_test(
        model, {"backbone": model.backbone, "head": model.head, "dropout": 0.0}
    )
    assert config["head"]["class_name"] == "CSRA"
    assert config["head"]["config"]["lam"] == pytest.approx(0.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="head"):
        build_classifier("tiny", 3, head="mlp", image_size=32)
    with pytest.raises(ValueError, match="dropout"):
        build_classifier("tiny", 3, dropout=1.5, image_size=32)


@pytest.mark.parametrize("head", ["csra", "gap", "attention"])
def test_build_classifier_returns_a_classifier_that_owns_its_parts(head):
    model = build_classifier(
        "tiny", num_classes=4, head=head, num_heads=2, dropout=0.2, image_size=32
    )
    assert isinstance(model, CSRAClassifier)
    assert isinstance(model.backbone, keras.Model)
    assert model.backbone.output_shape == (None, 4, 4, 128)
    assert model.head.name == "head" and model.num_classes == 4
    assert model.image_size == 32
    x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    # The model's output is the head on the backbone's features (dropout is off
    # at inference).
    np.testing.assert_allclose(
        np.asarray(model(x)), np.asarray(model.head(model.features(x))), atol=1e-5
    )
    restored = run_model_saving_test(model, x)
    assert type(restored.head) is type(model.head)
    assert restored.head.get_config() == model.head.get_config()
    assert json.dumps(restored.backbone.get_config(), default=str) == json.dumps(
        model.backbone.get_config(), default=str
    )
    assert restored.dropout == pytest.approx(0.2)
    for got, want in zip(restored.weights, model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_classifier_takes_any_head_layer():
    backbone = build_classifier("tiny", 3, image_size=32).backbone
    model = CSRAClassifier(backbone, AveragePoolingHead(5))
    assert model.output_shape == (None, 5)
    with pytest.raises(ValueError, match="backbone"):
        CSRAClassifier("tiny", AveragePoolingHead(5))


def test_head_variables_are_found_through_the_attribute():
    model = build_classifier("tiny", num_classes=3, image_size=32)
    head_paths = {v.path for v in model.head.trainable_variables}
    backbone_paths = {v.path for v in model.backbone.trainable_variables}
    assert head_paths and not head_paths & backbone_paths


def _layer_methods(model) -> list[tuple[str, type, dict]]:
    """Each layer's name, class and instance-bound methods (Keras binds none)."""
    layers = []
    for layer in walk_layers(model)[1:]:
        bound = {k: v for k, v in vars(layer).items() if inspect.ismethod(v)}
        layers.append((layer.name, type(layer), bound))
    return layers


@pytest.mark.parametrize("name", ["resnet_tiny", "vit_tiny", "tiny"])
def test_a_users_backbone_is_used_as_given(name):
    backbone = backbones.create(name, image_size=32)
    before = _layer_methods(backbone)
    assert before and all(not bound for _, _, bound in before)
    model = build_classifier(backbone, num_classes=3, image_size=32)
    CSRAClassifier(backbone, AveragePoolingHead(3))
    assert model.backbone is backbone
    assert _layer_methods(backbone) == before
    # Nor on load: `from_config` builds the parts as Keras does.
    x = np.random.default_rng(4).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    loaded = run_model_saving_test(model, x, atol=1e-5)
    assert all(not bound for _, _, bound in _layer_methods(loaded))
