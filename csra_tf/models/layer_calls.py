"""Giving individual layers of a model another `call`, by instance.

The fused calls of `fused_dense` and `fused_layer_norm` replace the `call` of
layer instances, never of their classes: the layers keep their class,
configuration and weights, so saved models stay plain Keras, and other models
are untouched.
"""

from __future__ import annotations

import types
from collections.abc import Callable


def switch_calls(model, call_for: Callable) -> int:
    """Binds `call_for(layer)` as the call of each layer of `model` it names.

    Args:
        model: a model or layer; its nested models and layers are searched
            (not `model` itself).
        call_for: `layer -> function(self, inputs, ...)` to bind as the
            layer's call, or None to keep the layer's own.

    Returns:
        The number of layers switched (a layer already on its call is not
        counted again).

    Example:
    >>> import keras
    >>> holder = keras.layers.Layer()
    >>> holder.inner = keras.layers.Identity()
    >>> switch_calls(holder, lambda layer: lambda self, x: x + 1)
    1
    """
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        call = call_for(layer)
        if call is not None and getattr(layer.call, "__func__", None) is not call:
            layer.call = types.MethodType(call, layer)
            count += 1
    return count
