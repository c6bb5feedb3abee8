"""What the transformer backbones of today (DINOv2/v3, Swin, SigLIP2, CLIP, DeiT) share.

Each family module (`dinov2`, `dinov3`, `swin`, `siglip2`, `clip`, `deit`)
wraps a keras-hub backbone so that it takes RGB pixels in [0, 255] and returns
the reference model's final, normalised patch tokens as a `(B, h, w, d)` map.
This module holds the common parts: the check of `weights`, loading a preset
and naming the family in the error when it holds another one, building a
family's backbone at random or from a preset at a given input size, the copy
of a backbone at another input size (position table resized), the wrapper
model with the pixel normalisation the weights expect
(`csra_tf.backbones.checkpoint_normalization`, whose names are also here),
and the registration of a family's names.

With `weights`, the architecture (width, depth, native size) comes from the
weights; the registered name picks the family and its architecture for
random initialisation only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from csra_tf.backbones import preset_loading, transformers_towers
from csra_tf.backbones.checkpoint_normalization import HALF as HALF
from csra_tf.backbones.checkpoint_normalization import IMAGENET as IMAGENET
from csra_tf.backbones.checkpoint_normalization import OPENAI_CLIP as OPENAI_CLIP
from csra_tf.backbones.checkpoint_normalization import (
    normalization_layer as normalization_layer,
)
from csra_tf.backbones.checkpoint_normalization import (
    weights_normalization as weights_normalization,
)
from csra_tf.backbones.position_embedding import interpolate_position_embeddings
from csra_tf.backbones.registry import register
from csra_tf.backbones.vit import TokensToFeatureMap
from csra_tf.errors import UserError

HANDLE_SCHEMES = (transformers_towers.HF_SCHEME, "kaggle://", "gs://", "modelscope://")
PATCH_SIZE = "the patch size"
"""How `check_multiple` names the patch size in its message."""


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


def image_shape(image_size: int) -> tuple[int, int, int]:
    """`(image_size, image_size, 3)`: the square RGB input of a backbone."""
    return (image_size, image_size, 3)


def random_backbone(
    cls,
    config: dict,
    image_size,
    multiple: int | None = None,
    what: str = PATCH_SIZE,
    shape_arguments: Sequence[str] = ("image_shape",),
):
    """`cls(**config)` at random initialisation, for `image_size` inputs.

    Args:
        cls: the keras-hub class.
        config: its constructor arguments, without the input shape.
        image_size: the requested side.
        multiple: what `image_size` must be a multiple of; None for
            `config["patch_size"]`.
        what: what `multiple` is, for the message.
        shape_arguments: the constructor arguments that take the input shape.

    Returns:
        `(model, image_size)`, the side checked and made an int.
    """
    multiple = config["patch_size"] if multiple is None else multiple
    image_size = check_multiple(image_size, multiple, what)
    shapes = dict.fromkeys(shape_arguments, image_shape(image_size))
    return cls(**config, **shapes), image_size


def preset_at_size(
    cls,
    name: str,
    family: str,
    weights: str,
    image_size,
    overrides: Mapping,
    multiple: Callable[[keras.Model], int],
    what: str = PATCH_SIZE,
):
    """A preset built directly for `image_size` inputs (nothing to resize).

    For families without a learned position table (DINOv3's rotary
    embeddings, Swin's relative biases), whose weights serve any size.

    Args:
        cls: the keras-hub backbone class.
        name: the registered name, for messages.
        family: the family's name as users know it.
        weights: a preset name, handle or preset directory.
        image_size: the requested side.
        overrides: more `from_preset` arguments.
        multiple: what `image_size` must be a multiple of, from the backbone.
        what: what `multiple` is, for the message.

    Returns:
        `(backbone, image_size)`, the side checked and made an int.
    """
    image_size = check_multiple(image_size, 1, "one")
    backbone = load_preset(
        cls, name, family, weights, image_shape=image_shape(image_size), **overrides
    )
    check_multiple(image_size, multiple(backbone), what)
    return backbone, image_size


def resized_copy(
    source: keras.Model,
    image_size: int,
    patch: int,
    tables: Sequence[keras.Variable],
    num_prefix_tokens: int,
    dropped: Sequence[keras.Variable] = (),
) -> keras.Model:
    """`source` for `image_size` inputs, its position tables resized as PyTorch.

    The tables (one row per token) are resized as transformers'
    `interpolate_pos_encoding` does it for ViT-like models: the prefix rows
    kept, the patch rows resized with `F.interpolate(..., size=grid,
    mode="bicubic", align_corners=False)`.

    Args:
        source: a built keras-hub model with an `image_shape` argument.
        image_size: the new input side, a multiple of `patch`.
        patch: the patch size.
        tables: the position tables of `source`.
        num_prefix_tokens: rows before the patch rows.
        dropped: variables of `source` whose copy keeps its own value (e.g.
            position ids).

    Returns:
        `source` itself at its own size, else a resized copy.
    """
    if tuple(source.image_shape[:2]) == (image_size, image_size):
        return source
    grid = (image_size // patch,) * 2

    def resized(table):
        return interpolate_position_embeddings(
            table, grid, num_prefix_tokens=num_prefix_tokens
        )

    resize = {id(v): resized for v in tables}
    resize.update({id(v): lambda _: None for v in dropped})
    return copy_at_size(source, {"image_shape": image_shape(image_size)}, resize)


def encoder_at_size(encoder, image_size: int, num_prefix_tokens: int):
    """A keras-hub SigLIP or CLIP vision encoder for `image_size` inputs.

    The position table (`embedding.position_embedding`) is resized as in
    `resized_copy`; the position ids are set afresh (`fill_position_ids`).

    Args:
        encoder: a `SigLIPVisionEncoder` or `CLIPVisionEncoder`.
        image_size: the new input side, a multiple of the patch size.
        num_prefix_tokens: rows before the patch rows (CLIP's class token: 1).

    Returns:
        `encoder` itself at its own size, else a resized copy.
    """
    embedding = encoder.embedding
    return resized_copy(
        encoder,
        image_size,
        encoder.patch_size,
        [embedding.position_embedding.embeddings],
        num_prefix_tokens,
        dropped=[embedding.position_ids],
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


def family_model(
    name: str,
    tokens: Callable,
    image_size: int,
    stride: int,
    num_prefix_tokens: int,
    weights,
    pixel_normalization: str | None,
    default_normalization,
    input_name: str | None = None,
) -> keras.Model:
    """A family's registered model: `token_map_model` with the weights' normalisation.

    Args:
        name: the registered name; the model is `f"{name}_backbone"`.
        tokens: the model or layer mapping normalised images to tokens.
        image_size: side of the square input.
        stride: input pixels per token (the patch size); the grid is
            `image_size // stride` a side.
        num_prefix_tokens: tokens before the patch tokens.
        weights: the weights given, where the normalisation is read from.
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own.
        default_normalization: `(mean, std)` of the family's weights.
        input_name: the key `tokens` takes its images under, if any.

    Returns:
        The `keras.Model`.
    """
    affine = weights_normalization(weights, default_normalization)
    return token_map_model(
        tokens,
        image_size,
        normalization_layer(pixel_normalization, affine),
        (image_size // stride,) * 2,
        num_prefix_tokens,
        name=f"{name}_backbone",
        input_name=input_name,
    )


def register_family(names, build: Callable[..., keras.Model]) -> None:
    """Registers `build(name, weights, image_size, ...)` under each of `names`.

    Args:
        names: the registered names (e.g. the keys of the family's configs).
        build: the family's builder, taking the name first.
    """
    for name in names:
        register(name)(functools.partial(build, name))


def _first_sentence(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".") + "."
