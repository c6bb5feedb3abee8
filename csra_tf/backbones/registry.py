"""Backbones created by name: a small registry in the spirit of timm's."""

from __future__ import annotations

import os
from collections.abc import Callable

import keras

from csra_tf.backbones.tiny import tiny_backbone
from csra_tf.errors import UserError
from csra_tf.layers.pixel_normalization import check_pixel_normalization

_REGISTRY: dict[str, Callable[..., keras.Model]] = {}


def register(name: str):
    """Decorator that registers a backbone factory under `name`.

    Args:
        name: the name `create` will accept.

    Returns:
        The decorator. The factory takes `(weights, image_size, **overrides)`
        and, when `create` is given one, a `pixel_normalization` keyword.
    """

    def wrap(factory):
        if name in _REGISTRY:
            raise UserError(f"Backbone already registered. Received: name={name}")
        _REGISTRY[name] = factory
        return factory

    return wrap


def available() -> list[str]:
    """Returns the sorted names `create` accepts."""
    return sorted(_REGISTRY)


def check_name(name: str) -> None:
    """Refuses a name that is not registered, listing the registered ones.

    Args:
        name: a backbone name.

    Raises:
        UserError: when `name` is not registered.
    """
    if name not in _REGISTRY:
        raise UserError(
            f"Unknown backbone; choose from {', '.join(available())}. "
            f"Received: backbone={name}"
        )


def create(
    name: str,
    weights: str | None = None,
    image_size: int | None = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Creates a backbone whose output is its last feature map.

    Args:
        name: a registered name (see `available()`): `"resnet18"`...
            `"resnet152"` (torchvision's ResNet V1.5, keras-hub),
            `"resnet18_vd"`...`"resnet200_vd"`,
            `"keras_hub_efficientnet_b0"`...`"_b5"`, `"_lite0"`,
            `"keras_hub_mobilenet_v3_small_050"`, `"..._small_100"`,
            `"..._large_100"` (keras-hub), `"keras_cv_resnet18"`...
            `"keras_cv_resnet152"` and `"keras_cv_resnet50_v2"` etc.,
            `"mobilenet_v3_small"`, `"mobilenet_v3_large"`,
            `"efficientnet_b0"`...`"efficientnet_b3"`,
            `"efficientnet_v2_b0"`...`"efficientnet_v2_b3"` (keras-cv),
            `"vit_b16"`, `"vit_l16"` (keras-hub), or the test backbones
            `"resnet_tiny"` and `"tiny"`.
        weights: None for random initialisation (never downloads), a preset
            name of the backbone's library (e.g. `"resnet_101_imagenet"`,
            `"vit_base_patch16_224_imagenet"`, keras-cv's
            `"resnet50_imagenet"` for `"keras_cv_resnet50"`), an `hf://`
            handle keras-hub loads (e.g. `"hf://timm/resnet101.tv_in1k"`), a
            local preset directory (written by `save_to_preset`; the tiny
            backbone takes a `model.weights.h5`), or for the torchvision
            ResNets a PyTorch `.pth` state dict.
        image_size: side of the square input images, or None for any size.
        pixel_normalization: how the model maps pixels in [0, 255] to its
            input range, one of `PIXEL_NORMALIZATIONS` (`"unit"`,
            `"imagenet"`, `"symmetric"`); None (default) uses the weights'
            own: `"imagenet"` for the keras-hub CNNs, `"unit"` for keras-cv
            and `tiny`, `"symmetric"` for ViTs, or what a preset's image
            converter says.
        **overrides: architecture arguments passed to the underlying
            constructor (e.g. `stackwise_num_blocks` for a small test ResNet).

    Returns:
        A `keras.Model` taking RGB pixels in [0, 255], `(B, S, S, 3)`, and
        returning features `(B, h, w, d)`; the pixel normalisation is a layer
        inside it.

    Raises:
        UserError: for an unknown name or wrong weights, and when a preset or
            handle cannot be fetched (no network, `HF_HUB_OFFLINE` with an
            empty cache, a wrong handle): one line with what was tried and how
            to provide the weights offline (`backbones.preset_loading.from_preset`).

    Example:
    >>> backbone = create("tiny", image_size=32)
    >>> backbone.output_shape
    (None, 4, 4, 128)
    """
    check_name(name)
    if pixel_normalization is not None:
        check_pixel_normalization(pixel_normalization)
        overrides["pixel_normalization"] = pixel_normalization
    return _REGISTRY[name](weights=weights, image_size=image_size, **overrides)


@register("tiny")
def _tiny(weights=None, image_size=64, pixel_normalization=None, **overrides):
    # The tiny backbone rescales pixels to [0, 1] itself.
    if pixel_normalization not in (None, "unit"):
        raise UserError(
            'The tiny backbone normalises pixels with "unit" only. '
            f"Received: pixel_normalization={pixel_normalization}"
        )
    model = tiny_backbone(image_size=image_size, **overrides)
    if weights is not None:
        path = (
            os.path.join(weights, "model.weights.h5")
            if os.path.isdir(weights)
            else weights
        )
        if not os.path.exists(path):
            raise UserError(
                "The tiny backbone loads weights only from a local file or a "
                f"directory holding model.weights.h5. Received: weights={weights}"
            )
        model.load_weights(path)
    return model
