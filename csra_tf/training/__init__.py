"""Training: optimiser, schedules, callbacks, strategy and the run itself.

Public API:
    train                 one training run from a `TrainConfig` (as csra-train)
    train_multi_worker    the same under MultiWorkerMirroredStrategy
    MaskedBinaryCrossentropy   BCE on logits, unknown (-1) labels masked
    MultiRateSGD          SGD with per-variable learning-rate multipliers
    WarmupCosineDecay, WarmupStepDecay   the learning-rate schedules
    create_optimizer, create_schedule, create_callbacks, create_strategy
"""

from csra_tf.training.callbacks import create_callbacks
from csra_tf.training.losses import MaskedBinaryCrossentropy
from csra_tf.training.multi_worker import train_multi_worker
from csra_tf.training.optimizer import MultiRateSGD
from csra_tf.training.schedules import WarmupCosineDecay, WarmupStepDecay
from csra_tf.training.strategy import create_strategy
from csra_tf.training.train_lib import create_optimizer, create_schedule, train

__all__ = [
    "MaskedBinaryCrossentropy",
    "MultiRateSGD",
    "WarmupCosineDecay",
    "WarmupStepDecay",
    "create_callbacks",
    "create_optimizer",
    "create_schedule",
    "create_strategy",
    "train",
    "train_multi_worker",
]
