"""Pixel normalisation: raw RGB pixels in [0, 255] to the range a backbone expects."""

from __future__ import annotations

import keras
from keras import ops

from csra_tf.config.choices import PIXEL_NORMALIZATIONS
from csra_tf.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean of ImageNet, for pixels in [0, 1]."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation of ImageNet, for pixels in [0, 1]."""


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
        if mode not in PIXEL_NORMALIZATIONS:
            raise UserError(
                f"`mode` must be one of {PIXEL_NORMALIZATIONS}. Received: mode={mode}"
            )
        self.mode = mode

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
