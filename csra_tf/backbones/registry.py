"""Backbones created by name: a small registry in the spirit of timm's."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras

from csra_tf.backbones.tiny import tiny_backbone

_REGISTRY: dict[str, Callable[..., keras.Model]] = {}

# Depth -> (blocks per stage, keras-cv block type); standard ResNet layouts.
_RESNET_LAYOUTS = {
    18: ((2, 2, 2, 2), "basic_block"),
    34: ((3, 4, 6, 3), "basic_block"),
    50: ((3, 4, 6, 3), "block"),
    101: ((3, 4, 23, 3), "block"),
    152: ((3, 8, 36, 3), "block"),
}


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
        name: a registered name (see `available()`), e.g. `"resnet101"`,
            `"resnet50_v2"` or `"tiny"`.
        weights: None for random initialisation, a keras-cv preset name with
            weights (e.g. `"resnet50_imagenet"`), or a local preset directory
            (one written by `keras_cv` `save_to_preset`).
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


def _keras_cv_resnet(depth: int, version: int):
    def factory(weights=None, image_size=448, **overrides):
        import keras_cv

        cls = (
            keras_cv.models.ResNetBackbone
            if version == 1
            else keras_cv.models.ResNetV2Backbone
        )
        input_shape = (image_size, image_size, 3)
        if weights is not None:
            if weights not in cls.presets and not os.path.isdir(weights):
                raise ValueError(
                    f"`weights` must be None, a preset of {cls.__name__} "
                    f"({sorted(cls.presets_with_weights)}) or a local preset "
                    f"directory. Received: weights={weights}"
                )
            model = cls.from_preset(weights, input_shape=input_shape, **overrides)
            if not model.get_config().get("include_rescaling", True):
                return _with_pixel_rescaling(model, input_shape)
            return model
        blocks, block_type = _RESNET_LAYOUTS[depth]
        config = dict(
            stackwise_filters=[64, 128, 256, 512],
            stackwise_blocks=list(blocks),
            stackwise_strides=[1, 2, 2, 2],
            block_type=block_type,
            include_rescaling=True,
            input_shape=input_shape,
        )
        config.update(overrides)
        return cls(**config)

    return factory


def _with_pixel_rescaling(backbone: keras.Model, input_shape) -> keras.Model:
    inputs = keras.Input(input_shape, name="pixels")
    features = backbone(keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs))
    return keras.Model(inputs, features, name=f"{backbone.name}_pixels")


for _depth in _RESNET_LAYOUTS:
    register(f"resnet{_depth}")(_keras_cv_resnet(_depth, version=1))
    register(f"resnet{_depth}_v2")(_keras_cv_resnet(_depth, version=2))
