"""DINOv3 backbones (Siméoni et al., 2025): ViT-S/16, ViT-B/16, ViT-L/16.

keras-hub's `DINOV3Backbone` returns the final layer-normalised tokens
`[class, 4 registers, patches...]`; the map is the patch tokens. DINOv3 has
no learned position table: its rotary embeddings are computed from the patch
coordinates of the input at hand, so any input size is the model's own and
nothing is resized.
"""

from __future__ import annotations

import keras
import keras_hub

from csra_tf.backbones import token_backbones

_PATCH = 16
_COMMON = dict(
    patch_size=_PATCH,
    layer_scale_init_value=1.0,
    num_register_tokens=4,
    hidden_activation="gelu",
    use_gated_mlp=False,
    use_query_bias=True,
    use_key_bias=False,
    use_value_bias=True,
    use_proj_bias=True,
    use_mlp_bias=True,
    layer_norm_eps=1e-5,
    rope_theta=100.0,
)

DINOV3_CONFIGS = {
    "dinov3_vits16": dict(
        _COMMON, num_layers=12, hidden_dim=384, num_heads=6, intermediate_dim=1536
    ),
    "dinov3_vitb16": dict(
        _COMMON, num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072
    ),
    "dinov3_vitl16": dict(
        _COMMON, num_layers=24, hidden_dim=1024, num_heads=16, intermediate_dim=4096
    ),
}
"""`DINOV3Backbone` arguments of the registered DINOv3s
(facebook/dinov3-vit{s,b,l}16-pretrain-lvd1689m), for random initialisation."""


def dinov3_backbone(
    name: str,
    weights: str | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a DINOv3 that returns its final patch tokens as a feature map.

    Args:
        name: a key of `DINOV3_CONFIGS`.
        weights: None (random initialisation, never downloads), a keras-hub
            preset (e.g. `"dinov3_vit_base_lvd1689m"`), an `hf://` handle of a
            transformers checkpoint (e.g.
            `"hf://facebook/dinov3-vitb16-pretrain-lvd1689m"`) or a local
            preset directory; its architecture replaces the name's.
        image_size: side of the square input, a multiple of 16.
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own (ImageNet mean and std).
        **overrides: more `DINOV3Backbone` arguments (e.g. `num_layers`).

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/16, S/16, hidden_dim)`.

    Example:
    >>> model = dinov3_backbone(
    ...     "dinov3_vits16", image_size=32, num_layers=1, hidden_dim=32,
    ...     num_heads=2, intermediate_dim=64)
    >>> model.output_shape
    (None, 2, 2, 32)
    """
    cls = keras_hub.models.DINOV3Backbone
    token_backbones.check_weights(name, weights, tuple(cls.presets))
    if weights is None:
        config = {**DINOV3_CONFIGS[name], **overrides}
        backbone, image_size = token_backbones.random_backbone(cls, config, image_size)
    else:
        # Rotary position embeddings: the same weights serve any input size.
        backbone, image_size = token_backbones.preset_at_size(
            cls,
            name,
            "DINOv3",
            weights,
            image_size,
            overrides,
            multiple=lambda backbone: backbone.patch_size,
        )
    return token_backbones.family_model(
        name,
        backbone,
        image_size,
        backbone.patch_size,
        1 + backbone.num_register_tokens,
        weights,
        pixel_normalization,
        token_backbones.IMAGENET,
        input_name="pixel_values",
    )


token_backbones.register_family(DINOV3_CONFIGS, dinov3_backbone)
