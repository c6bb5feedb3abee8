"""DeiT-B (Touvron et al., ICML 2021), the distilled data-efficient ViT.

keras-hub's `DeiTBackbone` returns the final layer-normalised tokens
`[class, distillation, patches...]`; the map is the patch tokens. At another
input size than the weights' the position table is resized as transformers'
`DeiTEmbeddings.interpolate_pos_encoding` does it: the two leading rows kept,
the patch rows resized with `F.interpolate(..., size=grid, mode="bicubic",
align_corners=False)` (`csra_tf.backbones.position_embedding`).
"""

from __future__ import annotations

import keras
import keras_hub

from csra_tf.backbones import token_backbones

_PREFIX_TOKENS = 2  # class and distillation tokens
_POSITION_TABLE = "position_embedding"

DEIT_CONFIGS = {
    "deit_base": dict(
        patch_size=16,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        intermediate_dim=3072,
        layer_norm_epsilon=1e-12,
    ),
}
"""`DeiTBackbone` arguments of DeiT-B
(facebook/deit-base-distilled-patch16-224), for random initialisation."""


def deit_backbone(
    name: str,
    weights: str | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a DeiT that returns its final patch tokens as a feature map.

    Args:
        name: a key of `DEIT_CONFIGS`.
        weights: None (random initialisation, never downloads), a keras-hub
            preset (e.g. `"deit_base_distilled_patch16_224_imagenet"`), an
            `hf://` handle of a transformers checkpoint (e.g.
            `"hf://facebook/deit-base-distilled-patch16-224"`) or a local
            preset directory; its architecture replaces the name's.
        image_size: side of the square input, a multiple of the patch size.
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own (ImageNet mean and std).
        **overrides: more `DeiTBackbone` arguments (e.g. `num_layers`).

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/16, S/16, hidden_dim)`.

    Example:
    >>> model = deit_backbone(
    ...     "deit_base", image_size=32, num_layers=1, num_heads=2,
    ...     hidden_dim=32, intermediate_dim=64)
    >>> model.output_shape
    (None, 2, 2, 32)
    """
    cls = keras_hub.models.DeiTBackbone
    token_backbones.check_weights(name, weights, tuple(cls.presets))
    if weights is None:
        config = {**DEIT_CONFIGS[name], **overrides}
        backbone, image_size = token_backbones.random_backbone(cls, config, image_size)
    else:
        source = token_backbones.load_preset(cls, name, "DeiT", weights, **overrides)
        image_size = token_backbones.check_multiple(
            image_size, _patch(source), token_backbones.PATCH_SIZE
        )
        tables = [v for v in source.weights if v.path.endswith(_POSITION_TABLE)]
        backbone = token_backbones.resized_copy(
            source, image_size, _patch(source), tables, _PREFIX_TOKENS
        )
    return token_backbones.family_model(
        name,
        backbone,
        image_size,
        _patch(backbone),
        _PREFIX_TOKENS,
        weights,
        pixel_normalization,
        token_backbones.IMAGENET,
    )


def _patch(backbone) -> int:
    """keras-hub's DeiT patch size, an int or a pair, as an int."""
    patch = backbone.patch_size
    return int(patch if isinstance(patch, int) else patch[0])


token_backbones.register_family(DEIT_CONFIGS, deit_backbone)
