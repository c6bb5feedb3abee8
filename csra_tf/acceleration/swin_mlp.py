"""keras-hub's Swin MLP with its GELU on the XLA kernel while training.

keras-hub's Swin Transformer blocks compute their MLP as `fc2(gelu(fc1(x)))`,
the exact GELU applied between the two `Dense` layers by the MLP's own `call`:
TensorFlow's separate elementwise ops, differentiated op by op, on the largest
activations of the block (4x its width). While training,
`use_swin_mlp_gelu(model)` runs that GELU as `xla_kernels.gelu` (one XLA kernel
forward, one for the gradient), as `fused_dense` does for a Dense layer's own
GELU: it made Swin-B's CPU training step faster than PyTorch's
(docs/benchmarks.md).
Inference keeps keras-hub's call, so oneDNN fuses the GELU into the matmul and
the exports see TensorFlow's plain ops.

The MLP layer is found by what it is rather than imported from keras-hub's
internal modules: a keras-hub layer class named `Mlp` (keras-hub 0.32's
`swin_transformer_layers.Mlp`) with the attributes its call uses (`fc1`, `fc2`,
`act_layer`, `dropout`). Eligible: an exact GELU and no dropout; otherwise, or
when keras-hub changes those attributes, the layer keeps keras-hub's call. Its
`call` takes no `training` argument, so the value comes from Keras's call
context (`keras_internals.CALL_CONTEXT_NAMES`, checked when the patch is
applied). Outputs and gradients are keras-hub's up to float rounding; the
layers keep their class, configuration and weights. Timed on CPU only, so
`accelerate` applies it on CPU only.
"""

from __future__ import annotations

import keras

from csra_tf.acceleration.keras_internals import (
    CALL_CONTEXT_NAMES,
    training_in_progress,
)
from csra_tf.acceleration.layer_walk import switch_method, walk_layers
from csra_tf.acceleration.xla_kernels import gelu

MLP_ATTRIBUTES = ("fc1", "fc2", "act_layer", "dropout")
"""What the replacement call reads of keras-hub's Swin MLP layer."""


def _is_swin_mlp(layer_class: type) -> bool:
    return layer_class.__name__ == "Mlp" and layer_class.__module__.startswith(
        "keras_hub."
    )


def _eligible(layer) -> bool:
    return (
        all(hasattr(layer, name) for name in MLP_ATTRIBUTES)
        and layer.act_layer is keras.activations.gelu
        and layer.dropout is None
    )


def _mlp_call(self, x):
    """The MLP's call with its GELU on `xla_kernels.gelu` when training."""
    if not training_in_progress(self):
        return type(self).call(self, x)
    return self.fc2(gelu(self.fc1(x)))


def use_swin_mlp_gelu(model: keras.layers.Layer) -> int:
    """Runs the GELU of `model`'s keras-hub Swin MLPs on the XLA kernel.

    Args:
        model: a model or layer; every layer `walk_layers` reaches is searched.

    Returns:
        The number of layers switched.

    Example:
    >>> from csra_tf.backbones.swin import swin_backbone
    >>> tiny = swin_backbone("swin_tiny", image_size=32, embed_dim=8,
    ...     depths=(2,), num_heads=(1,), window_size=2)
    >>> use_swin_mlp_gelu(tiny)
    2
    """
    classes = {type(layer) for layer in walk_layers(model)}
    return sum(
        switch_method(
            model,
            layer_class,
            _mlp_call,
            "Swin MLP GELU",
            eligible=_eligible,
            private_names=CALL_CONTEXT_NAMES,
        )
        for layer_class in classes
        if _is_swin_mlp(layer_class)
    )
