"""Vision Transformer backbones (keras-hub) returning patch-token feature maps.

As in the paper (Sec. 3, Table 1): the class token is dropped, the final patch
embeddings are reshaped to a `(B, h, w, d)` map, and when the input size differs
from the pretrained one the position embeddings are interpolated (Dosovitskiy et
al., 2021), e.g. 224 -> 448 px gives 28 x 28 tokens for ViT-B/16. The resize is
PyTorch's bicubic (`a = -0.75`, `align_corners=False`, no antialiasing), as
transformers' ViT and timm's `resize_pos_embed` do it
(`csra_tf.backbones.position_embedding`).

Weights come from keras-hub (preset names, `hf://` / `kaggle://` handles, local
preset directories) or from a PyTorch `.pth` state dict of a timm ViT, converted
by `csra_tf.convert.timm_vit`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import keras
import keras_hub
import numpy as np
from keras import ops

from csra_tf.backbones.position_embedding import (
    check_interpolation,
    interpolate_position_embeddings,
)
from csra_tf.backbones.preset_loading import from_preset
from csra_tf.backbones.registry import register
from csra_tf.convert.pth import load_state_dict, strip_module_prefix
from csra_tf.convert.timm_vit import load_timm_vit_weights
from csra_tf.errors import UserError
from csra_tf.layers.pixel_normalization import (
    PixelNormalization,
    check_pixel_normalization,
    mode_of_affine,
)

VIT_CONFIGS = {
    "vit_tiny": dict(
        patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    ),
    "vit_b16": dict(
        patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072
    ),
    "vit_l16": dict(
        patch_size=16, num_layers=24, num_heads=16, hidden_dim=1024, mlp_dim=4096
    ),
}
"""Architectures of the registered ViTs: ViT-B/16 and ViT-L/16 (Dosovitskiy et
al., Table 1) and `vit_tiny`, a two-block test model."""

DEFAULT_PIXEL_NORMALIZATION = "symmetric"
"""Pixel normalisation the ImageNet ViT weights were trained with (Google's and
timm's `vit_*_patch16_224`), [-1, 1]. The CSRA authors fed pixels / 255 to these
weights in their VOC and COCO runs and [-1, 1] only on WIDER-Attribute; their
flagfiles and `csra-import` set that explicitly."""

_POSITION_KEY = "pos_embed"

_PATCHING_LAYER = "vit_patching_and_embedding"
_HANDLE_SCHEMES = ("hf://", "kaggle://", "gs://")


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
            raise UserError(
                "`grid_size` must be two positive ints. "
                f"Received: grid_size={grid_size}"
            )
        if num_prefix_tokens < 0:
            raise UserError(
                "`num_prefix_tokens` must be >= 0. "
                f"Received: num_prefix_tokens={num_prefix_tokens}"
            )
        self.grid_size = grid_size
        self.num_prefix_tokens = num_prefix_tokens

    def build(self, input_shape):
        num_tokens = input_shape[1]
        expected = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        if num_tokens is not None and num_tokens != expected:
            raise UserError(
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


def vit_backbone(
    architecture: dict,
    weights: str | os.PathLike | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    interpolation: str = "bicubic",
    name: str = "vit_backbone",
    **overrides,
) -> keras.Model:
    """Builds a keras-hub ViT that returns its patch tokens as a feature map.

    Args:
        architecture: `keras_hub.models.ViTBackbone` arguments (see
            `VIT_CONFIGS`) for random initialisation and for `.pth` weights;
            ignored for keras-hub presets, which carry their own.
        weights: None (random initialisation), a PyTorch `.pth` state dict of
            a timm ViT of this architecture (a local file, e.g. timm's
            `pytorch_model.bin` or the CSRA authors' checkpoint, whose
            `classifier.*` heads are skipped), a keras-hub ViT preset name
            (e.g. `"vit_base_patch16_224_imagenet"`), a handle keras-hub loads
            (`"hf://..."`, `"kaggle://..."`) or a local preset directory
            (written by `ViTBackbone.save_to_preset`).
        image_size: side of the square input; a multiple of the patch size.
            Weights made for another size get interpolated position
            embeddings.
        pixel_normalization: how pixels in [0, 255] are mapped to the ViT's
            input: `"symmetric"` ([-1, 1]), `"unit"` ([0, 1]) or
            `"imagenet"` (mean/std), see `PixelNormalization`. None: the
            weights' own, i.e. a keras-hub preset's image converter, else
            `DEFAULT_PIXEL_NORMALIZATION`.
        interpolation: how position embeddings are resized: `"bicubic"`
            (PyTorch's, `a = -0.75`) or `"bilinear"` (PyTorch's), both
            with `align_corners=False` and no antialiasing.
        name: model name.
        **overrides: more `ViTBackbone` arguments (e.g. `num_layers` for a
            tiny test model, `dropout_rate`).

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/p, S/p, hidden_dim)`.

    Example:
    >>> model = vit_backbone(VIT_CONFIGS["vit_tiny"], image_size=32)
    >>> model.output_shape
    (None, 2, 2, 32)
    """
    if image_size is None:
        raise UserError(
            "ViT backbones need a fixed input size. Received: image_size=None"
        )
    check_pixel_normalization(pixel_normalization)
    check_interpolation(interpolation)
    if weights is not None and not isinstance(weights, Mapping):
        weights = os.fspath(weights)
    image_shape = (image_size, image_size, 3)
    scaling = DEFAULT_PIXEL_NORMALIZATION
    if weights is None or isinstance(weights, Mapping) or _is_state_dict_file(weights):
        config = {**architecture, **overrides}
        _check_divisible(image_size, _pair(config["patch_size"]))
        vit = keras_hub.models.ViTBackbone(image_shape=image_shape, **config)
        if weights is not None:
            state_dict = (
                weights if isinstance(weights, Mapping) else load_state_dict(weights)
            )
            load_timm_vit_weights(vit, _on_patch_grid(state_dict, vit, interpolation))
    else:
        presets = sorted(keras_hub.models.ViTBackbone.presets)
        if not (
            weights in presets
            or os.path.isdir(weights)
            or weights.startswith(_HANDLE_SCHEMES)
        ):
            raise UserError(
                "`weights` must be None, a `.pth` state dict file, a keras-hub "
                f"ViT preset ({presets}), a handle ({', '.join(_HANDLE_SCHEMES)}...) "
                f"or a local preset directory. Received: weights={weights}"
            )
        source = from_preset(keras_hub.models.ViTBackbone, weights, **overrides)
        _check_divisible(image_size, _pair(source.patch_size))
        vit = _resized(source, image_shape, interpolation)
        if pixel_normalization is None:
            scaling = _preset_pixel_scaling(weights)
    prefix = 1 if vit.use_class_token else 0
    grid = _grid_of(vit)
    inputs = keras.Input(image_shape, name="pixels")
    x = _normalization_layer(pixel_normalization or scaling)(inputs)
    tokens = vit(x)
    features = TokensToFeatureMap(grid, num_prefix_tokens=prefix, name="patch_map")(
        tokens
    )
    return keras.Model(inputs, features, name=name)


def _is_state_dict_file(weights: str) -> bool:
    return os.path.isfile(weights)


def _normalization_layer(scaling) -> keras.layers.Layer:
    """`PixelNormalization` for a named mode, else `Rescaling(scale, offset)`."""
    if isinstance(scaling, str):
        return PixelNormalization(scaling, name="pixel_normalization")
    scale, offset = scaling
    return keras.layers.Rescaling(scale, offset, name="pixel_normalization")


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _check_divisible(image_size: int, patch: tuple[int, int]) -> None:
    if image_size % patch[0] or image_size % patch[1]:
        raise UserError(
            f"`image_size` must be a multiple of the patch size {patch}. "
            f"Received: image_size={image_size}"
        )


def _grid_of(vit) -> tuple[int, int]:
    patch = _pair(vit.patch_size)
    return (vit.image_shape[0] // patch[0], vit.image_shape[1] // patch[1])


def _on_patch_grid(state_dict, vit, interpolation):
    """The timm state dict with `pos_embed` resized to `vit`'s patch grid.

    A table that is not a square grid after the class token, or of another
    width, is left as it is for the converter's shape check to report.
    """
    state = strip_module_prefix(state_dict)
    table = state.get(_POSITION_KEY)
    if table is None or np.ndim(table) != 3 or np.shape(table)[-1] != vit.hidden_dim:
        return state
    side = math.isqrt(max(np.shape(table)[1] - 1, 0))
    if side == 0 or side * side != np.shape(table)[1] - 1:
        return state
    resized = interpolate_position_embeddings(
        np.asarray(table), _grid_of(vit), interpolation=interpolation
    )
    return {**state, _POSITION_KEY: resized}


def _resized(source, image_shape, interpolation):
    """A copy of `source` for `image_shape`, position embeddings interpolated."""
    if tuple(source.image_shape) == tuple(image_shape):
        return source
    config = source.get_config()
    config["image_shape"] = image_shape
    target = keras_hub.models.ViTBackbone.from_config(config)
    grid = _grid_of(target)
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


def _preset_pixel_scaling(weights):
    """The preset's image-converter scaling: a named mode where it is one."""
    if os.path.isdir(weights) and not os.path.exists(
        os.path.join(weights, "image_converter.json")
    ):
        return DEFAULT_PIXEL_NORMALIZATION
    converter = keras_hub.layers.ViTImageConverter.from_preset(weights)
    scale = 1.0 if converter.scale is None else converter.scale
    offset = 0.0 if converter.offset is None else converter.offset
    return mode_of_affine(scale, offset) or (_plain(scale), _plain(offset))


def _plain(value):
    array = np.asarray(value, dtype="float64")
    return float(array) if array.ndim == 0 else [float(v) for v in array.ravel()]


def _vit_factory(key: str):
    def factory(weights=None, image_size=448, pixel_normalization=None, **overrides):
        return vit_backbone(
            VIT_CONFIGS[key],
            weights=weights,
            image_size=image_size,
            pixel_normalization=pixel_normalization,
            name=f"{key}_backbone",
            **overrides,
        )

    return factory


for _key in VIT_CONFIGS:
    register(_key)(_vit_factory(_key))
