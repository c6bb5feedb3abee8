"""Pixel normalisation: raw RGB pixels in [0, 255] to the range a backbone expects."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from csra_tf.config.choices import PIXEL_NORMALIZATIONS
from csra_tf.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean of ImageNet, for pixels in [0, 1]."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation of ImageNet, for pixels in [0, 1]."""

MODE_AFFINE = {
    "unit": (np.full(3, 1 / 255.0), np.zeros(3)),
    "symmetric": (np.full(3, 1 / 127.5), np.full(3, -1.0)),
    "imagenet": (
        1 / (255.0 * np.asarray(IMAGENET_STD)),
        -np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD),
    ),
}
"""Each mode as per-channel `x * scale + offset` on pixels in [0, 255]."""


def check_pixel_normalization(
    value, name: str = "pixel_normalization", allow_none: bool = True
):
    """Refuses a value that is not a pixel-normalisation mode.

    Args:
        value: the value to check.
        name: the argument's name, for the message.
        allow_none: whether None (the weights' own scaling) is accepted.

    Returns:
        `value`.

    Raises:
        UserError: naming the argument and the value received.
    """
    if value in PIXEL_NORMALIZATIONS or (allow_none and value is None):
        return value
    allowed = "None or one of" if allow_none else "one of"
    raise UserError(
        f"`{name}` must be {allowed} {PIXEL_NORMALIZATIONS}. Received: {name}={value}"
    )


def mode_of_affine(
    scale,
    offset,
    scale_tolerance: tuple[float, float] = (1e-5, 1e-6),
    offset_tolerance: tuple[float, float] = (1e-5, 1e-6),
) -> str | None:
    """The mode whose `x * scale + offset` a preset's image converter applies.

    Args:
        scale: the converter's scale: a number or one per channel (None: 1).
        offset: the converter's offset: a number or one per channel (None: 0).
        scale_tolerance: `(rtol, atol)` of the scale comparison (`np.allclose`).
        offset_tolerance: `(rtol, atol)` of the offset comparison.

    Returns:
        `"unit"`, `"symmetric"` or `"imagenet"`, or None when none matches.
    """
    scale = _per_channel(1.0 if scale is None else scale)
    offset = _per_channel(0.0 if offset is None else offset)
    for mode, (mode_scale, mode_offset) in MODE_AFFINE.items():
        if np.allclose(scale, mode_scale, *scale_tolerance) and np.allclose(
            offset, mode_offset, *offset_tolerance
        ):
            return mode
    return None


def _per_channel(value) -> np.ndarray:
    value = np.asarray(ops.convert_to_numpy(value), dtype="float64").ravel()
    return np.broadcast_to(value, (3,))


@keras.saving.register_keras_serializable(package="csra_tf")
class PixelNormalization(keras.layers.Layer):
    """Maps RGB pixels in [0, 255] to the input range of a backbone's weights.

    The normalisation belongs to the weights: torchvision and timm ImageNet
    checkpoints expect `"imagenet"`, the CSRA authors' ResNets `"unit"` and
    ViTs `"symmetric"`. Putting it inside the model lets exported models take
    plain pixels.

    Modes:
        - `"unit"`: `x / 255`.
        - `"imagenet"`: `(x / 255 - mean) / std` per channel, with ImageNet's
          `IMAGENET_MEAN` and `IMAGENET_STD`.
        - `"symmetric"`: `x / 127.5 - 1`, i.e. [-1, 1].

    Args:
        mode: one of `PIXEL_NORMALIZATIONS`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called on pixels `(..., 3)` (the last axis RGB), a tensor of the same
        shape in the layer's compute dtype.

    Example:
    >>> import numpy as np
    >>> layer = PixelNormalization("symmetric")
    >>> np.asarray(layer(np.array([[0.0, 127.5, 255.0]], "float32"))).tolist()
    [[-1.0, 0.0, 1.0]]
    """

    def __init__(self, mode: str = "imagenet", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_pixel_normalization(mode, "mode", allow_none=False)

    def build(self, input_shape):
        if self.mode == "imagenet" and input_shape[-1] not in (None, 3):
            raise UserError(
                "ImageNet normalisation needs 3 (RGB) channels on the last axis. "
                f"Received: input_shape={input_shape}"
            )
        super().build(input_shape)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "symmetric":
            return x / 127.5 - 1.0
        mean = ops.convert_to_tensor(IMAGENET_MEAN, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(IMAGENET_STD, dtype=self.compute_dtype)
        return (x / 255.0 - mean) / std

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
