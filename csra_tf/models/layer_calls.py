"""Giving chosen layers of a model another call, by instance."""

from __future__ import annotations

import types
from collections.abc import Callable


def replace_calls(model, choose: Callable) -> int:
    """Gives each layer that `choose` picks, at any depth, the call it names.

    The layers keep their class, configuration and weights, so saved models
    are unchanged; a layer that already has the chosen call is left alone.

    Args:
        model: a model or layer; nested models and layers are searched too.
        choose: `choose(layer)` -> the function to bind as the layer's `call`
            (taking `self` first), or None to keep its call.

    Returns:
        The number of layers given a new call.
    """
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        call = choose(layer)
        if call is not None and getattr(layer.call, "__func__", None) is not call:
            layer.call = types.MethodType(call, layer)
            count += 1
    return count
