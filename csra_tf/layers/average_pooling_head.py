"""The baseline head: global average pooling followed by a linear classifier."""

from __future__ import annotations

import keras
from keras import ops

from csra_tf.layers.feature_checks import check_feature_shape, check_num_classes


@keras.saving.register_keras_serializable(package="csra_tf")
class AveragePoolingHead(keras.layers.Layer):
    """Global average pooling + Dense: `y = (mean_l x_l) W + b` (the GAP baseline).

    The baseline of the paper's tables (and CSRA with `lam = 0`, one head and a
    bias). Logits are computed in float32 whatever the dtype policy.
    `csra_tf.training_free.with_max_pooling` turns a trained one into
    `mean_l s[l] + lam * max_l s[l]` with `s[l] = x_l W + b`.

    Args:
        num_classes: number of classes `C`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input: a feature map `(B, h, w, d)` or a token sequence `(B, N, d)`.
    Output: logits `(B, C)` in float32, before the sigmoid.

    Example:
    >>> import numpy as np
    >>> head = AveragePoolingHead(num_classes=5)
    >>> head(np.ones((2, 4, 4, 8), "float32")).shape
    TensorShape([2, 5])
    """

    def __init__(self, num_classes: int, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.num_classes = check_num_classes(num_classes)

    def build(self, input_shape):
        depth = check_feature_shape(type(self).__name__, input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(depth, self.num_classes),
            initializer="glorot_uniform",
            dtype="float32",
            autocast=False,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(self.num_classes,),
            initializer="zeros",
            dtype="float32",
            autocast=False,
        )

    def call(self, features):
        features = ops.cast(features, "float32")
        axes = tuple(range(1, len(features.shape) - 1))
        pooled = ops.mean(features, axis=axes)
        return ops.matmul(pooled, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config
