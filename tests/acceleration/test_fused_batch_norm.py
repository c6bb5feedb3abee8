"""The fused BatchNorm call gives Keras's results: outputs, gradients, moving stats."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import accelerate
from csra_tf.acceleration.fused_batch_norm import use_fused_batch_norm
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.models import build_classifier
from tests.keras_harness import run_model_saving_test


def _pair(momentum=0.9, synchronized=False):
    """Two identical BatchNormalization layers in models; the second fused."""
    rng = np.random.default_rng(0)
    layers = []
    for _ in range(2):
        inputs = keras.Input((6, 5, 4))
        layer = keras.layers.BatchNormalization(
            momentum=momentum, synchronized=synchronized
        )
        model = keras.Model(inputs, layer(inputs))
        layer.set_weights(
            [
                rng.normal(1, 0.2, 4).astype("float32"),  # gamma
                rng.normal(0, 0.2, 4).astype("float32"),  # beta
                rng.normal(0, 1, 4).astype("float32"),  # moving mean
                rng.uniform(0.5, 2, 4).astype("float32"),  # moving variance
            ]
        )
        rng = np.random.default_rng(0)
        layers.append((model, layer))
    assert use_fused_batch_norm(layers[1][0]) == 1
    return layers


@pytest.mark.parametrize("synchronized", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_outputs_gradients_and_moving_statistics_match_keras(training, synchronized):
    # A synchronised layer with one replica: Keras all-reduces the moments over
    # that one replica (inside a strategy's step), the fused kernel runs as is.
    (plain_model, plain), (fused_model, fused) = _pair(synchronized=synchronized)
    initial = [w.numpy() for w in fused.weights]
    x = tf.constant(np.random.default_rng(1).normal(2, 3, (3, 6, 5, 4)), tf.float32)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])

    def forward_backward(model, layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=training)
            loss = tf.reduce_sum(y * tf.range(4, dtype=tf.float32))
        return y, tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])

    results = []
    for model, layer in ((plain_model, plain), (fused_model, fused)):
        y, grads = strategy.run(tf.function(forward_backward), (model, layer))
        results.append((y, grads, [w.numpy() for w in layer.weights]))
    (y0, g0, w0), (y1, g1, w1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-4)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # Moving statistics: Keras's momentum, the batch's biased variance.
    for a, b in zip(w1, w0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Training moves the moving statistics (so the comparison above is not of
    # two untouched copies); inference leaves them.
    assert np.allclose(w1[2], initial[2]) != training


def test_synchronized_batch_norm_keeps_keras_call_with_several_replicas():
    (_, plain), (_, fused) = _pair(synchronized=True)
    calls = []
    plain_call = keras.layers.BatchNormalization.call

    def recording_call(self, *args, **kwargs):
        calls.append(self is fused)
        return plain_call(self, *args, **kwargs)

    x = tf.zeros((2, 6, 5, 4))
    context = tf.distribute.get_replica_context()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.layers.BatchNormalization, "call", recording_call)
        fused(x, training=True)  # one replica: the fused kernel, not Keras's
        assert calls == []
        patch.setattr(type(context), "num_replicas_in_sync", property(lambda _: 2))
        fused(x, training=True)  # several: Keras's call averages the moments
        assert calls == [True]


def test_accelerated_classifiers_use_it_and_save_plain_keras():
    model = build_classifier("resnet_tiny", num_classes=3, image_size=32)
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    plain = np.asarray(model(x))
    assert accelerate(model, for_training=True, device="CPU") is model
    norms = _batch_norms(model)
    assert norms and all("call" in vars(layer) for layer in norms)
    np.testing.assert_allclose(model(x), plain, rtol=1e-5, atol=1e-5)
    # The tiny backbone's synchronised BatchNorm layers too.
    tiny = accelerate(
        build_classifier("tiny", num_classes=3, image_size=32),
        for_training=True,
        device="CPU",
    )
    assert all("call" in vars(layer) for layer in _batch_norms(tiny))
    # The saved model is plain Keras: loaded, it runs Keras's own calls.
    restored = run_model_saving_test(model, x, rtol=1e-5, atol=1e-5)
    assert not any("call" in vars(layer) for layer in _batch_norms(restored))


def _batch_norms(model):
    return [
        layer
        for layer in walk_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
