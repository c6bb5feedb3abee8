"""Learning-rate schedules against their closed forms."""

import math

import keras
import pytest

from csra_tf.optimization import WarmupCosineDecay, WarmupStepDecay
from tests.keras_harness import run_serialization_test


def test_step_decay_warmup_then_tenfold_drops():
    schedule = WarmupStepDecay(0.1, warmup_steps=10, decay_steps=40, decay_rate=0.1)
    expected = {0: 0.01, 4: 0.05, 9: 0.1, 39: 0.1, 40: 0.01, 79: 0.01, 80: 0.001}
    for step, lr in expected.items():
        assert float(schedule(step)) == pytest.approx(lr, rel=1e-5)


def test_cosine_decay_closed_form():
    schedule = WarmupCosineDecay(0.2, warmup_steps=5, total_steps=105)
    assert float(schedule(0)) == pytest.approx(0.2 / 5, rel=1e-5)
    for step in (5, 30, 55, 104):
        expected = 0.2 * 0.5 * (1 + math.cos(math.pi * (step - 5) / 100))
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize(
    "cls, init_kwargs",
    [
        (
            WarmupStepDecay,
            {"base_lr": 0.1, "warmup_steps": 2, "decay_steps": 8, "decay_rate": 0.5},
        ),
        (WarmupCosineDecay, {"base_lr": 0.1, "warmup_steps": 2, "total_steps": 8}),
    ],
)
def test_schedules_serialise(cls, init_kwargs):
    schedule = cls(**init_kwargs)
    run_serialization_test(schedule, init_kwargs)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert float(restored(5)) == pytest.approx(float(schedule(5)))


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="Received"):
        WarmupCosineDecay(0.1, warmup_steps=10, total_steps=10)
    with pytest.raises(ValueError, match="Received"):
        WarmupStepDecay(0.1, 0, 10, decay_rate=0)
