"""Dense / EinsumDense as 2-D matmuls: Keras's outputs and gradients, same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import accelerate, fused_dense
from csra_tf.acceleration.fused_dense import matmul_split, use_fused_dense
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.models import build_classifier
from tests.keras_harness import run_model_saving_test


@pytest.mark.parametrize(
    "equation, bias_axes, expected",
    [
        ("abc,cde->abde", "de", (1, 2)),  # MultiHeadAttention's query/key/value
        ("abcd,cde->abe", "e", (2, 1)),  # its output projection
        ("ab,bc->ac", None, (1, 1)),
        ("abc,cd->abd", "d", (1, 1)),
        ("abc,cd->abd", "b", None),  # bias on a kept axis
        ("abc,dc->abd", None, None),  # kernel contracted on its last axis
        ("abc,cd->adb", None, None),  # output axes reordered
        ("aab,bc->aac", None, None),  # repeated axis
        ("abc,bcd->ad", "d", (2, 1)),
        ("abc,acd->abd", None, None),  # an axis shared by input, kernel, output
        ("ab,cd->abcd", None, None),  # nothing contracted
    ],
)
def test_matmul_split(equation, bias_axes, expected):
    assert matmul_split(equation, bias_axes) == expected


def _twin(layer_factory, input_shape, seed=0):
    """Two built copies of a layer with the same random weights."""
    rng = np.random.default_rng(seed)
    layers = [layer_factory() for _ in range(2)]
    for layer in layers:
        layer.build(input_shape)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in layers[0].weights]
    for layer in layers:
        layer.set_weights(weights)
    return layers


def _outputs_and_gradients(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(tf.sin(y))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *layer.weights])]


CASES = [
    (lambda: keras.layers.Dense(12, activation="gelu"), (2, 7, 5)),
    (lambda: keras.layers.Dense(6, use_bias=False), (3, 2, 4, 5)),
    (
        lambda: keras.layers.EinsumDense(
            "abc,cde->abde", output_shape=(None, 3, 4), bias_axes="de"
        ),
        (2, 7, 5),
    ),
    (
        lambda: keras.layers.EinsumDense(
            "abcd,cde->abe", output_shape=(None, 6), bias_axes="e", activation="relu"
        ),
        (2, 7, 3, 4),
    ),
]


@pytest.mark.parametrize("factory, input_shape", CASES)
def test_outputs_and_gradients_match_keras(factory, input_shape):
    plain, fused = _twin(factory, input_shape)
    assert use_fused_dense(fused) == 1
    assert use_fused_dense(fused) == 0  # already switched
    x = np.random.default_rng(1).normal(0, 1, input_shape).astype("float32")
    expected, expected_grads = _outputs_and_gradients(plain, x)
    got, got_grads = _outputs_and_gradients(fused, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for g, e in zip(got_grads, expected_grads, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_graph_mode_keeps_static_shapes_and_unknown_batch():
    layer = keras.layers.Dense(4, activation="gelu")
    layer.build((None, 9, 5))
    assert use_fused_dense(layer) == 1
    shapes = []

    @tf.function(input_signature=[tf.TensorSpec([None, 9, 5], tf.float32)])
    def run(x):
        y = layer(x)
        shapes.append(y.shape.as_list())
        return y

    assert run(tf.zeros([3, 9, 5])).shape == (3, 9, 4)
    assert shapes == [[None, 9, 4]]


def test_ineligible_layers_keep_keras_calls():
    inputs = keras.Input((7, 5))
    bias_on_kept_axis = keras.layers.EinsumDense(
        "abc,cd->abd", output_shape=(7, 4), bias_axes="b"
    )
    subclass = type("MyDense", (keras.layers.Dense,), {})(3)
    model = keras.Model(inputs, subclass(bias_on_kept_axis(inputs)))
    assert use_fused_dense(model) == 0
    assert bias_on_kept_axis.call.__func__ is keras.layers.EinsumDense.call
    assert subclass.call.__func__ is keras.layers.Dense.call


def test_two_dimensional_inputs_keep_keras_call():
    plain, fused = _twin(lambda: keras.layers.Dense(3, activation="relu"), (4, 5))
    assert use_fused_dense(fused) == 1
    x = np.random.default_rng(2).normal(0, 1, (4, 5)).astype("float32")
    np.testing.assert_array_equal(fused(x).numpy(), plain(x).numpy())


def _call_modules(model, classes) -> set[str]:
    """The modules whose functions are the calls of `model`'s `classes` layers."""
    return {
        getattr(layer.call, "__func__", layer.call).__module__
        for layer in walk_layers(model.backbone)
        if type(layer) in classes
    }


def test_vit_classifier_runs_the_fused_calls_once_accelerated():
    model = build_classifier("vit_tiny", 3, image_size=32)
    dense = (keras.layers.Dense, keras.layers.EinsumDense)
    keras_modules = {
        keras.layers.Dense.call.__module__,
        keras.layers.EinsumDense.call.__module__,
    }
    assert _call_modules(model, dense) == keras_modules  # as built: Keras's calls
    x = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    plain = model.predict_on_batch(x)
    accelerate(model, for_training=True, device="CPU")
    assert _call_modules(model, dense) == {"csra_tf.acceleration.fused_dense"}
    np.testing.assert_allclose(model.predict_on_batch(x), plain, rtol=1e-5, atol=1e-5)
    loaded = run_model_saving_test(model, x, rtol=1e-5, atol=1e-5)
    assert _call_modules(loaded, dense) == keras_modules  # saved as plain Keras


@pytest.mark.parametrize("training", [True, False])
def test_exact_gelu_runs_the_xla_kernel_only_while_training(training, monkeypatch):
    calls = []
    kernel = fused_dense.gelu
    monkeypatch.setattr(fused_dense, "gelu", lambda x: calls.append(1) or kernel(x))
    plain, fused = _twin(lambda: keras.layers.Dense(12, activation="gelu"), (2, 7, 5))
    assert use_fused_dense(fused) == 1
    x = tf.constant(np.random.default_rng(5).normal(0, 2, (2, 7, 5)).astype("float32"))
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y, *tape.gradient(loss, [x, *layer.weights])])
    assert len(calls) == (1 if training else 0)
    for got, want in zip(*results[::-1], strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
