"""The one layer walk reaches every layer once; switching is per instance."""

import collections

import keras
import numpy as np

from csra_tf import backbones
from csra_tf.acceleration.layer_walk import switch_method, walk_layers


class _Block(keras.layers.Layer):
    """A layer holding sublayers by attribute, in a list and in a dict."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization()
        self.stack = [keras.layers.Dense(4), keras.layers.Dense(4)]
        self.named = {"out": keras.layers.Dense(4)}

    def call(self, x):
        for layer in self.stack:
            x = layer(x)
        return self.named["out"](self.norm(x))


def test_the_walk_reaches_nested_layers_once():
    block = _Block()
    shared = keras.layers.Dense(4)
    inputs = keras.Input((3, 4))
    inner = keras.Model(inputs, block(shared(inputs)))
    outer_inputs = keras.Input((3, 4))
    model = keras.Model(outer_inputs, shared(inner(outer_inputs)))
    found = walk_layers(model)
    assert found[0] is model
    assert len({id(layer) for layer in found}) == len(found)  # each once
    for layer in (inner, block, shared, block.norm, *block.stack, block.named["out"]):
        assert any(layer is f for f in found), layer.name


def test_the_walk_reaches_the_blocks_of_a_keras_hub_backbone():
    backbone = backbones.create("vit_tiny", image_size=32)  # two encoder blocks
    counts = collections.Counter(
        type(layer).__name__ for layer in walk_layers(backbone)
    )
    # Per block: one attention (its query, key, value and output projections),
    # two LayerNorms and a two-layer MLP; one final LayerNorm.
    assert counts["MultiHeadAttention"] == 2
    assert counts["EinsumDense"] == 2 * 4
    assert counts["LayerNormalization"] == 2 * 2 + 1
    assert counts["Dense"] == 2 * 2


def test_switching_binds_per_instance_and_skips_subclasses():
    plain, switched = keras.layers.Identity(), keras.layers.Identity()
    subclass = type("MyIdentity", (keras.layers.Identity,), {})()
    holder = keras.Sequential([keras.Input((2,)), switched, subclass])

    def plus_one(self, inputs):
        return inputs + 1

    assert switch_method(holder, keras.layers.Identity, plus_one, "plus one") == 1
    assert switch_method(holder, keras.layers.Identity, plus_one, "plus one") == 0
    x = np.zeros((1, 2), "float32")
    np.testing.assert_array_equal(holder(x), x + 1)
    np.testing.assert_array_equal(plain(x), x)  # other instances untouched
    assert keras.layers.Identity.call is not plus_one
