"""The one walk over a model's layers, and switching a method of layer instances.

Every speed path finds its layers with `walk_layers` and binds its function with
`switch_method`. The walk reaches each layer a model holds, however deeply
nested (functional models, keras-hub backbones and their blocks, layers kept in
lists or dicts), through Python's own attributes, as Keras's tracking stores
them, without a private Keras name. Switching replaces a method of layer
instances, never of their classes: the layers keep their class, configuration
and weights, so saved models stay plain Keras and other models are untouched.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import keras

from csra_tf.acceleration import keras_internals


def walk_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer reachable from `model`, `model` first, each once.

    Args:
        model: a model or layer.

    Returns:
        The layers, depth first in attribute order.

    Example:
    >>> inputs = keras.Input((4,))
    >>> inner = keras.Sequential([keras.layers.Dense(3)])
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    >>> sum(type(layer) is keras.layers.Dense for layer in walk_layers(model))
    2
    """
    found: list[keras.layers.Layer] = []
    seen: set[int] = set()
    stack: list[object] = [model]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        if isinstance(item, keras.layers.Layer):
            seen.add(id(item))
            found.append(item)
            children = list(vars(item).values())
        elif isinstance(item, (list, tuple)):
            seen.add(id(item))
            children = list(item)
        elif isinstance(item, dict):
            seen.add(id(item))
            children = list(item.values())
        else:
            continue
        stack.extend(reversed(children))
    return found


def switch_method(
    model: keras.layers.Layer,
    layer_class: type,
    function: Callable,
    patch: str,
    method: str = "call",
    eligible: Callable[[keras.layers.Layer], bool] = lambda layer: True,
    private_names: tuple[keras_internals.PrivateName, ...] = (),
) -> int:
    """Binds `function` as the `method` of each eligible `layer_class` layer.

    Only layers of exactly `layer_class` are switched (a subclass may have its
    own `method`). Each is first checked with `keras_internals.patch_supported`:
    a layer whose Keras lacks what `function` needs keeps its own method.

    Args:
        model: a model or layer; every layer `walk_layers` reaches is considered.
        layer_class: the Keras layer class whose instances are switched.
        function: `function(self, ...)`, bound as the layer's `method`.
        patch: the speed path's name, for warnings.
        method: the method replaced (`"call"` or one that `call` uses).
        eligible: `layer -> bool`; False keeps the layer's own method.
        private_names: the private Keras names `function` relies on.

    Returns:
        The number of layers switched (a layer already on `function` is not
        counted again).

    Example:
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
    >>> plus_one = lambda self, inputs: inputs + 1
    >>> switch_method(model, keras.layers.Identity, plus_one, "plus one")
    1
    >>> model(keras.ops.zeros((1, 2))).numpy().tolist()
    [[1.0, 1.0]]
    """
    keras_method = getattr(layer_class, method, None)
    if keras_method is None:
        keras_internals.warn_off(patch, f"`{layer_class.__name__}` has no `{method}`")
        return 0
    count = 0
    for layer in walk_layers(model):
        if type(layer) is not layer_class or not eligible(layer):
            continue
        if getattr(getattr(layer, method, None), "__func__", None) is function:
            continue
        if not keras_internals.patch_supported(
            patch, layer, keras_method, function, private_names
        ):
            continue
        setattr(layer, method, types.MethodType(function, layer))
        count += 1
    return count
