"""Training: config, optimiser, schedules, callbacks, strategy and the run itself."""

from csra_tf.training.callbacks import create_callbacks
from csra_tf.training.config import TrainConfig
from csra_tf.training.eval_lib import format_table, predict_probabilities, write_metrics
from csra_tf.training.losses import MaskedBinaryCrossentropy
from csra_tf.training.multi_worker import train_multi_worker
from csra_tf.training.optimizer import MultiRateSGD
from csra_tf.training.schedules import WarmupCosineDecay, WarmupStepDecay
from csra_tf.training.strategy import create_strategy
from csra_tf.training.train_lib import create_optimizer, create_schedule, train

__all__ = [
    "MaskedBinaryCrossentropy",
    "MultiRateSGD",
    "TrainConfig",
    "WarmupCosineDecay",
    "WarmupStepDecay",
    "create_callbacks",
    "create_optimizer",
    "create_schedule",
    "create_strategy",
    "format_table",
    "predict_probabilities",
    "train",
    "train_multi_worker",
    "write_metrics",
]
