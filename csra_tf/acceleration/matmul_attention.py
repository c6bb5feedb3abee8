"""MultiHeadAttention's core as batched matmuls while training.

Keras computes the attention core (`softmax(q k^T * scale) v`) with two
einsums on `(B, T, N, H)` tensors. TensorFlow's oneDNN einsum transposes its
operands inside each call, and the gradient is four more einsums that do the
same. Moving the heads forward once (`(B, N, T, H)`) turns the core into two
`BatchMatMul`s, whose gradients are batched matmuls with transposed operands
and no copies: a ViT-B/16 training step on CPU is about 2 % faster
(docs/benchmarks.md). Inference keeps Keras's einsums (no gain measured there),
so the exports see the same graph as before.

`use_matmul_attention(model)` gives every plain `MultiHeadAttention` of a model
this `_compute_attention` (the method Keras documents for overriding). It runs
only without masks, dropout or returned scores and with attention over one
axis; otherwise Keras's own runs. Outputs equal Keras's up to float rounding;
the layers keep their class, configuration and weights. `_compute_attention`
and the layer settings it reads (`_dropout`, `_attention_axes`,
`_inverse_sqrt_key_dim`) are private Keras names
(`keras_internals.ATTENTION_NAMES`), checked on each layer when the patch is
applied. Measured on CPU only, so `accelerate` applies it on CPU only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from csra_tf.acceleration.keras_internals import ATTENTION_NAMES
from csra_tf.acceleration.layer_walk import switch_method

_HEADS_FIRST = [0, 2, 1, 3]  # (B, T, N, H) <-> (B, N, T, H)


def _compute_attention(
    self,
    query,
    key,
    value,
    attention_mask=None,
    training=None,
    return_attention_scores=False,
    use_causal_mask=False,
):
    """`MultiHeadAttention._compute_attention` as batched matmuls when training."""
    plain = (
        training is True
        and attention_mask is None
        and not return_attention_scores
        and not use_causal_mask
        and not self._dropout
        and len(query.shape) == 4
        and tuple(self._attention_axes) == (1,)
    )
    if not plain:
        # `use_causal_mask` only when set, as Keras's own `call` passes it
        # (Keras versions before it have no such argument).
        causal = {"use_causal_mask": True} if use_causal_mask else {}
        return keras.layers.MultiHeadAttention._compute_attention(
            self,
            query,
            key,
            value,
            attention_mask=attention_mask,
            training=training,
            return_attention_scores=return_attention_scores,
            **causal,
        )
    return batched_matmul_attention(query, key, value, self._inverse_sqrt_key_dim), None


def batched_matmul_attention(query, key, value, scale: float):
    """`softmax(query key^T * scale) value` per head, as two batched matmuls.

    As Keras's dot-product attention: logits and softmax in float32, the
    probabilities cast to the values' dtype.

    Args:
        query: `(B, T, N, H)`.
        key: `(B, S, N, H)`.
        value: `(B, S, N, H)`.
        scale: the logits' factor (`1 / sqrt(H)`).

    Returns:
        The attended values, `(B, T, N, H)`.
    """
    query, key, value = (tf.transpose(t, _HEADS_FIRST) for t in (query, key, value))
    logits = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32)
    probabilities = tf.nn.softmax(logits * scale, axis=-1)
    outputs = tf.matmul(tf.cast(probabilities, value.dtype), value)
    return tf.transpose(outputs, _HEADS_FIRST)


def use_matmul_attention(model: keras.layers.Layer) -> int:
    """Runs the attention core of `model`'s MultiHeadAttention layers as matmuls.

    Args:
        model: a model or layer; every layer `walk_layers` reaches is searched.

    Returns:
        The number of layers switched.

    Example:
    >>> from csra_tf import backbones
    >>> use_matmul_attention(backbones.create("vit_tiny", image_size=32)) > 0
    True
    """
    return switch_method(
        model,
        keras.layers.MultiHeadAttention,
        _compute_attention,
        "matmul attention",
        method="_compute_attention",
        private_names=ATTENTION_NAMES,
    )
