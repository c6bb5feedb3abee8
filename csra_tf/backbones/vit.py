"""Vision Transformer backbones (keras-hub) returning patch-token feature maps.

As in the paper (Sec. 3, Table 1): the class token is dropped, the final patch
embeddings are reshaped to a `(B, h, w, d)` map, and when the input size differs
from the pretrained one the position embeddings are interpolated (Dosovitskiy et
al., 2021), e.g. 224 -> 448 px gives 28 x 28 tokens for ViT-B/16.

keras-hub is an optional dependency: `pip install "csra-tf[vit]"`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from csra_tf.backbones.registry import register

VIT_CONFIGS = {
    "vit_b16": dict(
        patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072
    ),
    "vit_l16": dict(
        patch_size=16, num_layers=24, num_heads=16, hidden_dim=1024, mlp_dim=4096
    ),
}
"""Architectures of the registered ViTs (Dosovitskiy et al., Table 1)."""

# keras-hub's ViT presets map pixels in [0, 255] to [-1, 1].
_DEFAULT_SCALE = 1.0 / 127.5
_DEFAULT_OFFSET = -1.0
_PATCHING_LAYER = "vit_patching_and_embedding"
_INTERPOLATIONS = ("bilinear", "bicubic")


@keras.saving.register_keras_serializable(package="csra_tf")
class TokensToFeatureMap(keras.layers.Layer):
    """Drops leading (class) tokens and reshapes patch tokens to a feature map.

    Args:
        grid_size: `(h, w)`, the patch grid; `N - num_prefix_tokens` must equal
            `h * w`.
        num_prefix_tokens: tokens before the patch tokens (1 for the class
            token).
        **kwargs: base layer arguments.

    Returns:
        Called on tokens `(B, N, d)`, the map `(B, h, w, d)`.

    Example:
    >>> import numpy as np
    >>> layer = TokensToFeatureMap(grid_size=(2, 3))
    >>> layer(np.zeros((4, 7, 8), "float32")).shape
    TensorShape([4, 2, 3, 8])
    """

    def __init__(self, grid_size: Sequence[int], num_prefix_tokens: int = 1, **kwargs):
        super().__init__(**kwargs)
        grid_size = tuple(int(s) for s in grid_size)
        if len(grid_size) != 2 or min(grid_size) < 1:
            raise ValueError(
                "`grid_size` must be two positive ints. "
                f"Received: grid_size={grid_size}"
            )
        if num_prefix_tokens < 0:
            raise ValueError(
                "`num_prefix_tokens` must be >= 0. "
                f"Received: num_prefix_tokens={num_prefix_tokens}"
            )
        self.grid_size = grid_size
        self.num_prefix_tokens = num_prefix_tokens

    def build(self, input_shape):
        num_tokens = input_shape[1]
        expected = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        if num_tokens is not None and num_tokens != expected:
            raise ValueError(
                f"Expected {expected} tokens ({self.num_prefix_tokens} prefix + "
                f"{self.grid_size} patches). Received: input_shape={input_shape}"
            )
        super().build(input_shape)

    def call(self, tokens):
        patches = tokens[:, self.num_prefix_tokens :, :]
        return ops.reshape(patches, (-1, *self.grid_size, ops.shape(tokens)[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.grid_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            grid_size=list(self.grid_size), num_prefix_tokens=self.num_prefix_tokens
        )
        return config


def interpolate_position_embeddings(
    embeddings: np.ndarray,
    target_grid: Sequence[int],
    num_prefix_tokens: int = 1,
    interpolation: str = "bicubic",
) -> np.ndarray:
    """Resizes a ViT position-embedding table to a new patch grid.

    The prefix (class-token) rows are kept; the patch rows, laid out row-major
    on a square source grid, are resized as an image with half-pixel centres.

    Args:
        embeddings: `(num_prefix_tokens + g * g, d)` table (a leading batch
            axis of 1 is accepted and kept).
        target_grid: `(h, w)` patch grid of the new input size.
        num_prefix_tokens: rows before the patch rows.
        interpolation: `"bicubic"` (as in the ViT paper) or `"bilinear"`.

    Returns:
        The `(num_prefix_tokens + h * w, d)` table (with the batch axis if
        `embeddings` had one), same dtype.

    Example:
    >>> import numpy as np
    >>> table = np.zeros((1 + 14 * 14, 768), "float32")
    >>> interpolate_position_embeddings(table, (28, 28)).shape
    (785, 768)
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {_INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    table = np.asarray(embeddings)
    batched = table.ndim == 3
    if batched:
        table = table[0]
    num_patches = table.shape[0] - num_prefix_tokens
    side = math.isqrt(max(num_patches, 0))
    if table.ndim != 2 or side * side != num_patches or side == 0:
        raise ValueError(
            "The patch rows of `embeddings` must form a square grid after "
            f"{num_prefix_tokens} prefix rows. Received: embeddings.shape="
            f"{np.shape(embeddings)}"
        )
    target_grid = tuple(int(s) for s in target_grid)
    prefix, patches = table[:num_prefix_tokens], table[num_prefix_tokens:]
    if target_grid != (side, side):
        grid = patches.reshape(1, side, side, -1).astype("float32")
        resized = ops.image.resize(
            grid, target_grid, interpolation=interpolation, antialias=False
        )
        patches = np.asarray(ops.convert_to_numpy(resized)).reshape(-1, table.shape[1])
    out = np.concatenate([prefix, patches.astype(table.dtype)], axis=0)
    return out[None] if batched else out


def vit_backbone(
    architecture: dict,
    weights: str | None = None,
    image_size: int = 448,
    interpolation: str = "bicubic",
    name: str = "vit_backbone",
    **overrides,
) -> keras.Model:
    """Builds a keras-hub ViT that returns its patch tokens as a feature map.

    Args:
        architecture: `keras_hub.models.ViTBackbone` arguments for random
            initialisation (see `VIT_CONFIGS`); ignored when `weights` is set.
        weights: None, a keras-hub ViT preset name (e.g.
            `"vit_base_patch16_224_imagenet"`) or a local preset directory
            (written by `ViTBackbone.save_to_preset`).
        image_size: side of the square input; a multiple of the patch size. A
            preset made for another size gets interpolated position embeddings.
        interpolation: how position embeddings are resized.
        name: model name.
        **overrides: more `ViTBackbone` arguments (e.g. `num_layers` for a tiny
            test model, `dropout_rate`).

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/p, S/p, hidden_dim)`.

    Example:
    >>> model = vit_backbone(VIT_CONFIGS["vit_b16"], image_size=32,
    ...                      num_layers=1, hidden_dim=8, num_heads=2, mlp_dim=16)
    >>> model.output_shape
    (None, 2, 2, 8)
    """
    keras_hub = _import_keras_hub()
    if image_size is None:
        raise ValueError(
            "ViT backbones need a fixed input size. Received: image_size=None"
        )
    image_shape = (image_size, image_size, 3)
    scale, offset = _DEFAULT_SCALE, _DEFAULT_OFFSET
    if weights is None:
        config = {**architecture, **overrides}
        patch = _pair(config["patch_size"])
        _check_divisible(image_size, patch)
        vit = keras_hub.models.ViTBackbone(image_shape=image_shape, **config)
    else:
        presets = sorted(keras_hub.models.ViTBackbone.presets)
        if weights not in presets and not os.path.isdir(weights):
            raise ValueError(
                f"`weights` must be None, a keras-hub ViT preset ({presets}) or a "
                f"local preset directory. Received: weights={weights}"
            )
        source = keras_hub.models.ViTBackbone.from_preset(weights, **overrides)
        _check_divisible(image_size, _pair(source.patch_size))
        vit = _resized(source, image_shape, interpolation, keras_hub)
        scale, offset = _preset_pixel_scaling(weights, keras_hub)
    prefix = 1 if vit.use_class_token else 0
    patch = _pair(vit.patch_size)
    grid = (image_size // patch[0], image_size // patch[1])
    inputs = keras.Input(image_shape, name="pixels")
    x = keras.layers.Rescaling(scale, offset, name="rescale")(inputs)
    tokens = vit(x)
    features = TokensToFeatureMap(grid, num_prefix_tokens=prefix, name="patch_map")(
        tokens
    )
    return keras.Model(inputs, features, name=name)


def _import_keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            'ViT backbones need keras-hub. Install it with: pip install "csra-tf[vit]"'
        ) from error
    return keras_hub


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _check_divisible(image_size: int, patch: tuple[int, int]) -> None:
    if image_size % patch[0] or image_size % patch[1]:
        raise ValueError(
            f"`image_size` must be a multiple of the patch size {patch}. "
            f"Received: image_size={image_size}"
        )


def _resized(source, image_shape, interpolation, keras_hub):
    """A copy of `source` for `image_shape`, position embeddings interpolated."""
    if tuple(source.image_shape) == tuple(image_shape):
        return source
    config = source.get_config()
    config["image_shape"] = image_shape
    target = keras_hub.models.ViTBackbone.from_config(config)
    patch = _pair(source.patch_size)
    grid = (image_shape[0] // patch[0], image_shape[1] // patch[1])
    embedding = target.get_layer(_PATCHING_LAYER).position_embedding.embeddings
    for old, new in zip(source.weights, target.weights, strict=True):
        value = ops.convert_to_numpy(old)
        if new is embedding:
            value = interpolate_position_embeddings(
                value,
                grid,
                num_prefix_tokens=int(source.use_class_token),
                interpolation=interpolation,
            )
        new.assign(value)
    return target


def _preset_pixel_scaling(weights, keras_hub):
    """The preset's image-converter scale and offset, or ViT's default."""
    if os.path.isdir(weights) and not os.path.exists(
        os.path.join(weights, "image_converter.json")
    ):
        return _DEFAULT_SCALE, _DEFAULT_OFFSET
    converter = keras_hub.layers.ViTImageConverter.from_preset(weights)
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return _plain(scale), _plain(offset)


def _plain(value):
    array = np.asarray(value, dtype="float64")
    return float(array) if array.ndim == 0 else [float(v) for v in array.ravel()]


def _vit_factory(key: str):
    def factory(weights=None, image_size=448, **overrides):
        return vit_backbone(
            VIT_CONFIGS[key],
            weights=weights,
            image_size=image_size,
            name=f"{key}_backbone",
            **overrides,
        )

    return factory


for _key in VIT_CONFIGS:
    register(_key)(_vit_factory(_key))
