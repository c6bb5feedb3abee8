"""DINOv2 backbones (Oquab et al., 2024), with registers or not (Darcet et al., 2024).

keras-hub's `DINOV2Backbone` returns the final layer-normalised tokens
`[class, registers..., patches...]`; the map is the patch tokens. The
pretrained position embeddings cover a 37 x 37 grid (518 px, patch 14); at
any other size they are resized as transformers' `interpolate_pos_encoding`
does it: `F.interpolate(..., size=grid, mode="bicubic",
align_corners=False)`, without antialiasing for DINOv2 (`Dinov2Model`) and
with it for DINOv2 with registers (`Dinov2WithRegistersModel`). keras-hub
resizes with the backend's bicubic (TensorFlow's `a = -0.5`), so the copy
made here holds the table already resized with PyTorch's kernel
(`csra_tf.backbones.position_embedding`) and keras-hub does not resize again.
"""

from __future__ import annotations

import keras
import keras_hub

from csra_tf.backbones import token_backbones
from csra_tf.backbones.position_embedding import interpolate_position_embeddings
from csra_tf.errors import UserError

_PATCH = 14
_VARIANTS = {
    "small": dict(num_layers=12, hidden_dim=384, num_heads=6, intermediate_dim=1536),
    "base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
    "large": dict(num_layers=24, hidden_dim=1024, num_heads=16, intermediate_dim=4096),
    "giant": dict(
        num_layers=40,
        hidden_dim=1536,
        num_heads=24,
        intermediate_dim=6144,
        use_swiglu_ffn=True,
    ),
}
_REGISTERS = 4
# The copy made here holds its position table at the input size (see above).
_SHAPE_ARGUMENTS = ("image_shape", "position_embedding_shape")


def _config(variant: dict, registers: bool) -> dict:
    """A `DINOV2Backbone` config: without registers, or with 4 (antialiased)."""
    return dict(
        patch_size=_PATCH,
        layer_scale_init_value=1.0,
        num_register_tokens=_REGISTERS if registers else 0,
        antialias_in_interpolation=registers,
        **{"use_swiglu_ffn": False, **variant},
    )


DINOV2_CONFIGS = {
    f"dinov2_{size}{suffix}": _config(variant, registers)
    for suffix, registers in (("", False), ("_reg", True))
    for size, variant in _VARIANTS.items()
}
"""`DINOV2Backbone` arguments of the registered DINOv2s (facebook/dinov2-* and
facebook/dinov2-with-registers-*), for random initialisation."""


def dinov2_backbone(
    name: str,
    weights: str | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a DINOv2 that returns its final patch tokens as a feature map.

    Args:
        name: a key of `DINOV2_CONFIGS`; `_reg` names hold register tokens.
        weights: None (random initialisation, never downloads), a keras-hub
            preset (e.g. `"dinov2_base"`, `"dinov2_with_registers_base"`), an
            `hf://` handle of a transformers checkpoint (e.g.
            `"hf://facebook/dinov2-base"`) or a local preset directory. Its
            architecture replaces the name's; it must have registers exactly
            when the name ends in `_reg`.
        image_size: side of the square input, a multiple of 14.
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own (ImageNet mean and std).
        **overrides: more `DINOV2Backbone` arguments (e.g. `num_layers`).

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/14, S/14, hidden_dim)`.

    Example:
    >>> model = dinov2_backbone(
    ...     "dinov2_small", image_size=28, num_layers=1, hidden_dim=32,
    ...     num_heads=2, intermediate_dim=64)
    >>> model.output_shape
    (None, 2, 2, 32)
    """
    cls = keras_hub.models.DINOV2Backbone
    token_backbones.check_weights(name, weights, tuple(cls.presets))
    if weights is None:
        backbone, image_size = token_backbones.random_backbone(
            cls,
            {**DINOV2_CONFIGS[name], **overrides},
            image_size,
            shape_arguments=_SHAPE_ARGUMENTS,
        )
    else:
        source = token_backbones.load_preset(cls, name, "DINOv2", weights, **overrides)
        registers = name.endswith("_reg")
        if bool(source.num_register_tokens) != registers:
            raise UserError(
                f"{name} needs DINOv2 weights {'with' if registers else 'without'} "
                f"register tokens; these have {source.num_register_tokens}. "
                f"Received: weights={weights}"
            )
        image_size = token_backbones.check_multiple(
            image_size, source.patch_size, token_backbones.PATCH_SIZE
        )
        backbone = _at_size(source, image_size)
    return token_backbones.family_model(
        name,
        backbone,
        image_size,
        backbone.patch_size,
        1 + backbone.num_register_tokens,
        weights,
        pixel_normalization,
        token_backbones.IMAGENET,
        input_name="images",
    )


def _at_size(source, image_size: int):
    """`source` for `image_size` inputs, position embeddings resized as PyTorch."""
    embeddings = source.embeddings
    patch = source.patch_size
    source_grid = tuple(s // patch for s in embeddings.position_embedding_shape)
    grid = (image_size // patch,) * 2

    def resized(table):
        return interpolate_position_embeddings(
            table,
            grid,
            num_prefix_tokens=1,
            antialias=source.antialias_in_interpolation,
            source_grid=source_grid,
        )

    def stored(_):
        # The copy's position_embedding_shape equals its image_shape, so its
        # "interpolated" table is the resized table itself.
        return resized(keras.ops.convert_to_numpy(embeddings.position_embeddings))

    shape = token_backbones.image_shape(image_size)
    return token_backbones.copy_at_size(
        source,
        dict.fromkeys(_SHAPE_ARGUMENTS, shape),
        resize={
            id(embeddings.position_embeddings): resized,
            id(embeddings.interpolated_position_embeddings): stored,
        },
    )


token_backbones.register_family(DINOV2_CONFIGS, dinov2_backbone)
