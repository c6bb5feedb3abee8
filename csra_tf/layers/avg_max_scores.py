"""Average- plus max-pooled class scores from one linear classifier (paper Fig. 1).

Zhu & Wu, ICCV 2021, Fig. 1 and Table 1: a classifier `(W, b)` applied at every
location `l` of a feature map, `s[l] = x_l W + b`, scores
`mean_l s[l] + lam * max_l s[l]`; with `lam = 0` this is global average pooling
followed by the same classifier. `csra_tf.training_free.with_max_pooling` builds
this layer from a trained average-pooling head.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from csra_tf.errors import UserError
from csra_tf.layers.feature_checks import check_feature_shape

OUTPUT_MODES = ("scores", "pooled")
"""`"scores"`: `activation(avg + lam * max)`; `"pooled"`: both pooled scores."""


@keras.saving.register_keras_serializable(package="csra_tf")
class AvgMaxClassScores(keras.layers.Layer):
    """A linear classifier applied at every location, average + lam * max pooled.

    For features `x_l` (the locations of a map, or tokens) and kernel `W`, bias
    `b`: `s[l] = x_l W + b`, `y = activation(mean_l s[l] + lam * max_l s[l])`.
    Built from a trained `Dense` by `with_max_pooling`, which copies its kernel
    and bias in. Scores are computed in float32.

    Args:
        units: number of classes `C`.
        lam: weight of the max-pooled scores (0 gives average pooling).
        use_bias: whether the classifier has a bias `b`.
        activation: applied to the pooled scores (e.g. `"softmax"` for an
            ImageNet model, None for logits).
        output_mode: `"scores"` returns `activation(y)`, `(B, C)`; `"pooled"`
            returns the two pooled scores before activation, stacked as
            `(B, 2, C)` = `[mean_l s[l], max_l s[l]]`, so many `lam` can be
            tried from one pass over the data.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input: a feature map `(B, h, w, d)` or tokens `(B, N, d)`.

    Example:
    >>> import numpy as np
    >>> layer = AvgMaxClassScores(units=5, lam=0.2)
    >>> layer(np.ones((2, 7, 7, 16), "float32")).shape
    TensorShape([2, 5])
    """

    def __init__(
        self,
        units: int,
        lam: float = 0.0,
        use_bias: bool = True,
        activation=None,
        output_mode: str = "scores",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        # Scores are computed in float32: do not let Keras cast the weights.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if int(units) < 1:
            raise UserError(f"`units` must be >= 1. Received: units={units}")
        if not math.isfinite(lam) or lam < 0:
            raise UserError(f"`lam` must be finite and >= 0. Received: lam={lam}")
        if output_mode not in OUTPUT_MODES:
            raise UserError(
                f"`output_mode` must be one of {OUTPUT_MODES}. "
                f"Received: output_mode={output_mode}"
            )
        self.units = int(units)
        self.lam = float(lam)
        self.use_bias = use_bias
        self.activation = keras.activations.get(activation)
        self.output_mode = output_mode

    def build(self, input_shape):
        depth = check_feature_shape(type(self).__name__, input_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=(depth, self.units), dtype="float32", autocast=False
        )
        self.bias = (
            self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer="zeros",
                dtype="float32",
                autocast=False,
            )
            if self.use_bias
            else None
        )

    def call(self, features):
        features = ops.cast(features, "float32")
        depth = ops.shape(features)[-1]
        locations = ops.reshape(features, (ops.shape(features)[0], -1, depth))
        scores = ops.matmul(locations, self.kernel)
        if self.use_bias:
            scores = scores + self.bias
        average, maximum = ops.mean(scores, axis=1), ops.max(scores, axis=1)
        if self.output_mode == "pooled":
            return ops.stack([average, maximum], axis=1)
        return self.activation(average + self.lam * maximum)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "pooled":
            return (input_shape[0], 2, self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            lam=self.lam,
            use_bias=self.use_bias,
            activation=keras.activations.serialize(self.activation),
            output_mode=self.output_mode,
        )
        return config
