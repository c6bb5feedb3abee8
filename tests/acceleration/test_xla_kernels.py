"""The XLA GELU and layer normalisation against NumPy of their equations."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration.xla_kernels import gelu, layer_norm

_erf = np.vectorize(math.erf)


def _value_and_gradients(function, inputs, upstream):
    inputs = [tf.constant(v) for v in inputs]
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        y = function(*inputs)
    return y.numpy(), [g.numpy() for g in tape.gradient(y, inputs, upstream)]


def test_gelu_and_its_gradient_are_the_erf_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (4, 7, 33)).astype("float32")
    upstream = rng.normal(0, 1, x.shape).astype("float32")
    y, (d_x,) = _value_and_gradients(gelu, [x], tf.constant(upstream))
    x64 = x.astype("float64")
    cdf = 0.5 * (1 + _erf(x64 / math.sqrt(2)))
    pdf = np.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(y, x64 * cdf, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(d_x, upstream * (cdf + x64 * pdf), rtol=1e-5, atol=2e-6)
    keras_gelu = keras.activations.gelu(tf.constant(x), approximate=False).numpy()
    np.testing.assert_allclose(y, keras_gelu, rtol=1e-5, atol=2e-6)


def _layer_norm_numpy(x, gamma, beta, epsilon, upstream):
    """Forward and gradients of layer normalisation over the last axis."""
    mean = x.mean(-1, keepdims=True)
    inverse_std = 1 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + epsilon)
    normalized = (x - mean) * inverse_std
    g = upstream * gamma
    d_x = inverse_std * (
        g
        - g.mean(-1, keepdims=True)
        - normalized * (g * normalized).mean(-1, keepdims=True)
    )
    rows = tuple(range(x.ndim - 1))
    return (
        normalized * gamma + beta,
        [d_x, (upstream * normalized).sum(rows), upstream.sum(rows)],
    )


def test_layer_norm_and_its_gradients_are_the_equations():
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 2, (3, 5, 48)) + 4).astype("float32")
    gamma, beta = (rng.normal(0, 1, 48).astype("float32") for _ in range(2))
    upstream = rng.normal(0, 1, x.shape).astype("float32")
    y, grads = _value_and_gradients(
        lambda x, g, b: layer_norm(x, g, b, 1e-5),
        [x, gamma, beta],
        tf.constant(upstream),
    )
    expected, expected_grads = _layer_norm_numpy(
        *(v.astype("float64") for v in (x, gamma, beta)), 1e-5, upstream
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_layer_norm_gradients_reach_variables():
    gamma = tf.Variable(np.linspace(0.5, 1.5, 8).astype("float32"))
    beta = tf.Variable(np.zeros(8, "float32"))
    x = tf.constant(np.random.default_rng(2).normal(0, 1, (4, 8)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.sin(layer_norm(x, gamma, beta, 1e-6)))
    d_gamma, d_beta = tape.gradient(loss, [gamma, beta])
    assert d_gamma is not None and d_beta is not None
    assert np.abs(d_beta.numpy()).sum() > 0


@pytest.mark.parametrize("dtype, tolerance", [("bfloat16", 3e-2), ("float16", 3e-3)])
def test_half_precision_inputs_compute_in_float32(dtype, tolerance):
    rng = np.random.default_rng(3)
    x32 = rng.normal(0, 2, (2, 6, 16)).astype("float32")
    x = tf.cast(x32, dtype)
    gamma, beta = tf.ones(16), tf.zeros(16)
    for function in (gelu, lambda v: layer_norm(v, gamma, beta, 1e-5)):
        low = function(x)
        assert low.dtype == x.dtype
        reference = function(tf.cast(x, "float32")).numpy()
        np.testing.assert_allclose(
            tf.cast(low, "float32").numpy(), reference, rtol=tolerance, atol=tolerance
        )
