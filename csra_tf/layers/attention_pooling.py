"""Class-specific attention pooling alone: CSRA without the average term.

The "spatial only" row of Table 6 in Zhu & Wu, "Residual Attention: A Simple but
Effective Method for Multi-Label Recognition", ICCV 2021: the class feature is
`f_c = a_c = sum_l softmax_l(T x_l . m_c) x_l` instead of CSRA's `g + lam a_c`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from csra_tf.layers.csra import CSRA


@keras.saving.register_keras_serializable(package="csra_tf")
class ClassAttentionPooling(CSRA):
    """Class-specific spatial attention pooling (CSRA's attention term only).

    Kernels, normalisation, temperatures and `attention()` are exactly CSRA's
    (one `(d, C)` kernel per head, no bias; `float("inf")` is max pooling); only
    the logit differs. Per head with scores `s[l, c] = x_l . m_c / ||m_c||`,

        y_c = sum_l softmax_l(T * s[:, c]) * s[l, c]     (max_l s[l, c] if T = inf),

    with no class-agnostic average and no `lambda` (the paper's `f = a`). The
    heads' logits are summed.

    Args:
        num_classes: number of classes `C`.
        num_heads: number of heads `H`.
        temperatures: one temperature per head, `float("inf")` for max pooling.
            Defaults to the paper's sequence for 1, 2, 4, 6 or 8 heads.
        normalize: divide each class's kernel column by its L2 norm.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input: a feature map `(B, h, w, d)` or a token sequence `(B, N, d)`.
    Output: logits `(B, C)` in float32, before the sigmoid.

    Example:
    >>> import numpy as np
    >>> head = ClassAttentionPooling(num_classes=20)
    >>> head(np.ones((2, 7, 7, 64), "float32")).shape
    TensorShape([2, 20])
    """

    def __init__(
        self,
        num_classes: int,
        num_heads: int = 1,
        temperatures: Sequence[float] | None = None,
        normalize: bool = True,
        **kwargs,
    ):
        super().__init__(
            num_classes,
            num_heads=num_heads,
            lam=1.0,
            temperatures=temperatures,
            normalize=normalize,
            **kwargs,
        )

    def call(self, inputs):
        return self._attention_logits(self.class_scores(inputs))

    def get_config(self):
        config = super().get_config()
        del config["lam"]
        return config
