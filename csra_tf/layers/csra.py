"""Class-specific residual attention (CSRA) head.

Zhu & Wu, "Residual Attention: A Simple but Effective Method for Multi-Label
Recognition", ICCV 2021, Eq. 2-6 (one head) and Eq. 13 (several heads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

from csra_tf.config.choices import DEFAULT_TEMPERATURES
from csra_tf.errors import UserError
from csra_tf.layers.feature_checks import check_feature_shape, check_num_classes


def default_temperatures(num_heads: int) -> tuple[float, ...]:
    """Returns the paper's temperatures for `num_heads` heads.

    Args:
        num_heads: number of attention heads (1, 2, 4, 6 or 8).

    Returns:
        A tuple of `num_heads` temperatures; `float("inf")` means max pooling.
    """
    if num_heads not in DEFAULT_TEMPERATURES:
        raise UserError(
            "Default temperatures exist only for num_heads in "
            f"{sorted(DEFAULT_TEMPERATURES)}; give one temperature per head "
            "(`temperatures`, flag --temperatures; inf for max pooling). "
            f"Received: num_heads={num_heads}"
        )
    return DEFAULT_TEMPERATURES[num_heads]


@keras.saving.register_keras_serializable(package="csra_tf")
class CSRA(keras.layers.Layer):
    """Class-specific residual attention head (multi-head).

    For every head with classifier kernel `m` (one column `m_c` per class) and
    temperature `T`, the class scores at each location `l` are
    `s[l, c] = x_l . m_c / ||m_c||` (no division when `normalize=False`) and the
    head's logit is

        y_c = mean_l s[l, c] + lam * sum_l softmax_l(T * s[:, c]) * s[l, c],

    with the attention term replaced by `max_l s[l, c]` when `T = inf`
    (Eq. 2-6 of the paper). The logits of all heads are summed (Eq. 13). All
    heads' scores come from one matmul against the concatenated kernels, and
    are computed in float32 whatever the layer's dtype policy.

    Args:
        num_classes: number of classes `C`.
        num_heads: number of heads `H`.
        lam: weight `lambda` of the attention term (`0` gives average pooling).
        temperatures: one temperature per head, `float("inf")` for max pooling.
            Defaults to the paper's sequence for 1, 2, 4, 6 or 8 heads.
        normalize: divide each class's kernel column by its L2 norm.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input: a feature map `(B, h, w, d)` or a token sequence `(B, N, d)`.
    Output: logits `(B, C)` in float32, before the sigmoid.

    Example:
    >>> import numpy as np
    >>> head = CSRA(num_classes=20, num_heads=2, lam=0.1)
    >>> head(np.ones((2, 7, 7, 64), "float32")).shape
    TensorShape([2, 20])
    """

    def __init__(
        self,
        num_classes: int,
        num_heads: int = 1,
        lam: float = 0.1,
        temperatures: Sequence[float] | None = None,
        normalize: bool = True,
        **kwargs,
    ):
        # Scores are computed in float32: do not let Keras cast the kernels.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        check_num_classes(num_classes)
        if not isinstance(num_heads, int) or num_heads < 1:
            raise UserError(
                f"`num_heads` must be a positive int. Received: num_heads={num_heads}"
            )
        if not math.isfinite(lam) or lam < 0:
            raise UserError(f"`lam` must be a finite number >= 0. Received: lam={lam}")
        if temperatures is None:
            temperatures = default_temperatures(num_heads)
        temperatures = tuple(float(t) for t in temperatures)
        if len(temperatures) != num_heads:
            raise UserError(
                "`temperatures` needs one value per head "
                f"(num_heads={num_heads}). Received: temperatures={temperatures}"
            )
        if any(not t > 0 for t in temperatures):
            raise UserError(
                "Every temperature must be > 0 (inf for max pooling). "
                f"Received: temperatures={temperatures}"
            )
        self.num_classes = num_classes
        self.num_heads = num_heads
        self.lam = float(lam)
        self.temperatures = temperatures
        self.normalize = bool(normalize)
        self.kernels = []

    def build(self, input_shape):
        dim = check_feature_shape(type(self).__name__, input_shape)
        self.kernels = [
            self.add_weight(
                name=f"kernel_{i}",
                shape=(dim, self.num_classes),
                initializer=keras.initializers.RandomNormal(stddev=0.01),
                dtype="float32",
                autocast=False,
            )
            for i in range(self.num_heads)
        ]

    def class_scores(self, inputs):
        """Per-location class scores `s[l, c]` of every head.

        Args:
            inputs: features `(B, h, w, d)` or `(B, N, d)`.

        Returns:
            float32 scores `(B, L, H, C)` with `L = h * w` (or `N`).
        """
        x = ops.cast(inputs, "float32")
        x = ops.reshape(x, (ops.shape(x)[0], -1, ops.shape(x)[-1]))
        kernel = ops.concatenate([k.value for k in self.kernels], 1)
        if self.normalize:
            kernel = kernel / ops.sqrt(ops.sum(ops.square(kernel), 0, keepdims=True))
        scores = ops.matmul(x, kernel)  # (B, L, H * C): one matmul for all heads.
        return ops.reshape(
            scores, (ops.shape(x)[0], -1, self.num_heads, self.num_classes)
        )

    @staticmethod
    def _softmax_over_locations(scores, temperature):
        # Written out (rather than ops.softmax on axis 1) so that TFLite gets
        # builtin reduce/exp ops without transposes.
        logits = temperature * scores
        weights = ops.exp(logits - ops.max(logits, axis=1, keepdims=True))
        return weights / ops.sum(weights, axis=1, keepdims=True)

    def call(self, inputs):
        scores = self.class_scores(inputs)
        logits = ops.sum(ops.mean(scores, axis=1), axis=1)  # (B, C), all heads.
        if self.lam == 0:
            return logits
        return logits + self.lam * self._attention_logits(scores)

    def _attention_logits(self, scores):
        """`sum_h sum_l softmax_l(T_h * s[:, h, c]) * s[l, h, c]` (max for T = inf).

        Args:
            scores: float32 `(B, L, H, C)` from `class_scores`.

        Returns:
            float32 `(B, C)`: the attention terms of all heads, summed.
        """
        finite = [h for h, t in enumerate(self.temperatures) if math.isfinite(t)]
        pooled = []
        if finite:
            soft_scores = (
                scores if len(finite) == self.num_heads else ops.take(scores, finite, 2)
            )
            temperature = ops.reshape(
                ops.convert_to_tensor(
                    [self.temperatures[h] for h in finite], dtype="float32"
                ),
                (1, 1, len(finite), 1),
            )
            weights = self._softmax_over_locations(soft_scores, temperature)
            pooled.append(ops.sum(ops.sum(weights * soft_scores, axis=1), axis=1))
        max_heads = [h for h, t in enumerate(self.temperatures) if not math.isfinite(t)]
        if max_heads:
            max_scores = (
                scores
                if len(max_heads) == self.num_heads
                else ops.take(scores, max_heads, 2)
            )
            pooled.append(ops.sum(ops.max(max_scores, axis=1), axis=1))
        return pooled[0] if len(pooled) == 1 else pooled[0] + pooled[1]

    def attention(self, inputs):
        """Per-class spatial attention of the first head (softmax over locations).

        For a first head with `T = inf` the attention is one-hot at the maximum
        (split evenly between tied maxima).

        Args:
            inputs: features `(B, h, w, d)` or tokens `(B, N, d)`.

        Returns:
            float32 attention `(B, h, w, C)` (or `(B, N, C)` for tokens) that sums
            to 1 over locations for each class.
        """
        if not self.built:
            self.build(tuple(inputs.shape))
        scores = self.class_scores(inputs)[:, :, 0, :]  # (B, L, C)
        temperature = self.temperatures[0]
        if math.isfinite(temperature):
            weights = self._softmax_over_locations(scores, temperature)
        else:
            is_max = ops.cast(
                scores >= ops.max(scores, axis=1, keepdims=True), "float32"
            )
            weights = is_max / ops.sum(is_max, axis=1, keepdims=True)
        spatial = tuple(ops.shape(inputs)[1:-1])
        return ops.reshape(weights, (ops.shape(inputs)[0], *spatial, self.num_classes))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], self.num_classes), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "num_heads": self.num_heads,
                "lam": self.lam,
                "temperatures": list(self.temperatures),
                "normalize": self.normalize,
            }
        )
        return config
