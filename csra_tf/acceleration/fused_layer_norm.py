"""LayerNormalization layers on one XLA kernel per direction while training.

Keras computes `LayerNormalization` from separate moment and normalisation ops
and TensorFlow differentiates them op by op; a ViT-B/16 has 25 of them. While
training, `use_fused_layer_norm(model)` runs each eligible layer through
`xla_kernels.layer_norm` (the forward pass one XLA kernel, the gradient
another). In inference the layers keep Keras's call, so evaluation and the
SavedModel / TFLite exports see TensorFlow's plain ops.

Outputs and gradients are Keras's up to float rounding; the layers keep their
class, configuration and weights, so saved models are unchanged.
`LayerNormalization.call` takes no `training` argument, so the call reads the
value Keras resolved for the enclosing calls from the layer's call context:
private Keras names (`keras_internals.CALL_CONTEXT_NAMES`), checked when the patch
is applied. Timed on CPU only (the kernels also run inside a jit-compiled
bfloat16 step, tested for its values, never timed on a GPU), so `accelerate`
applies it on CPU only.
"""

from __future__ import annotations

import keras

from csra_tf.acceleration.keras_internals import (
    CALL_CONTEXT_NAMES,
    training_in_progress,
)
from csra_tf.acceleration.layer_walk import switch_method
from csra_tf.acceleration.xla_kernels import layer_norm


def _eligible(layer) -> bool:
    return layer.center and layer.scale and not layer.rms_scaling


def _fused_call(self, inputs):
    """LayerNormalization.call through `layer_norm` when training."""
    rank = len(inputs.shape)
    if not (
        training_in_progress(self) and self.axis in ([-1], [rank - 1]) and rank >= 2
    ):
        return keras.layers.LayerNormalization.call(self, inputs)
    outputs = layer_norm(inputs, self.gamma, self.beta, self.epsilon)
    return keras.ops.cast(outputs, self.compute_dtype)


def use_fused_layer_norm(model: keras.layers.Layer) -> int:
    """Runs the eligible LayerNormalization layers of `model` on XLA kernels.

    Eligible: plain `keras.layers.LayerNormalization` with a scale and an
    offset (not `rms_scaling`); at call time, normalising the last axis only
    and training. Otherwise the layer runs Keras's call.

    Args:
        model: a model or layer; every layer `walk_layers` reaches is searched.

    Returns:
        The number of layers switched.

    Example:
    >>> from csra_tf import backbones
    >>> use_fused_layer_norm(backbones.create("vit_tiny", image_size=32)) > 0
    True
    """
    return switch_method(
        model,
        keras.layers.LayerNormalization,
        _fused_call,
        "XLA LayerNorm",
        eligible=_eligible,
        private_names=CALL_CONTEXT_NAMES,
    )
