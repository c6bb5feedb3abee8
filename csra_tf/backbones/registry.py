"""Backbones created by name: a small registry in the spirit of timm's."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras

from csra_tf.backbones.tiny import tiny_backbone

_REGISTRY: dict[str, Callable[..., keras.Model]] = {}


def register(name: str):
    """Decorator that registers a backbone factory under `name`.

    Args:
        name: the name `create` will accept.

    Returns:
        The decorator; the factory takes `(weights, image_size, **overrides)`.
    """

    def wrap(factory):
        if name in _REGISTRY:
            raise ValueError(f"Backbone already registered. Received: name={name}")
        _REGISTRY[name] = factory
        return factory

    return wrap


def available() -> list[str]:
    """Returns the sorted names `create` accepts."""
    return sorted(_REGISTRY)


def create(
    name: str,
    weights: str | None = None,
    image_size: int | None = 448,
    **overrides,
) -> keras.Model:
    """Creates a backbone whose output is its last feature map.

    Args:
        name: a registered name (see `available()`): `"resnet18"`...
            `"resnet152"` and `"resnet50_v2"` etc., `"mobilenet_v3_small"`,
            `"mobilenet_v3_large"`, `"efficientnet_b0"`...`"efficientnet_b3"`,
            `"efficientnet_v2_b0"`...`"efficientnet_v2_b3"` (keras-cv),
            `"vit_b16"`, `"vit_l16"` (keras-hub) or `"tiny"`.
        weights: None for random initialisation, a preset name with weights
            (e.g. `"resnet50_imagenet"`, `"vit_base_patch16_224_imagenet"`), or
            a local preset directory (one written by keras-cv's or keras-hub's
            `save_to_preset`; the tiny backbone takes a `model.weights.h5`).
        image_size: side of the square input images, or None for any size.
        **overrides: architecture arguments passed to the underlying
            constructor (e.g. `stackwise_filters` for a small test ResNet).

    Returns:
        A `keras.Model` taking RGB pixels in [0, 255], `(B, S, S, 3)`, and
        returning features `(B, h, w, d)`.

    Example:
    >>> backbone = create("tiny", image_size=32)
    >>> backbone.output_shape
    (None, 4, 4, 128)
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown backbone; choose from {available()}. Received: name={name}"
        )
    return _REGISTRY[name](weights=weights, image_size=image_size, **overrides)


@register("tiny")
def _tiny(weights=None, image_size=64, **overrides):
    model = tiny_backbone(image_size=image_size, **overrides)
    if weights is not None:
        path = (
            os.path.join(weights, "model.weights.h5")
            if os.path.isdir(weights)
            else weights
        )
        if not os.path.exists(path):
            raise ValueError(
                "The tiny backbone loads weights only from a local file or a "
                f"directory holding model.weights.h5. Received: weights={weights}"
            )
        model.load_weights(path)
    return model
