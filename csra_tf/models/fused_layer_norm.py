"""LayerNormalization in the op pattern oneDNN runs as one kernel.

Keras 3 computes LayerNormalization as `tf.nn.moments` and a chain of
elementwise ops; on CPU each is a pass over the tokens. Written as
`beta + (x - mean) * (rsqrt(var + eps) * gamma)`, with the variance taken from
the centred values, grappler's remapper recognises the graph and runs it as one
`_MklLayerNorm` (for 2-D and 3-D inputs, in inference; training graphs keep
the ops, which compute the same function).

`use_fused_layer_norm(model)` gives every eligible LayerNormalization layer of
a model (nested models and layers included) that call. The layers keep their
class, configuration and weights, so saved models are unchanged;
`CSRAClassifier` applies it to its backbone whenever it is built or loaded.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from csra_tf.models.layer_calls import replace_calls


def _eligible(layer) -> bool:
    return (
        type(layer) is keras.layers.LayerNormalization
        and layer.built
        and layer.scale
        and layer.center
        and not layer.rms_scaling
        and len(layer.axis) == 1
    )


def _fused_call(self, inputs):
    """LayerNormalization.call over the last axis in the fusable pattern."""
    rank = len(inputs.shape)
    if rank not in (2, 3) or self.axis[0] not in (-1, rank - 1):
        return keras.layers.LayerNormalization.call(self, inputs)
    x = tf.cast(inputs, "float32")
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centered = x - mean
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    scale = tf.math.rsqrt(variance + self.epsilon) * tf.cast(self.gamma, "float32")
    outputs = tf.cast(self.beta, "float32") + centered * scale
    return tf.cast(outputs, self.compute_dtype)


def use_fused_layer_norm(model) -> int:
    """Runs the eligible LayerNormalization layers of `model` in one kernel.

    Eligible: plain `keras.layers.LayerNormalization` over one axis with scale
    and centre, without RMS scaling. At run time inputs that are not 2-D or
    3-D, or not normalised over their last axis, keep Keras's call.

    Args:
        model: a model or layer; nested models and layers are searched too.

    Returns:
        The number of layers switched.

    Example:
    >>> from csra_tf import backbones
    >>> use_fused_layer_norm(backbones.create("vit_tiny", image_size=32)) > 0
    True
    """
    return replace_calls(model, lambda layer: _fused_call if _eligible(layer) else None)
