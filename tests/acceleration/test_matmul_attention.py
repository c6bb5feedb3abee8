"""MultiHeadAttention's core as batched matmuls while training: Keras's values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import accelerate, matmul_attention
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.acceleration.matmul_attention import use_matmul_attention
from csra_tf.models import build_classifier
from tests.keras_harness import run_model_saving_test


@pytest.fixture
def core_calls(monkeypatch):
    """Counts the calls that reach the batched-matmul core."""
    calls = []
    core = matmul_attention.batched_matmul_attention

    def counting(*args):
        calls.append(1)
        return core(*args)

    monkeypatch.setattr(matmul_attention, "batched_matmul_attention", counting)
    return calls


def _twin(seed=0, **kwargs):
    """Two built MultiHeadAttention layers with the same random weights."""
    layers = [
        keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, **kwargs)
        for _ in range(2)
    ]
    for layer in layers:
        layer(tf.zeros((1, 5, 6)), tf.zeros((1, 7, 6)))
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in layers[0].weights]
    for layer in layers:
        layer.set_weights(weights)
    return layers


def _values_and_gradients(layer, query, value, **call_kwargs):
    query, value = tf.constant(query), tf.constant(value)
    with tf.GradientTape() as tape:
        tape.watch([query, value])
        y = layer(query, value, training=True, **call_kwargs)
        if isinstance(y, tuple):
            y = y[0]
        loss = tf.reduce_sum(tf.sin(3 * y))
    grads = tape.gradient(loss, [query, value, *layer.weights])
    return [y.numpy(), *(g.numpy() for g in grads)]


def _inputs(seed=1):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(0, 1, (2, 5, 6)).astype("float32"),
        rng.normal(0, 1, (2, 7, 6)).astype("float32"),
    )


def test_training_runs_batched_matmuls_with_keras_values(core_calls):
    plain, switched = _twin()
    assert use_matmul_attention(switched) == 1
    assert use_matmul_attention(switched) == 0  # already switched
    query, value = _inputs()
    expected = _values_and_gradients(plain, query, value)
    assert core_calls == []
    got = _values_and_gradients(switched, query, value)
    assert len(core_calls) == 1
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_inference_is_keras_exactly(core_calls):
    plain, switched = _twin(seed=2)
    use_matmul_attention(switched)
    query, value = _inputs(3)
    for training in (False, None):
        np.testing.assert_array_equal(
            switched(query, value, training=training).numpy(),
            plain(query, value, training=training).numpy(),
        )
    assert core_calls == []


@pytest.mark.parametrize(
    "layer_kwargs, call_kwargs",
    [
        ({}, {"attention_mask": np.tril(np.ones((2, 5, 7), bool))}),
        ({}, {"return_attention_scores": True}),
        ({}, {"use_causal_mask": True}),
        ({"dropout": 0.5}, {}),
    ],
)
def test_masks_scores_and_dropout_keep_keras_core(
    layer_kwargs, call_kwargs, core_calls
):
    _, switched = _twin(seed=4, **layer_kwargs)
    use_matmul_attention(switched)
    query, value = _inputs(4)
    switched(query, value, training=True, **call_kwargs)
    assert core_calls == []


def test_bfloat16_inputs_keep_their_dtype():
    layer = keras.layers.MultiHeadAttention(
        num_heads=2, key_dim=4, dtype="mixed_bfloat16"
    )
    layer(tf.zeros((1, 5, 6)), tf.zeros((1, 5, 6)))
    reference = layer(*[tf.constant(v) for v in _inputs(5)[:1] * 2], training=True)
    use_matmul_attention(layer)
    got = layer(*[tf.constant(v) for v in _inputs(5)[:1] * 2], training=True)
    assert got.dtype == reference.dtype == tf.bfloat16
    np.testing.assert_allclose(
        tf.cast(got, "float32").numpy(),
        tf.cast(reference, "float32").numpy(),
        atol=3e-2,
    )


def _cores(model) -> set[str]:
    """The modules of the attention cores of `model`'s MultiHeadAttention layers."""
    attentions = [
        layer
        for layer in walk_layers(model.backbone)
        if type(layer) is keras.layers.MultiHeadAttention
    ]
    assert attentions
    return {a._compute_attention.__func__.__module__ for a in attentions}


def test_vit_classifier_is_switched_when_accelerated_and_saved_plain():
    model = build_classifier("vit_tiny", 3, image_size=32)
    keras_core = {keras.layers.MultiHeadAttention._compute_attention.__module__}
    assert _cores(model) == keras_core
    accelerate(model, for_training=True, device="CPU")
    assert _cores(model) == {"csra_tf.acceleration.matmul_attention"}
    x = np.random.default_rng(10).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    assert _cores(run_model_saving_test(model, x, rtol=1e-5, atol=1e-5)) == keras_core
