"""Giving individual layers of a model another method (`call`, ...), by instance.

The fused calls of `fused_dense`, `fused_layer_norm` and `matmul_attention`
replace a method of layer instances, never of their classes: the layers keep
their class, configuration and weights, so saved models stay plain Keras, and
other models are untouched.
"""

from __future__ import annotations

import types
from collections.abc import Callable


def switch_calls(model, call_for: Callable, method: str = "call") -> int:
    """Binds `call_for(layer)` as the `method` of each layer of `model` it names.

    Args:
        model: a model or layer; its nested models and layers are searched
            (not `model` itself).
        call_for: `layer -> function(self, ...)` to bind as the layer's
            `method`, or None to keep the layer's own.
        method: the name of the method replaced (`"call"`, or another method
            the layer's `call` uses).

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
        bound = getattr(getattr(layer, method, None), "__func__", None)
        if call is not None and bound is not call:
            setattr(layer, method, types.MethodType(call, layer))
            count += 1
    return count
