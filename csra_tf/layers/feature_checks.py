"""The argument checks the class-score layers share (one message each)."""

from __future__ import annotations

from csra_tf.errors import UserError


def check_num_classes(num_classes) -> int:
    """Checks a layer's class count.

    Args:
        num_classes: the value given.

    Returns:
        `num_classes`, a positive int.

    Raises:
        UserError: it is not a positive int.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes}"
        )
    return num_classes


def check_feature_shape(layer_name: str, input_shape) -> int:
    """Checks that a layer gets a feature map or tokens with a known depth.

    Args:
        layer_name: the layer's class name, for the message.
        input_shape: the shape given to `build`.

    Returns:
        The depth `d` (the last dimension).

    Raises:
        UserError: the shape is not `(B, h, w, d)` or `(B, N, d)`, or `d` is
            unknown.
    """
    if len(input_shape) not in (3, 4) or input_shape[-1] is None:
        raise UserError(
            f"{layer_name} takes a feature map (B, h, w, d) or tokens (B, N, d) "
            f"with a known d. Received: input_shape={input_shape}"
        )
    return int(input_shape[-1])
