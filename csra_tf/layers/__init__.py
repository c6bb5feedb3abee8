"""Keras layers of csra-tf."""

from csra_tf.layers.attention_pooling import ClassAttentionPooling
from csra_tf.layers.csra import (
    CSRA,
    DEFAULT_TEMPERATURES,
    MAX_POOLING,
    default_temperatures,
)

__all__ = [
    "CSRA",
    "DEFAULT_TEMPERATURES",
    "MAX_POOLING",
    "ClassAttentionPooling",
    "default_temperatures",
]
