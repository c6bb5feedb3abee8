"""Binary cross-entropy on logits, unknown (-1) labels ignored (docs/concepts.md)."""

from __future__ import annotations

import keras
from keras import ops

_UNKNOWN = -1.0


@keras.saving.register_keras_serializable(package="csra_tf")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Sigmoid binary cross-entropy on logits, with `-1` targets masked out.

    Per element, with logit x and target y in {0, 1}:
    `max(x, 0) - x * y + log(1 + exp(-|x|))`, the numerically stable form of
    `-y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x))`. Elements whose target is
    `-1` (unknown) contribute zero loss and zero gradient. The per-example loss
    is the sum over the valid classes divided by the number of classes C, so
    Keras's batch reduction (`reduction`) and its scaling under a distribution
    strategy apply as for any other loss. Everything is computed in float32,
    also when the logits are float16 or bfloat16 (mixed precision).

    Args:
        reduction: Keras reduction over the batch, e.g. `"sum_over_batch_size"`.
        name: Name of the loss.

    Example:

    >>> loss = MaskedBinaryCrossentropy()
    >>> value = loss([[1.0, -1.0]], [[0.0, 5.0]])
    >>> round(float(value), 4)  # log(2) / 2: the second class is unknown.
    0.3466
    """

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "masked_binary_crossentropy",
    ):
        super().__init__(name=name, reduction=reduction, dtype="float32")

    def call(self, y_true, y_pred):
        """Per-example masked loss.

        Args:
            y_true: `(B, C)` targets, `1` present, `0` absent, `-1` unknown.
            y_pred: `(B, C)` logits.

        Returns:
            `(B,)` float32 losses.
        """
        logits = ops.cast(y_pred, "float32")
        targets = ops.cast(y_true, "float32")
        valid = ops.not_equal(targets, _UNKNOWN)
        targets = ops.where(valid, targets, ops.zeros_like(targets))
        elementwise = (
            ops.maximum(logits, 0.0)
            - logits * targets
            + ops.log1p(ops.exp(-ops.abs(logits)))
        )
        elementwise = ops.where(valid, elementwise, ops.zeros_like(elementwise))
        num_classes = ops.cast(ops.shape(logits)[-1], "float32")
        return ops.sum(elementwise, axis=-1) / num_classes

    def get_config(self) -> dict:
        """Returns the constructor arguments.

        Returns:
            A dict that `from_config` turns back into an equal loss.
        """
        return {"reduction": self.reduction, "name": self.name}
