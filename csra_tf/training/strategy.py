"""Choosing the tf.distribute strategy."""

from __future__ import annotations

import tensorflow as tf


def create_strategy() -> tf.distribute.Strategy:
    """Returns MirroredStrategy over all local GPUs when there are several.

    Returns:
        `tf.distribute.MirroredStrategy` with more than one GPU, otherwise the
        default strategy (one device).
    """
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()
