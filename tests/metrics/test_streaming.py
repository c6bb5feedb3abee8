"""Tests for `csra_tf.metrics.MeanAveragePrecision`."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.metrics import MeanAveragePrecision, evaluate
from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from tests.keras_harness import run_model_saving_test, run_serialization_test

NUM_CLASSES = 4


def _data(seed, n=48, features=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = rng.choice([-1.0, 0.0, 1.0], size=(n, NUM_CLASSES), p=[0.2, 0.5, 0.3])
    y[0] = 1.0
    return x, y.astype("float32")


def _scores(seed, n=48):
    """Random scores `(n, NUM_CLASSES)` and targets with unknowns."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, NUM_CLASSES)).astype("float32")
    return scores, _data(seed, n=n)[1]


def _probabilities(model, x):
    """Float32 probabilities as the training library computes them."""
    logits = model.predict(x, verbose=0).astype(np.float64)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _model(jit_compile, capacity=None, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(NUM_CLASSES)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=MaskedBinaryCrossentropy(),
        metrics=[MeanAveragePrecision(NUM_CLASSES, capacity=capacity)],
        jit_compile=jit_compile,
    )
    return model


class _EvaluateEachEpoch(keras.callbacks.Callback):
    """Records `evaluate()["mAP"]` on the validation data after every epoch."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.reference = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        probs = _probabilities(self.model, self.x)
        self.reference.append(evaluate(probs, self.y)["mAP"])


def test_batches_with_ties_and_unknowns_match_evaluate():
    rng = np.random.default_rng(0)
    probs = np.round(rng.random((50, NUM_CLASSES)), 1).astype("float32")
    targets = rng.choice([-1.0, 0.0, 1.0], size=probs.shape).astype("float32")
    targets[0] = 1.0
    metric = MeanAveragePrecision(NUM_CLASSES, from_logits=False)
    for start in range(0, 50, 16):
        metric.update_state(targets[start : start + 16], probs[start : start + 16])
    assert float(metric.result()) == pytest.approx(
        evaluate(probs, targets)["mAP"], abs=1e-6
    )


def test_from_logits_ranks_float32_sigmoid():
    # Logits 20 and 30 both saturate to probability 1.0 in float32: a tie.
    logits = np.array([[30.0], [20.0], [0.0]], dtype="float32")
    targets = np.array([[0.0], [1.0], [1.0]], dtype="float32")
    metric = MeanAveragePrecision(1)
    metric.update_state(targets, logits)
    probs = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    expected = evaluate(probs, targets)["mAP"]
    assert expected == pytest.approx(7 / 12)  # The tie, not a strict ranking.
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "jit_compile, capacity",
    [("auto", None), (False, None), (False, 100), (True, 100)],
)
def test_fit_validation_and_evaluate_match_evaluate(jit_compile, capacity):
    x, y = _data(1)
    x_val, y_val = _data(2, n=40)
    model = _model(jit_compile, capacity=capacity)
    recorder = _EvaluateEachEpoch(x_val, y_val)
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        validation_data=(x_val, y_val),
        callbacks=[recorder],
        verbose=0,
    )
    # One value per epoch, each from that epoch's data only (reset between).
    np.testing.assert_allclose(
        history.history["val_mAP"], recorder.reference, atol=1e-6
    )
    assert len(set(np.round(recorder.reference, 6))) > 1  # The model did change.

    logs = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    assert logs["mAP"] == pytest.approx(
        evaluate(_probabilities(model, x), y)["mAP"], abs=1e-6
    )


def test_reset_state_forgets_earlier_batches():
    x_a, y_a = _scores(3)
    x_b, y_b = _scores(4)
    for capacity in (None, 64):
        metric = MeanAveragePrecision(NUM_CLASSES, from_logits=False, capacity=capacity)
        metric.update_state(y_a, x_a)
        metric.reset_state()
        metric.update_state(y_b, x_b)
        assert float(metric.result()) == pytest.approx(
            evaluate(x_b, y_b)["mAP"], abs=1e-6
        )


def test_empty_result_is_zero():
    assert float(MeanAveragePrecision(3).result()) == 0.0
    assert float(MeanAveragePrecision(3, capacity=5).result()) == 0.0


def test_capacity_overflow_gives_nan():
    x, y = _scores(5, n=10)
    metric = MeanAveragePrecision(NUM_CLASSES, from_logits=False, capacity=8)
    metric.update_state(y[:8], x[:8])
    assert not np.isnan(float(metric.result()))
    metric.update_state(y[8:], x[8:])
    assert np.isnan(float(metric.result()))


def test_growing_buffers_under_xla_raise_clear_error():
    x, y = _data(6)
    model = _model(jit_compile=True, capacity=None)
    with pytest.raises(ValueError, match="jit_compile=False"):
        model.evaluate(x, y, verbose=0)


def test_zero_sample_weight_masks_entries():
    x, y = _scores(7)
    weights = np.ones_like(y)
    weights[::3, 1] = 0.0
    metric = MeanAveragePrecision(NUM_CLASSES, from_logits=False)
    metric.update_state(y, x, sample_weight=weights)
    masked = np.where(weights == 0.0, -1.0, y)
    assert float(metric.result()) == pytest.approx(evaluate(x, masked)["mAP"], abs=1e-6)
    # Per-example weights of shape (B,).
    metric.reset_state()
    metric.update_state(y, x, sample_weight=np.arange(len(y)) % 2)
    masked = np.where((np.arange(len(y)) % 2 == 0)[:, None], -1.0, y)
    assert float(metric.result()) == pytest.approx(evaluate(x, masked)["mAP"], abs=1e-6)


def test_wrong_number_of_classes_raises():
    metric = MeanAveragePrecision(NUM_CLASSES)
    with pytest.raises(ValueError, match=r"Received: y_pred.shape=\(2, 3\)"):
        metric.update_state(np.zeros((2, NUM_CLASSES)), np.zeros((2, 3)))


def test_config_round_trip():
    init_kwargs = {
        "num_classes": 5,
        "from_logits": False,
        "capacity": 32,
        "name": "val_map",
    }
    config = run_serialization_test(MeanAveragePrecision(**init_kwargs), init_kwargs)
    assert config["from_logits"] is False
    revived = keras.metrics.deserialize(
        keras.metrics.serialize(MeanAveragePrecision(**init_kwargs))
    )
    assert isinstance(revived, MeanAveragePrecision)
    assert revived.get_config() == config


def test_saved_model_with_metric_reloads():
    x, y = _data(8)
    model = _model(jit_compile=False)
    model.fit(x, y, epochs=1, verbose=0)
    restored = run_model_saving_test(model, x)
    logs = restored.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["mAP"] == pytest.approx(
        evaluate(_probabilities(model, x), y)["mAP"], abs=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 2.0}, "num_classes"),
        ({"num_classes": 2, "capacity": 0}, "capacity"),
        ({"num_classes": 2, "capacity": True}, "capacity"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=f"Received: {match}"):
        MeanAveragePrecision(**kwargs)


def test_works_inside_tf_function():
    x, y = _scores(9)
    metric = MeanAveragePrecision(NUM_CLASSES, from_logits=False)

    @tf.function
    def step(targets, scores):
        metric.update_state(targets, scores)
        return metric.result()

    step(y[:20], x[:20])
    value = step(y[20:], x[20:])
    assert float(value) == pytest.approx(evaluate(x, y)["mAP"], abs=1e-6)


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from csra_tf.metrics import MeanAveragePrecision, evaluate
    from csra_tf.optimization.losses import MaskedBinaryCrossentropy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.choice([-1.0, 0.0, 1.0], size=(64, 4)).astype("float32")
    y[0] = 1.0
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for capacity in (None, 100):
        with strategy.scope():
            model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
            model.compile("sgd", MaskedBinaryCrossentropy(),
                          metrics=[MeanAveragePrecision(4, capacity=capacity)])
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                            validation_data=(x[:40], y[:40]))
        logits = model.predict(x[:40], verbose=0).astype(np.float64)
        probs = (1 / (1 + np.exp(-logits))).astype(np.float32)
        expected = evaluate(probs, y[:40])["mAP"]
        assert abs(history.history["val_mAP"][-1] - expected) < 1e-6, (
            history.history["val_mAP"], expected)
    print("OK")
    """
)


@pytest.mark.slow
def test_mirrored_strategy_two_replicas_matches_evaluate():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0 and "OK" in completed.stdout, completed.stderr[
        -3000:
    ]
