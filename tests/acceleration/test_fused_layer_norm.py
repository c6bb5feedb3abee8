"""LayerNormalization on XLA kernels while training: Keras's values, same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import accelerate, fused_layer_norm
from csra_tf.acceleration.fused_layer_norm import use_fused_layer_norm
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.models import build_classifier
from csra_tf.training.train_lib import dtype_policy
from tests.keras_harness import run_model_saving_test


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls that reach the XLA layer-norm kernel."""
    calls = []
    kernel = fused_layer_norm.layer_norm

    def counting(*args, **kwargs):
        calls.append(1)
        return kernel(*args, **kwargs)

    monkeypatch.setattr(fused_layer_norm, "layer_norm", counting)
    return calls


def _twin_models(seed=0, **layer_kwargs):
    """Two models (B, 5, 12) -> (B, 5, 12) around a LayerNormalization, same weights."""
    models = []
    for _ in range(2):
        inputs = keras.Input((5, 12))
        hidden = keras.layers.Dense(12)(inputs)
        outputs = keras.layers.LayerNormalization(epsilon=1e-5, **layer_kwargs)(hidden)
        models.append(keras.Model(inputs, outputs))
    rng = np.random.default_rng(seed)
    weights = [rng.normal(1, 0.5, w.shape).astype("float32") for w in models[0].weights]
    for model in models:
        model.set_weights(weights)
    return models


def _outputs_and_gradients(model, x, training):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=training)
        loss = tf.reduce_sum(tf.sin(3 * y))
    gradients = tape.gradient(loss, [x, *model.weights])
    return y.numpy(), [tf.convert_to_tensor(g).numpy() for g in gradients]


def test_training_runs_the_kernel_with_keras_values(kernel_calls):
    plain, fused = _twin_models()
    assert use_fused_layer_norm(fused) == 1
    assert use_fused_layer_norm(fused) == 0  # already switched
    x = np.random.default_rng(1).normal(0, 2, (3, 5, 12)).astype("float32")
    expected, expected_grads = _outputs_and_gradients(plain, x, training=True)
    got, got_grads = _outputs_and_gradients(fused, x, training=True)
    assert len(kernel_calls) == 1
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    for g, e in zip(got_grads, expected_grads, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4)


def test_inference_keeps_keras_ops(kernel_calls):
    plain, fused = _twin_models(seed=2)
    use_fused_layer_norm(fused)
    x = np.random.default_rng(3).normal(0, 2, (2, 5, 12)).astype("float32")
    for training in (False, None):
        np.testing.assert_array_equal(
            fused(x, training=training).numpy(), plain(x, training=training).numpy()
        )
    np.testing.assert_array_equal(fused.predict_on_batch(x), plain.predict_on_batch(x))
    assert kernel_calls == []


def test_fit_runs_the_kernel(kernel_calls):
    _, fused = _twin_models(seed=4)
    use_fused_layer_norm(fused)
    fused.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(5).normal(0, 1, (4, 5, 12)).astype("float32")
    fused.fit(x, x, epochs=1, verbose=0)
    assert kernel_calls  # traced into the training step


@pytest.mark.parametrize(
    "layer_kwargs", [{"axis": 1}, {"axis": [1, 2]}, {"center": False}, {"scale": False}]
)
def test_other_normalisations_keep_keras_values(layer_kwargs, kernel_calls):
    plain, fused = _twin_models(seed=6, **layer_kwargs)
    use_fused_layer_norm(fused)
    x = np.random.default_rng(7).normal(0, 2, (3, 5, 12)).astype("float32")
    expected, _ = _outputs_and_gradients(plain, x, training=True)
    got, _ = _outputs_and_gradients(fused, x, training=True)
    np.testing.assert_array_equal(got, expected)
    assert kernel_calls == []


def test_vit_training_gradients_match_keras_ops():
    # All of the training speed paths (fused Dense with the XLA GELU, XLA
    # LayerNorm, matmul attention) against Keras's own calls.
    model = build_classifier("vit_tiny", 3, image_size=32)
    x = np.random.default_rng(8).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    plain = _outputs_and_gradients(model, x, training=True)
    accelerate(model, for_training=True, device="CPU")
    norms = [
        layer
        for layer in walk_layers(model.backbone)
        if type(layer) is keras.layers.LayerNormalization
    ]
    assert norms and all(n.call.__func__ is fused_layer_norm._fused_call for n in norms)
    fused = _outputs_and_gradients(model, x, training=True)
    np.testing.assert_allclose(fused[0], plain[0], rtol=1e-4, atol=1e-5)
    # Relative to the largest gradient of the model: the key biases' gradients
    # are exactly zero in exact arithmetic (softmax ignores a per-query shift),
    # so both runs give rounding noise there.
    scale = max(np.abs(want).max() for want in plain[1])
    for got, want in zip(fused[1], plain[1], strict=True):
        np.testing.assert_allclose(got / scale, want / scale, atol=1e-5)
    # Saved, the model is plain Keras again.
    loaded = run_model_saving_test(model, x, rtol=1e-5, atol=1e-5)
    assert not any("call" in vars(layer) for layer in walk_layers(loaded))


def test_xla_compiled_mixed_precision_step_runs_the_kernels(kernel_calls):
    # The GPU recipe (bfloat16 + a jit-compiled train step) with the kernels
    # nested inside the step's own XLA computation.
    with dtype_policy(True):
        model = build_classifier("vit_tiny", 3, image_size=32)
    accelerate(model, for_training=True, device="CPU")
    model.compile(
        optimizer="sgd",
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        jit_compile=True,
    )
    rng = np.random.default_rng(9)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 2, (4, 3)).astype("float32")
    losses = model.fit(x, y, epochs=2, verbose=0).history["loss"]
    assert kernel_calls and np.isfinite(losses).all()
    assert losses[1] < losses[0], losses
