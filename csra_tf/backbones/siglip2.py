"""SigLIP2 image encoders (Tschannen et al., 2025), patch 16: B, L and So400m.

The feature map is the vision tower's patch tokens after its final
`post_layernorm`, before the attention-pooling head (no class token): the
`last_hidden_state` of transformers' `SiglipVisionModel`, not its pooled
vector. Weights come from keras-hub's SigLIP presets (e.g.
`"siglip2_base_patch16_224"`) or from transformers checkpoints of the
fixed-resolution SigLIP2 models (`model_type` `"siglip"`, e.g.
`hf://google/siglip2-base-patch16-224`; the NaFlex variants, `"siglip2"`, are
another architecture), which `csra_tf.backbones.transformers_towers`
converts. At another input size than the weights' the position table is
resized as transformers' `SiglipVisionEmbeddings.interpolate_pos_encoding`
does it (PyTorch's bicubic, `align_corners=False`).
"""

from __future__ import annotations

import keras

from csra_tf.backbones import token_backbones, vision_towers

_COMMON = dict(
    patch_size=16,
    intermediate_activation="gelu_approximate",
    layer_norm_epsilon=1e-6,
)

SIGLIP2_CONFIGS = {
    "siglip2_base": dict(
        _COMMON, hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072
    ),
    "siglip2_large": dict(
        _COMMON, hidden_dim=1024, num_layers=24, num_heads=16, intermediate_dim=4096
    ),
    "siglip2_so400m": dict(
        _COMMON, hidden_dim=1152, num_layers=27, num_heads=16, intermediate_dim=4304
    ),
}
"""`SigLIPVisionEncoder` arguments of the registered SigLIP2 image towers
(google/siglip2-{base,large,so400m}-patch16-*), for random initialisation."""


def siglip2_backbone(
    name: str,
    weights: str | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a SigLIP2 image tower that returns its patch tokens as a feature map.

    Args:
        name: a key of `SIGLIP2_CONFIGS`.
        weights: None (random initialisation, never downloads), a keras-hub
            SigLIP preset (e.g. `"siglip2_so400m_patch16_384"`) or handle of
            one, an `hf://` handle or local folder of a transformers SigLIP
            checkpoint (e.g. `"hf://google/siglip2-base-patch16-224"`), or a
            local keras-hub preset directory; its architecture replaces the
            name's.
        image_size: side of the square input, a multiple of the patch size.
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own (`"symmetric"`, [-1, 1]).
        **overrides: more `SigLIPVisionEncoder` arguments for random
            initialisation (e.g. `num_layers`); none with `weights`.

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/16, S/16, hidden_dim)`.

    Example:
    >>> model = siglip2_backbone(
    ...     "siglip2_base", image_size=32, hidden_dim=32, num_layers=1,
    ...     num_heads=2, intermediate_dim=64)
    >>> model.output_shape
    (None, 2, 2, 32)
    """
    encoder, image_size = vision_towers.vision_tower(
        name, weights, image_size, overrides, SIGLIP2_CONFIGS, "SigLIP", 0
    )
    return token_backbones.family_model(
        name,
        _patch_tokens(encoder),
        image_size,
        encoder.patch_size,
        0,
        weights,
        pixel_normalization,
        token_backbones.HALF,
        input_name="images",
    )


def _patch_tokens(encoder) -> keras.Model:
    """The encoder's tokens after `post_layernorm`, without the pooling head."""
    images = encoder.input
    grid = encoder.image_shape[0] // encoder.patch_size
    tokens = SigLIPPatchTokens(grid * grid, name="patch_tokens")(
        encoder.post_layer_norm.output
    )
    return keras.Model(images, tokens, name=encoder.name)


@keras.saving.register_keras_serializable(package="csra_tf")
class SigLIPPatchTokens(keras.layers.Layer):
    """Passes SigLIP's patch tokens on with their true static length.

    keras-hub 0.32's `SigLIPVisionEmbedding.compute_output_shape` counts a
    class token that SigLIP does not have, so the encoder's graph carries one
    token too many in its static shape (not at run time). This layer returns
    its input and states the number of tokens.

    Args:
        num_patches: the number of patch tokens, `(S / patch) ** 2`.
        **kwargs: base layer arguments.

    Returns:
        Called on tokens `(B, N, d)`, the same tensor, of static shape
        `(B, num_patches, d)`.
    """

    def __init__(self, num_patches: int, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = int(num_patches)

    def call(self, tokens):
        return tokens

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_patches, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(num_patches=self.num_patches)
        return config


token_backbones.register_family(SIGLIP2_CONFIGS, siglip2_backbone)
