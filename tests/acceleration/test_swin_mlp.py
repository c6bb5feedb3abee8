"""keras-hub's Swin MLP on the XLA GELU while training: keras-hub's values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import swin_mlp
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.acceleration.swin_mlp import use_swin_mlp_gelu
from csra_tf.backbones.swin import swin_backbone


def _mlps(dropout_rate=0.0):
    """Two keras-hub Swin MLPs of one small backbone's class, same weights."""
    backbone = swin_backbone(
        "swin_tiny",
        image_size=32,
        embed_dim=8,
        depths=(2,),
        num_heads=(1,),
        window_size=2,
    )
    (mlp_class,) = {
        type(layer) for layer in walk_layers(backbone) if type(layer).__name__ == "Mlp"
    }
    layers = [
        mlp_class(in_features=6, hidden_features=24, dropout_rate=dropout_rate)
        for _ in range(2)
    ]
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 6)), "float32")
    for layer in layers:
        layer(x)
    layers[1].set_weights(layers[0].get_weights())
    return layers, x


class _Wrapper(keras.layers.Layer):
    """Calls the MLP inside a call that takes `training`, as a block does."""

    def __init__(self, mlp):
        super().__init__()
        self.mlp = mlp

    def call(self, x, training=None):
        return self.mlp(x)


def _run(mlp, x, training):
    wrapper = _Wrapper(mlp)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = wrapper(x, training=training)
        loss = tf.reduce_sum(tf.sin(3 * y))
    grads = tape.gradient(loss, [x, *mlp.trainable_weights])
    return y.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("training", [True, False])
def test_values_and_gradients_are_keras_hubs(training, monkeypatch):
    (plain, fast), x = _mlps()
    assert use_swin_mlp_gelu(fast) == 1
    assert use_swin_mlp_gelu(fast) == 0  # already switched
    calls = []
    kernel = swin_mlp.gelu
    monkeypatch.setattr(swin_mlp, "gelu", lambda t: calls.append(1) or kernel(t))
    want, want_grads = _run(plain, x, training)
    got, got_grads = _run(fast, x, training)
    # The XLA kernel runs only in training calls; inference is keras-hub's.
    assert len(calls) == (1 if training else 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_an_mlp_with_dropout_keeps_keras_hubs_call():
    (_, mlp), _ = _mlps(dropout_rate=0.1)
    assert use_swin_mlp_gelu(mlp) == 0
    assert "call" not in vars(mlp)


def test_an_mlp_without_the_attributes_it_reads_keeps_keras_hubs_call():
    (_, mlp), _ = _mlps()
    del mlp.act_layer
    assert use_swin_mlp_gelu(mlp) == 0
    assert "call" not in vars(mlp)


def test_other_layers_named_mlp_are_left_alone():
    class Mlp(keras.layers.Layer):  # not keras-hub's
        fc1 = fc2 = dropout = None
        act_layer = keras.activations.gelu

        def call(self, x):
            return x

    layer = Mlp()
    assert use_swin_mlp_gelu(layer) == 0
