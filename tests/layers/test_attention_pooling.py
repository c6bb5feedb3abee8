"""ClassAttentionPooling ("spatial only", Table 6) against NumPy of f = a."""

import numpy as np
import pytest

from csra_tf.config import HEADS
from csra_tf.layers import CSRA, MAX_POOLING, ClassAttentionPooling
from csra_tf.models import build_classifier
from tests.keras_harness import run_layer_test, run_model_test
from tests.numpy_reference import attention_pooling_logits


@pytest.mark.parametrize("num_heads", [1, 2, 4])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_numpy(num_heads, normalize):
    rng = np.random.default_rng(num_heads)
    x = rng.normal(size=(3, 4, 5, 8)).astype("float32")
    layer = ClassAttentionPooling(6, num_heads=num_heads, normalize=normalize)
    layer.build(x.shape)
    kernels = [
        rng.normal(scale=0.5, size=(8, 6)).astype("float32") for _ in range(num_heads)
    ]
    layer.set_weights(kernels)
    expected = attention_pooling_logits(
        x.reshape(3, 20, 8), kernels, layer.temperatures, normalize
    )
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=2e-5, atol=2e-5)


def test_tokens_custom_temperatures_and_attention_like_csra():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8)).astype("float32")
    temperatures = [3.0, MAX_POOLING]
    layer = ClassAttentionPooling(4, num_heads=2, temperatures=temperatures)
    csra = CSRA(4, num_heads=2, temperatures=temperatures)
    layer.build(x.shape)
    csra.build(x.shape)
    kernels = [rng.normal(size=(8, 4)).astype("float32") for _ in range(2)]
    layer.set_weights(kernels)
    csra.set_weights(kernels)
    expected = attention_pooling_logits(x, kernels, temperatures)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(
        np.asarray(layer.attention(x)), np.asarray(csra.attention(x)), atol=1e-6
    )


def test_config_has_no_lambda():
    layer = ClassAttentionPooling(5, num_heads=4, normalize=False, name="pool")
    config = layer.get_config()
    assert "lam" not in config
    assert config["temperatures"] == [1.0, 2.0, 4.0, float("inf")]


@pytest.mark.parametrize(
    "init_kwargs, shape",
    [
        ({"num_classes": 5, "num_heads": 4, "normalize": False}, (2, 3, 4, 8)),
        ({"num_classes": 3, "temperatures": [MAX_POOLING], "name": "pool"}, (2, 7, 6)),
    ],
)
def test_layer_harness(init_kwargs, shape):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape).astype("float32")
    layer = ClassAttentionPooling(**init_kwargs)
    kernels = [
        rng.normal(size=(shape[-1], layer.num_classes)).astype("float32")
        for _ in layer.temperatures
    ]
    run_layer_test(
        ClassAttentionPooling,
        init_kwargs,
        x,
        expected_output_shape=(shape[0], layer.num_classes),
        weights=kernels,
        expected_output=attention_pooling_logits(
            x.reshape(shape[0], -1, shape[-1]),
            kernels,
            layer.temperatures,
            layer.normalize,
        ),
        rtol=2e-5,
        atol=2e-5,
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        ClassAttentionPooling(3, num_heads=0)
    with pytest.raises(ValueError, match="temperatures"):
        ClassAttentionPooling(3, num_heads=2, temperatures=[1.0])


def test_attention_head_in_classifier_model_harness():
    assert "attention" in HEADS
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model, restored = run_model_test(
        lambda: build_classifier(
            "tiny", num_classes=3, head="attention", image_size=32
        ),
        x,
        expected_output_shape=(2, 3),
        atol=1e-5,
    )
    head = model.head
    assert isinstance(head, ClassAttentionPooling)
    assert isinstance(restored.head, ClassAttentionPooling)
    features = model.backbone(x)
    expected = attention_pooling_logits(
        np.asarray(features).reshape(2, -1, features.shape[-1]),
        head.get_weights(),
        head.temperatures,
    )
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-4, atol=1e-5)
