"""LayerNormalization in the fusable pattern: Keras's outputs and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.models import use_fused_layer_norm


def _twin(input_shape, **kwargs):
    rng = np.random.default_rng(0)
    layers = [keras.layers.LayerNormalization(**kwargs) for _ in range(2)]
    for layer in layers:
        layer.build(input_shape)
    weights = [
        rng.normal(0.5, 0.5, w.shape).astype("float32") for w in layers[0].weights
    ]
    for layer in layers:
        layer.set_weights(weights)
    holder = keras.layers.Layer()
    holder.inner = layers[1]
    return layers, use_fused_layer_norm(holder)


def _outputs_and_gradients(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(tf.sin(3.0 * y))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *layer.weights])]


@pytest.mark.parametrize(
    "input_shape, kwargs",
    [
        ((4, 16), {}),
        ((2, 9, 16), {"epsilon": 1e-6}),
        ((2, 3, 4, 16), {}),  # 4-D: Keras's own call at run time
        ((2, 16, 9), {"axis": 1}),  # not the last axis: Keras's own call
    ],
)
def test_outputs_and_gradients_match_keras(input_shape, kwargs):
    (plain, fused), switched = _twin(input_shape, **kwargs)
    assert switched == 1
    x = np.random.default_rng(1).normal(3, 2, input_shape).astype("float32")
    expected, expected_grads = _outputs_and_gradients(plain, x)
    got, got_grads = _outputs_and_gradients(fused, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for g, e in zip(got_grads, expected_grads, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


def test_outputs_follow_the_compute_dtype():
    (plain, fused), _ = _twin((2, 5, 8), dtype="mixed_bfloat16")
    x = np.random.default_rng(3).normal(0, 1, (2, 5, 8)).astype("float32")
    assert fused(x).dtype == plain(x).dtype == "bfloat16"
    np.testing.assert_allclose(
        np.asarray(fused(x), "float32"), np.asarray(plain(x), "float32"), atol=0.05
    )


@pytest.mark.parametrize("kwargs", [{"scale": False}, {"center": False}])
def test_ineligible_layers_keep_keras_call(kwargs):
    _, switched = _twin((2, 5, 8), **kwargs)
    assert switched == 0
