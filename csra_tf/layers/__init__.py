"""Keras layers of csra-tf.

Public API:
    CSRA                   the multi-head class-specific residual-attention head
    ClassAttentionPooling  the attention term alone (paper Table 6, "spatial")
    AveragePoolingHead     the baseline: global average pooling + Dense
    AvgMaxClassScores      training-free `avg + lam * max` from a Dense (Fig. 1)
    PixelNormalization     pixels in [0, 255] -> the range a backbone expects
    DEFAULT_TEMPERATURES   the paper's temperatures per head count
    MAX_POOLING            the temperature meaning max pooling (inf)
"""

from csra_tf.config.choices import DEFAULT_TEMPERATURES, MAX_POOLING
from csra_tf.layers.attention_pooling import ClassAttentionPooling
from csra_tf.layers.average_pooling_head import AveragePoolingHead
from csra_tf.layers.avg_max_scores import AvgMaxClassScores
from csra_tf.layers.csra import CSRA, default_temperatures
from csra_tf.layers.pixel_normalization import PixelNormalization

__all__ = [
    "CSRA",
    "DEFAULT_TEMPERATURES",
    "MAX_POOLING",
    "AveragePoolingHead",
    "AvgMaxClassScores",
    "ClassAttentionPooling",
    "PixelNormalization",
    "default_temperatures",
]
