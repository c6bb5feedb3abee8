"""Training: optimiser, schedules, callbacks, strategy and the run itself.

Public API:
    train                 one training run from a `TrainConfig` (as csra-train)
    train_multi_worker    the same under MultiWorkerMirroredStrategy
    create_optimizer, create_schedule, create_callbacks, create_strategy

The loss, optimiser and schedules themselves live in `csra_tf.optimization`.
"""

from csra_tf.training.callbacks import create_callbacks
from csra_tf.training.multi_worker import train_multi_worker
from csra_tf.training.strategy import create_strategy
from csra_tf.training.train_lib import create_optimizer, create_schedule, train

__all__ = [
    "create_callbacks",
    "create_optimizer",
    "create_schedule",
    "create_strategy",
    "train",
    "train_multi_worker",
]
