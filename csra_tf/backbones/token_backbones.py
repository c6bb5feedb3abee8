"""What the transformer backbones of today (DINOv2/v3, Swin, SigLIP2, CLIP, DeiT) share.

Each family module (`dinov2`, `dinov3`, `swin`, `siglip2`, `clip`, `deit`)
wraps a keras-hub backbone so that it takes RGB pixels in [0, 255] and returns
the reference model's final, normalised patch tokens as a `(B, h, w, d)` map.
This module holds the common parts: the check of `weights`, loading a preset
and naming the family in the error when it holds another one, the pixel
normalisation the weights expect (read from the preset: keras-hub's image
converter or a Hugging Face `preprocessor_config.json`; else the family's
known values), the copy of a backbone at another input size, and the wrapper
model.

With `weights`, the architecture (width, depth, native size) comes from the
weights; the registered name picks the family and its architecture for
random initialisation only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import keras
import keras_hub
import numpy as np

from csra_tf.backbones import preset_loading
from csra_tf.backbones.position_embedding import interpolate_position_embeddings
from csra_tf.backbones.vit import TokensToFeatureMap
from csra_tf.errors import UserError
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

HANDLE_SCHEMES = ("hf://", "kaggle://", "gs://", "modelscope://")
_HF_SCHEME = "hf://"
_PREPROCESSOR_CONFIG = "preprocessor_config.json"
_IMAGE_CONVERTER_CONFIG = "image_converter.json"


def check_weights(name: str, weights, presets: Sequence[str]) -> None:
    """Refuses `weights` that are no preset name, handle or preset directory.

    Args:
        name: the backbone's registered name, for the message.
        weights: the value given.
        presets: the keras-hub preset names of the family.

    Raises:
        UserError: naming the value and what is accepted.
    """
    if weights is None:
        return
    if isinstance(weights, (str, os.PathLike)):
        weights = os.fspath(weights)
        if (
            weights in presets
            or weights.startswith(HANDLE_SCHEMES)
            or os.path.isdir(weights)
        ):
            return
    raise UserError(
        f"`weights` of {name} must be None, a keras-hub preset "
        f"({', '.join(sorted(presets))}), a handle "
        f"({', '.join(HANDLE_SCHEMES)}...) or a local preset directory. "
        f"Received: weights={weights}"
    )


def load_preset(cls, name: str, family: str, weights: str, **kwargs) -> keras.Model:
    """`cls.from_preset(weights)`, with a one-line error for another family.

    Args:
        cls: the keras-hub backbone class of the family.
        name: the registered name, for the message.
        family: the family's name as users know it (e.g. `"DINOv2"`).
        weights: a preset name, handle or preset directory.
        **kwargs: `from_preset` arguments (e.g. `image_shape`).

    Returns:
        The loaded backbone.

    Raises:
        UserError: when the preset holds another kind of model, or cannot be
            fetched (`csra_tf.backbones.preset_loading.from_preset`).
    """
    try:
        return preset_loading.from_preset(cls, os.fspath(weights), **kwargs)
    except UserError:
        raise
    except ValueError as error:
        text = str(error)
        if "not a subclass" in text or "no converter" in text:
            raise UserError(
                f"`weights` of {name} must hold a {family} model "
                f"({cls.__name__}); {_first_sentence(text)} "
                f"Received: weights={weights}"
            ) from error
        raise


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
        if weights.startswith(_HF_SCHEME) or os.path.isdir(weights):
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


def check_multiple(image_size, multiple: int, what: str) -> int:
    """Refuses an `image_size` that is not a positive multiple of `multiple`.

    Args:
        image_size: the requested side.
        multiple: what it must be a multiple of.
        what: what `multiple` is, for the message (e.g. "the patch size 14").

    Returns:
        `image_size` as an int.
    """
    if image_size is None or int(image_size) != image_size or image_size < 1:
        raise UserError(
            "These backbones need a fixed, positive input size. "
            f"Received: image_size={image_size}"
        )
    if image_size % multiple:
        raise UserError(
            f"`image_size` must be a multiple of {what} ({multiple}). "
            f"Received: image_size={image_size}"
        )
    return int(image_size)


def copy_at_size(
    source: keras.Model,
    config_changes: dict,
    resize: dict | None = None,
) -> keras.Model:
    """A copy of a backbone built with other arguments, weights copied over.

    Args:
        source: a built keras-hub backbone.
        config_changes: constructor arguments that differ (e.g. `image_shape`).
        resize: `{id(variable of source): function}` for variables whose
            shape changes: each function takes the source value and returns
            the target value (e.g. resized position embeddings), or None to
            keep the target's own (e.g. position ids).

    Returns:
        The new backbone, of the same class.
    """
    resize = resize or {}
    config = {**source.get_config(), **config_changes}
    target = type(source).from_config(config)
    for old, new in zip(source.weights, target.weights, strict=True):
        value = keras.ops.convert_to_numpy(old)
        if id(old) in resize:
            value = resize[id(old)](value)
            if value is None:
                continue
        new.assign(value)
    return target


def encoder_at_size(encoder, image_size: int, num_prefix_tokens: int):
    """A keras-hub SigLIP or CLIP vision encoder for `image_size` inputs.

    The position table (`embedding.position_embedding`, one row per token) is
    resized as transformers' `interpolate_pos_encoding` does it for these
    models: the prefix rows kept, the patch rows resized with
    `F.interpolate(..., size=grid, mode="bicubic", align_corners=False)`.

    Args:
        encoder: a `SigLIPVisionEncoder` or `CLIPVisionEncoder`.
        image_size: the new input side, a multiple of the patch size.
        num_prefix_tokens: rows before the patch rows (CLIP's class token: 1).

    Returns:
        `encoder` itself at its own size, else a resized copy.
    """
    if tuple(encoder.image_shape[:2]) == (image_size, image_size):
        return encoder
    grid = (image_size // encoder.patch_size,) * 2
    embedding = encoder.embedding

    def resized(table):
        return interpolate_position_embeddings(
            table, grid, num_prefix_tokens=num_prefix_tokens
        )

    return copy_at_size(
        encoder,
        {"image_shape": (image_size, image_size, 3)},
        resize={
            id(embedding.position_embedding.embeddings): resized,
            id(embedding.position_ids): lambda _: None,
        },
    )


def fill_position_ids(encoder) -> None:
    """Sets a SigLIP or CLIP encoder's position ids to `0, 1, ..., N - 1`.

    keras-hub 0.32's `CLIPVisionEmbedding` creates them as zeros and relies on
    its presets' stored weights to hold the right ones; a model built here
    (random initialisation, converted or resized) needs them set.

    Args:
        encoder: a `SigLIPVisionEncoder` or `CLIPVisionEncoder`.
    """
    ids = encoder.embedding.position_ids
    ids.assign(np.arange(ids.shape[-1]).reshape(ids.shape))


def token_map_model(
    tokens: Callable,
    image_size: int,
    normalization: keras.layers.Layer,
    grid: tuple[int, int],
    num_prefix_tokens: int,
    name: str,
    input_name: str | None = None,
) -> keras.Model:
    """Pixels -> normalisation -> tokens -> `(B, h, w, d)` map.

    Args:
        tokens: a model or layer mapping normalised images to tokens
            `(B, N, d)`.
        image_size: side of the square input.
        normalization: the pixel normalisation layer.
        grid: the patch grid `(h, w)`.
        num_prefix_tokens: class, distillation and register tokens before
            the patch tokens.
        name: the model's name.
        input_name: the key `tokens` takes its images under, when it takes a
            dict (keras-hub's functional backbones name their input).

    Returns:
        The `keras.Model`.
    """
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = normalization(inputs)
    if input_name is not None:
        x = {input_name: x}
    features = TokensToFeatureMap(
        grid, num_prefix_tokens=num_prefix_tokens, name="patch_map"
    )(tokens(x))
    return keras.Model(inputs, features, name=name)


def _first_sentence(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".") + "."


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
    if os.path.isdir(weights):
        path = os.path.join(weights, _PREPROCESSOR_CONFIG)
        if not os.path.isfile(path):
            return None
    else:
        import huggingface_hub

        try:
            path = huggingface_hub.hf_hub_download(
                repo_id=weights.removeprefix(_HF_SCHEME),
                filename=_PREPROCESSOR_CONFIG,
            )
        except (OSError, ValueError, huggingface_hub.errors.EntryNotFoundError):
            return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)
