"""Learning-rate schedules: linear warm-up, then step or cosine decay."""

from __future__ import annotations

import math

import keras
from keras import ops

from csra_tf.errors import UserError


def _warmup_factor(step, warmup_steps):
    if warmup_steps <= 0:
        return 1.0
    return ops.minimum(1.0, (step + 1.0) / float(warmup_steps))


@keras.saving.register_keras_serializable(package="csra_tf")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `base_lr`, then multiply by `decay_rate` every `decay_steps`.

    `lr(step) = base_lr * min(1, (step + 1) / warmup_steps)
    * decay_rate ** floor(step / decay_steps)`; decay is counted from step 0 as in
    the paper's recipe (e.g. warm-up 2 epochs, x0.1 every 4 epochs).

    Args:
        base_lr: peak learning rate.
        warmup_steps: steps of linear warm-up (0 for none).
        decay_steps: steps between decays (0 for no decay).
        decay_rate: multiplicative factor at each decay.
    """

    def __init__(
        self, base_lr: float, warmup_steps: int, decay_steps: int, decay_rate=0.1
    ):
        if (
            base_lr <= 0
            or warmup_steps < 0
            or decay_steps < 0
            or not 0 < decay_rate <= 1
        ):
            raise UserError(
                "Need base_lr > 0, warmup_steps >= 0, decay_steps >= 0, "
                f"0 < decay_rate <= 1. Received: base_lr={base_lr}, "
                f"warmup_steps={warmup_steps}, decay_steps={decay_steps}, "
                f"decay_rate={decay_rate}"
            )
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        lr = self.base_lr * _warmup_factor(step, self.warmup_steps)
        if self.decay_steps > 0:
            lr = lr * ops.power(self.decay_rate, ops.floor(step / self.decay_steps))
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
        }


@keras.saving.register_keras_serializable(package="csra_tf")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `base_lr`, then cosine decay to 0 at `total_steps`.

    Args:
        base_lr: peak learning rate.
        warmup_steps: steps of linear warm-up (0 for none).
        total_steps: total training steps (> warmup_steps).
    """

    def __init__(self, base_lr: float, warmup_steps: int, total_steps: int):
        if base_lr <= 0 or warmup_steps < 0 or total_steps <= warmup_steps:
            raise UserError(
                "Need base_lr > 0 and 0 <= warmup_steps < total_steps. "
                f"Received: base_lr={base_lr}, warmup_steps={warmup_steps}, "
                f"total_steps={total_steps}"
            )
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.clip(
            (step - self.warmup_steps) / float(self.total_steps - self.warmup_steps),
            0.0,
            1.0,
        )
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        return self.base_lr * _warmup_factor(step, self.warmup_steps) * cosine

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }
