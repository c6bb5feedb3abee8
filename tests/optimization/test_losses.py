"""Tests for `csra_tf.optimization.losses.MaskedBinaryCrossentropy`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from tests.keras_harness import run_serialization_test


def _numpy_loss(targets, logits):
    """Per-example masked BCE, straight from the definition, in float64."""
    logits = logits.astype(np.float64)
    prob = 1.0 / (1.0 + np.exp(-logits))
    valid = targets != -1
    y = np.where(valid, targets, 0.0)
    bce = -(y * np.log(prob) + (1.0 - y) * np.log1p(-prob))
    return np.where(valid, bce, 0.0).sum(axis=-1) / targets.shape[-1]


def _case(seed=0, shape=(6, 5)):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=shape).astype("float32")
    targets = rng.choice([-1.0, 0.0, 1.0], size=shape).astype("float32")
    return targets, logits


def test_matches_numpy_per_example_and_reduced():
    targets, logits = _case()
    expected = _numpy_loss(targets, logits)
    per_example = MaskedBinaryCrossentropy(reduction=None)(targets, logits)
    np.testing.assert_allclose(per_example, expected, rtol=1e-5)
    reduced = MaskedBinaryCrossentropy()(targets, logits)
    assert float(reduced) == pytest.approx(expected.mean(), rel=1e-5)
    summed = MaskedBinaryCrossentropy(reduction="sum")(targets, logits)
    assert float(summed) == pytest.approx(expected.sum(), rel=1e-5)


def test_sample_weight_is_standard():
    targets, logits = _case(1)
    weights = np.linspace(0.0, 1.0, targets.shape[0]).astype("float32")
    value = MaskedBinaryCrossentropy()(targets, logits, sample_weight=weights)
    expected = np.sum(_numpy_loss(targets, logits) * weights) / targets.shape[0]
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_equals_keras_bce_without_unknowns():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 3)).astype("float32")
    targets = rng.integers(0, 2, size=(4, 3)).astype("float32")
    ours = MaskedBinaryCrossentropy()(targets, logits)
    reference = keras.losses.BinaryCrossentropy(from_logits=True)(targets, logits)
    assert float(ours) == pytest.approx(float(reference), rel=1e-5)


def test_unknown_entries_give_zero_loss_and_gradient():
    targets, logits = _case(3)
    logits = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = MaskedBinaryCrossentropy()(targets, logits)
    gradient = tape.gradient(value, logits).numpy()
    unknown = targets == -1
    assert unknown.any()
    assert np.all(gradient[unknown] == 0.0)
    assert np.all(gradient[~unknown] != 0.0)
    # Changing the logits of unknown entries does not change the loss.
    moved = np.where(unknown, 100.0, logits.numpy()).astype("float32")
    assert float(MaskedBinaryCrossentropy()(targets, moved)) == pytest.approx(
        float(value)
    )


def test_all_unknown_gives_zero():
    value = MaskedBinaryCrossentropy()(
        -np.ones((2, 3), "float32"), np.ones((2, 3), "float32")
    )
    assert float(value) == 0.0


def test_extreme_logits_are_stable():
    logits = np.array([[100.0, -100.0, 100.0, -100.0]], dtype="float32")
    targets = np.array([[1.0, 0.0, 0.0, 1.0]], dtype="float32")
    value = float(MaskedBinaryCrossentropy()(targets, logits))
    assert np.isfinite(value)
    assert value == pytest.approx(200.0 / 4, rel=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_logits_are_computed_in_float32(dtype):
    targets, logits = _case(4)
    low = tf.cast(logits, dtype)
    value = MaskedBinaryCrossentropy()(targets, low)
    assert value.dtype == tf.float32
    rounded = tf.cast(low, tf.float32).numpy()
    assert float(value) == pytest.approx(_numpy_loss(targets, rounded).mean(), rel=1e-5)


def test_fit_step_with_bfloat16_model():
    targets, _ = _case(5, shape=(8, 3))
    x = np.random.default_rng(5).normal(size=(8, 4)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, dtype="mixed_bfloat16")]
    )
    model.compile(optimizer="sgd", loss=MaskedBinaryCrossentropy())
    history = model.fit(x, targets, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_config_round_trip():
    loss = MaskedBinaryCrossentropy(reduction="sum", name="bce")
    config = run_serialization_test(loss, {"reduction": "sum", "name": "bce"})
    assert config == {"reduction": "sum", "name": "bce"}
    revived = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(revived, MaskedBinaryCrossentropy)
    assert revived.get_config() == config


def test_bad_reduction_raises():
    with pytest.raises(ValueError, match="reduction"):
        MaskedBinaryCrossentropy(reduction="average")
