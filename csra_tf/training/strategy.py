"""Choosing the tf.distribute strategy."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def create_strategy(devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """Returns the single-machine strategy for the local accelerators.

    Args:
        devices: explicit devices to mirror over (e.g. two logical CPUs in tests);
            None means all local GPUs.

    Returns:
        `tf.distribute.MirroredStrategy` over `devices`, or over all local GPUs
        when there are several; otherwise the default strategy (one device).
    """
    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(list(devices))
    return tf.distribute.get_strategy()
