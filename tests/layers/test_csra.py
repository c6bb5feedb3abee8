"""CSRA against a direct NumPy statement of the paper's Eq. 2-6 and 13."""

import math

import keras
import numpy as np
import pytest

from csra_tf.layers import CSRA, MAX_POOLING
from tests.keras_harness import run_layer_test
from tests.numpy_reference import csra_logits


@pytest.mark.parametrize("num_heads", [1, 2, 4, 6, 8])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_paper_equations(num_heads, normalize):
    rng = np.random.default_rng(num_heads)
    x = rng.normal(size=(3, 5, 6, 16)).astype("float32")
    layer = CSRA(num_classes=7, num_heads=num_heads, lam=0.3, normalize=normalize)
    layer.build(x.shape)
    kernels = [
        rng.normal(scale=0.5, size=(16, 7)).astype("float32") for _ in range(num_heads)
    ]
    layer.set_weights(kernels)
    expected = csra_logits(
        x.reshape(3, 30, 16), kernels, layer.temperatures, 0.3, normalize
    )
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=2e-5, atol=2e-5)


def test_token_input_and_custom_temperatures():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8)).astype("float32")
    layer = CSRA(
        num_classes=4, num_heads=3, lam=1.0, temperatures=[0.5, 3.0, MAX_POOLING]
    )
    layer.build(x.shape)
    kernels = [rng.normal(size=(8, 4)).astype("float32") for _ in range(3)]
    layer.set_weights(kernels)
    np.testing.assert_allclose(
        np.asarray(layer(x)),
        csra_logits(x, kernels, [0.5, 3.0, math.inf], 1.0),
        rtol=2e-5,
        atol=2e-5,
    )


def test_infinite_temperature_is_max_pooling_and_lambda_zero_is_average():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    m = rng.normal(size=(8, 5)).astype("float32")
    s = x.reshape(2, 16, 8) @ (m / np.linalg.norm(m, axis=0))
    max_head = CSRA(5, num_heads=1, lam=0.7, temperatures=[MAX_POOLING])
    max_head.build(x.shape)
    max_head.set_weights([m])
    np.testing.assert_allclose(
        np.asarray(max_head(x)), s.mean(1) + 0.7 * s.max(1), rtol=1e-5, atol=1e-5
    )
    avg_head = CSRA(5, num_heads=1, lam=0.0)
    avg_head.build(x.shape)
    avg_head.set_weights([m])
    np.testing.assert_allclose(np.asarray(avg_head(x)), s.mean(1), rtol=1e-5, atol=1e-5)
    # A very high finite temperature approaches max pooling.
    sharp = CSRA(5, num_heads=1, lam=0.7, temperatures=[1e4])
    sharp.build(x.shape)
    sharp.set_weights([m])
    np.testing.assert_allclose(np.asarray(sharp(x)), np.asarray(max_head(x)), atol=1e-3)


def test_weights_are_one_kernel_per_head_in_order():
    layer = CSRA(num_classes=3, num_heads=4)
    layer.build((None, 2, 2, 6))
    weights = layer.get_weights()
    assert len(weights) == 4
    assert all(w.shape == (6, 3) for w in weights)
    assert layer.temperatures == (1.0, 2.0, 4.0, math.inf)


def test_attention_is_softmax_of_first_head():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 5, 8)).astype("float32")
    layer = CSRA(num_classes=4, num_heads=2, temperatures=[2.0, MAX_POOLING])
    layer.build(x.shape)
    m = rng.normal(size=(8, 4)).astype("float32")
    layer.set_weights([m, rng.normal(size=(8, 4)).astype("float32")])
    att = np.asarray(layer.attention(x))
    assert att.shape == (2, 3, 5, 4)
    s = x.reshape(2, 15, 8) @ (m / np.linalg.norm(m, axis=0))
    e = np.exp(2.0 * s - (2.0 * s).max(1, keepdims=True))
    np.testing.assert_allclose(
        att.reshape(2, 15, 4), e / e.sum(1, keepdims=True), atol=1e-6
    )


def test_max_pooling_attention_is_one_hot():
    x = np.zeros((1, 2, 2, 2), "float32")
    x[0, 1, 0] = [1.0, 0.0]
    layer = CSRA(num_classes=1, temperatures=[MAX_POOLING])
    layer.build(x.shape)
    layer.set_weights([np.array([[1.0], [0.0]], "float32")])
    np.testing.assert_array_equal(
        np.asarray(layer.attention(x))[0, :, :, 0], [[0, 0], [1, 0]]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 0},
        {"num_classes": 3, "num_heads": 3},
        {"num_classes": 3, "num_heads": 2, "temperatures": [1.0]},
        {"num_classes": 3, "temperatures": [0.0]},
        {"num_classes": 3, "lam": -0.1},
        {"num_classes": 3, "lam": float("nan")},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError, match="Received"):
        CSRA(**kwargs)


@pytest.mark.parametrize(
    "init_kwargs, shape",
    [
        (
            {"num_classes": 3, "num_heads": 2, "lam": 0.2, "normalize": False},
            (2, 4, 4, 8),
        ),
        (
            {"num_classes": 4, "num_heads": 3, "temperatures": [0.5, 2.0, MAX_POOLING]},
            (2, 9, 8),
        ),
        ({"num_classes": 2, "lam": 0.0, "name": "head"}, (1, 3, 5, 6)),
    ],
)
def test_layer_harness(init_kwargs, shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype("float32")
    layer = CSRA(**init_kwargs)
    kernels = [
        rng.normal(size=(shape[-1], layer.num_classes)).astype("float32")
        for _ in layer.temperatures
    ]
    run_layer_test(
        CSRA,
        init_kwargs,
        x,
        expected_output_shape=(shape[0], layer.num_classes),
        weights=kernels,
        expected_output=csra_logits(
            x.reshape(shape[0], -1, shape[-1]),
            kernels,
            layer.temperatures,
            layer.lam,
            layer.normalize,
        ),
        rtol=2e-5,
        atol=2e-5,
    )


def test_mixed_precision_scores_in_float32():
    layer = CSRA(num_classes=3, num_heads=2, dtype="mixed_bfloat16")
    x = np.random.default_rng(4).normal(size=(2, 3, 3, 8)).astype("float32")
    out = layer(keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert all(w.dtype == "float32" for w in layer.weights)
    ref = CSRA(num_classes=3, num_heads=2)
    ref.build(x.shape)
    ref.set_weights(layer.get_weights())
    x16 = np.asarray(keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32"))
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref(x16)), atol=1e-5)


def test_gradients_reach_every_head():
    import tensorflow as tf

    layer = CSRA(num_classes=3, num_heads=4, lam=0.5)
    x = tf.random.normal((2, 3, 3, 8))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(grads) == 4 and all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_free_spatial_size_matches_the_paper_and_attention_keeps_its_shape():
    # A model with (None, None, d) features: the layer reshapes by run-time
    # shapes, one model serves every size, each giving Eq. 2-6 and 13.
    rng = np.random.default_rng(5)
    layer = CSRA(num_classes=3, num_heads=2, lam=0.4)
    inputs = keras.Input((None, None, 6))
    model = keras.Model(inputs, layer(inputs))
    kernels = [rng.normal(size=(6, 3)).astype("float32") for _ in range(2)]
    layer.set_weights(kernels)
    for height, width in ((2, 5), (4, 3)):
        x = rng.normal(size=(2, height, width, 6)).astype("float32")
        expected = csra_logits(
            x.reshape(2, height * width, 6), kernels, layer.temperatures, 0.4
        )
        got = model.predict_on_batch(x)
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
        attention = keras.ops.convert_to_numpy(
            keras.ops.convert_to_tensor(layer.attention(keras.ops.convert_to_tensor(x)))
        )
        assert attention.shape == (2, height, width, 3)
