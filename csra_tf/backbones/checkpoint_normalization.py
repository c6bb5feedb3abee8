"""The pixel normalisation a transformer checkpoint expects.

Read from the weights when they say it (keras-hub's image converter, or a
Hugging Face `preprocessor_config.json`), else the family's known mean and
std, and turned into the model's first layer, which maps pixels in [0, 255]
to the backbone's input.
"""

from __future__ import annotations

import json
import os

import keras
import keras_hub
import numpy as np

from csra_tf.backbones import transformers_towers
from csra_tf.layers.pixel_normalization import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PixelNormalization,
    check_pixel_normalization,
    mode_of_affine,
)

IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
"""ImageNet's RGB mean and std (pixels in [0, 1]): DINOv2, DINOv3, Swin, DeiT."""

OPENAI_CLIP = (
    (0.48145466, 0.4578275, 0.40821073),
    (0.26862954, 0.26130258, 0.27577711),
)
"""OpenAI CLIP's RGB mean and std (pixels in [0, 1])."""

HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
"""Mean and std 0.5: pixels to [-1, 1], SigLIP and SigLIP2."""

_PREPROCESSOR_CONFIG = "preprocessor_config.json"
_IMAGE_CONVERTER_CONFIG = "image_converter.json"


def weights_normalization(weights: str | None, default):
    """The pixel normalisation a checkpoint expects, as `(scale, offset)`.

    Read from a keras-hub preset's image converter, else from a Hugging Face
    checkpoint's `preprocessor_config.json` (`image_mean`, `image_std`,
    `rescale_factor`), else `default`.

    Args:
        weights: None, a preset name, handle or preset directory.
        default: `(mean, std)` of the family's weights, for pixels in [0, 1].

    Returns:
        Per-channel `(scale, offset)`: the model's input is
        `pixels * scale + offset` for pixels in [0, 255].
    """
    if weights is not None:
        weights = os.fspath(weights)
        affine = _image_converter_affine(weights)
        if affine is not None:
            return affine
        if weights.startswith(transformers_towers.HF_SCHEME) or os.path.isdir(weights):
            preprocessor = _preprocessor_config(weights)
            if preprocessor is not None and "image_mean" in preprocessor:
                rescale = float(preprocessor.get("rescale_factor", 1 / 255.0))
                return _affine(
                    preprocessor["image_mean"], preprocessor["image_std"], rescale
                )
    return _affine(*default)


def normalization_layer(pixel_normalization: str | None, affine) -> keras.layers.Layer:
    """The layer mapping pixels in [0, 255] to the backbone's input.

    Args:
        pixel_normalization: a `PixelNormalization` mode chosen by the user,
            or None for the weights' own `affine`.
        affine: `(scale, offset)` per channel, from `weights_normalization`.

    Returns:
        `PixelNormalization(mode)` when the user chose a mode or `affine` is
        one of its modes; else a `keras.layers.Rescaling` with the per-channel
        scale and offset (e.g. CLIP's mean and std).
    """
    check_pixel_normalization(pixel_normalization)
    scale, offset = affine
    mode = pixel_normalization or mode_of_affine(
        scale,
        offset,
        scale_tolerance=(1e-3, 1e-8),
        offset_tolerance=(1e-5, 1e-3),
    )
    if mode is not None:
        return PixelNormalization(mode, name="pixel_normalization")
    return keras.layers.Rescaling(
        [float(s) for s in scale],
        [float(o) for o in offset],
        name="pixel_normalization",
    )


def _affine(mean, std, rescale: float = 1 / 255.0):
    mean = np.asarray(mean, "float64").ravel()
    std = np.asarray(std, "float64").ravel()
    return rescale / std, -mean / std


def _image_converter_affine(weights: str):
    """`(scale, offset)` of a keras-hub preset's image converter, if it has one."""
    if os.path.isdir(weights) and not os.path.exists(
        os.path.join(weights, _IMAGE_CONVERTER_CONFIG)
    ):
        return None
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(weights)
    except (ValueError, FileNotFoundError, KeyError):
        return None
    if converter is None or (converter.scale is None and converter.offset is None):
        return None
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return (
        np.broadcast_to(np.asarray(scale, "float64").ravel(), (3,)),
        np.broadcast_to(np.asarray(offset, "float64").ravel(), (3,)),
    )


def _preprocessor_config(weights: str) -> dict | None:
    """A transformers checkpoint's `preprocessor_config.json`, if it has one."""
    try:
        path = transformers_towers.checkpoint_file(weights, _PREPROCESSOR_CONFIG)
    except (OSError, ValueError):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)
