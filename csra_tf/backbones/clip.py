"""CLIP image encoders (Radford et al., ICML 2021): ViT-B/16 and ViT-L/14.

The feature map is the image tower's patch tokens after its final LayerNorm
(`post_layernorm`, applied to every token as in timm's CLIP ViTs; transformers'
`CLIPVisionModel` applies it to the class token only and returns the tokens
before it), class token dropped. Weights come from keras-hub's CLIP presets
(e.g. `"clip_vit_base_patch16"`) or from transformers CLIP checkpoints (e.g.
`hf://openai/clip-vit-base-patch16`), which
`csra_tf.backbones.transformers_towers` converts. Pixels are normalised with
OpenAI's CLIP mean and std. At another input size than the weights' the
position table is resized as transformers' `CLIPVisionEmbeddings.
interpolate_pos_encoding` does it (class row kept, PyTorch's bicubic,
`align_corners=False`).
"""

from __future__ import annotations

import keras

from csra_tf.backbones import token_backbones, vision_towers

_CLASS_TOKENS = 1

CLIP_CONFIGS = {
    "clip_vitb16": dict(
        patch_size=16,
        hidden_dim=768,
        num_layers=12,
        num_heads=12,
        intermediate_dim=3072,
        intermediate_activation="quick_gelu",
    ),
    "clip_vitl14": dict(
        patch_size=14,
        hidden_dim=1024,
        num_layers=24,
        num_heads=16,
        intermediate_dim=4096,
        intermediate_activation="quick_gelu",
    ),
}
"""`CLIPVisionEncoder` arguments of OpenAI's CLIP image towers
(openai/clip-vit-base-patch16, openai/clip-vit-large-patch14), for random
initialisation."""


def clip_backbone(
    name: str,
    weights: str | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a CLIP image tower that returns its patch tokens as a feature map.

    Args:
        name: a key of `CLIP_CONFIGS`.
        weights: None (random initialisation, never downloads), a keras-hub
            CLIP preset (e.g. `"clip_vit_large_patch14"`) or handle of one, an
            `hf://` handle or local folder of a transformers CLIP checkpoint
            (e.g. `"hf://openai/clip-vit-base-patch16"`), or a local keras-hub
            preset directory; its architecture replaces the name's.
        image_size: side of the square input, a multiple of the patch size.
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own (OpenAI's CLIP mean and std).
        **overrides: more `CLIPVisionEncoder` arguments for random
            initialisation (e.g. `num_layers`); none with `weights`.

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/p, S/p, hidden_dim)`.

    Example:
    >>> model = clip_backbone(
    ...     "clip_vitb16", image_size=32, hidden_dim=32, num_layers=1,
    ...     num_heads=2, intermediate_dim=64)
    >>> model.output_shape
    (None, 2, 2, 32)
    """
    encoder, image_size = vision_towers.vision_tower(
        name, weights, image_size, overrides, CLIP_CONFIGS, "CLIP", _CLASS_TOKENS
    )
    return token_backbones.family_model(
        name,
        encoder,
        image_size,
        encoder.patch_size,
        _CLASS_TOKENS,
        weights,
        pixel_normalization,
        token_backbones.OPENAI_CLIP,
        input_name="images",
    )


token_backbones.register_family(CLIP_CONFIGS, clip_backbone)
