"""Exact GELU and layer normalisation as one XLA kernel per direction.

TensorFlow runs `gelu` (exact, erf-based) and Keras's layer normalisation as
chains of separate elementwise and reduction ops, each a full pass over its
tensor, and differentiates them op by op: in a ViT-B/16 training step on CPU
they took about a tenth of the time (docs/benchmarks.md). Here each forward
and each backward is one XLA-compiled function, with the gradient written out
(`tf.custom_gradient`), so a direction is one or two passes.

The arithmetic is the same up to float rounding: float32 inside, results cast
back to the input's dtype (bfloat16 / float16 under mixed precision). The
kernels are for training graphs; inference keeps TensorFlow's own ops, which
oneDNN fuses into the preceding matmul, and which the SavedModel and TFLite
exports convert.
"""

from __future__ import annotations

import math

import tensorflow as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@tf.function(jit_compile=True)
def _gelu_forward(x):
    x32 = tf.cast(x, tf.float32)
    y = 0.5 * x32 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))
    return tf.cast(y, x.dtype)


@tf.function(jit_compile=True)
def _gelu_backward(x, upstream):
    x32 = tf.cast(x, tf.float32)
    cdf = 0.5 + 0.5 * tf.math.erf(x32 * _SQRT_HALF)
    pdf = _INV_SQRT_2PI * tf.exp(-0.5 * x32 * x32)
    return tf.cast(tf.cast(upstream, tf.float32) * (cdf + x32 * pdf), x.dtype)


@tf.custom_gradient
def gelu(x):
    """Exact GELU, `x * Phi(x)`, forward and gradient each one XLA kernel.

    The same function as `keras.activations.gelu(x, approximate=False)` and
    PyTorch's `nn.GELU()`; the gradient is `Phi(x) + x * phi(x)`.

    Args:
        x: a float tensor.

    Returns:
        `0.5 * x * (1 + erf(x / sqrt(2)))`, with the dtype of `x`.

    Example:
    >>> float(gelu(tf.constant(1.0)))  # doctest: +ELLIPSIS
    0.841...
    """

    def gradient(upstream):
        return _gelu_backward(x, upstream)

    return _gelu_forward(x), gradient


@tf.function(jit_compile=True)
def _normalized(x, epsilon):
    x32 = tf.cast(x, tf.float32)
    centred = x32 - tf.reduce_mean(x32, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    inverse_std = tf.math.rsqrt(variance + epsilon)
    return centred * inverse_std, inverse_std


@tf.function(jit_compile=True)
def _layer_norm_forward(x, gamma, beta, epsilon):
    normalized, _ = _normalized(x, epsilon)
    y = normalized * tf.cast(gamma, tf.float32) + tf.cast(beta, tf.float32)
    return tf.cast(y, x.dtype)


@tf.function(jit_compile=True)
def _layer_norm_backward(x, gamma, epsilon, upstream):
    normalized, inverse_std = _normalized(x, epsilon)
    upstream = tf.cast(upstream, tf.float32)
    scaled = upstream * tf.cast(gamma, tf.float32)
    d_x = inverse_std * (
        scaled
        - tf.reduce_mean(scaled, axis=-1, keepdims=True)
        - normalized * tf.reduce_mean(scaled * normalized, axis=-1, keepdims=True)
    )
    rows = list(range(len(x.shape) - 1))
    d_gamma = tf.reduce_sum(upstream * normalized, axis=rows)
    d_beta = tf.reduce_sum(upstream, axis=rows)
    return (
        tf.cast(d_x, x.dtype),
        tf.cast(d_gamma, gamma.dtype),
        tf.cast(d_beta, gamma.dtype),
    )


def layer_norm(x, gamma, beta, epsilon: float):
    """Layer normalisation over the last axis, each direction one XLA kernel.

    `(x - mean) / sqrt(variance + epsilon) * gamma + beta`, with the mean and
    the biased variance over the last axis: Keras's `LayerNormalization(axis=-1)`
    and PyTorch's `nn.LayerNorm`. The gradient recomputes the statistics
    from `x` instead of keeping them.

    Args:
        x: a float tensor `(..., d)`.
        gamma: the scale, `(d,)` (a tensor or a variable).
        beta: the offset, `(d,)`.
        epsilon: added to the variance.

    Returns:
        The normalised tensor, with the shape and dtype of `x`.

    Example:
    >>> y = layer_norm(tf.constant([[1.0, 3.0]]), tf.ones(2), tf.zeros(2), 0.0)
    >>> [round(float(v), 4) for v in y[0]]
    [-1.0, 1.0]
    """
    # Variables are read here so that the custom gradient sees plain tensors;
    # the tape carries the gradients on to the variables.
    gamma = tf.convert_to_tensor(gamma)
    beta = tf.convert_to_tensor(beta)
    epsilon = tf.constant(epsilon, tf.float32)

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        def gradient(upstream):
            return _layer_norm_backward(x, gamma, epsilon, upstream)

        return _layer_norm_forward(x, gamma, beta, epsilon), gradient

    return normalize(x, gamma, beta)
