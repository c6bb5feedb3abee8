"""Swin Transformer backbones (Liu et al., ICCV 2021): Swin-T, -S, -B, -L.

keras-hub's `SwinTransformerBackbone` returns the last stage's tokens after
the final LayerNorm, `(B, h * w, d)` with `h = S / 32` for the 4-stage models;
the map is these tokens laid out on their grid, as transformers' `SwinModel`
`last_hidden_state`. Swin has no absolute position table: its relative
position biases are per window, so the same weights serve any input size whose
stages are whole numbers of windows: `image_size` a multiple of
`patch_size * 2 ** (stages - 1) * window_size` (224 for the registered
models, so 224, 448, 672...). transformers and keras-hub pad a stage that is
not a whole number of windows in different ways, and keras-hub cannot run a
stage smaller than a window, so other sizes are refused.
"""

from __future__ import annotations

import keras
import keras_hub

from csra_tf.backbones import token_backbones

_MULTIPLE = "the last stage's stride times the window size"
_STAGES = dict(depths=(2, 2, 18, 2), patch_size=4, window_size=7, mlp_ratio=4.0)

SWIN_CONFIGS = {
    "swin_tiny": dict(
        _STAGES, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)
    ),
    "swin_small": dict(_STAGES, embed_dim=96, num_heads=(3, 6, 12, 24)),
    "swin_base": dict(_STAGES, embed_dim=128, num_heads=(4, 8, 16, 32)),
    "swin_large": dict(_STAGES, embed_dim=192, num_heads=(6, 12, 24, 48)),
}
"""`SwinTransformerBackbone` arguments of the registered Swins
(microsoft/swin-{tiny,small,base,large}-patch4-window7-224), for random
initialisation."""


def swin_backbone(
    name: str,
    weights: str | None = None,
    image_size: int = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a Swin Transformer that returns its last stage as a feature map.

    Args:
        name: a key of `SWIN_CONFIGS`.
        weights: None (random initialisation, never downloads), a keras-hub
            preset (e.g. `"swin_base_patch4_window7_224"`), an `hf://` handle
            of a transformers checkpoint (e.g.
            `"hf://microsoft/swin-base-patch4-window7-224"`) or a local preset
            directory; its architecture replaces the name's.
        image_size: side of the square input, a multiple of
            `patch_size * 2 ** (stages - 1) * window_size` (224 for the
            registered models and for `*_window7_*` weights).
        pixel_normalization: a `PixelNormalization` mode, or None for the
            weights' own (the checkpoint's preprocessor config, else ImageNet
            mean and std).
        **overrides: more `SwinTransformerBackbone` arguments (e.g. `depths`).

    Returns:
        A `keras.Model` mapping pixels in [0, 255], `(B, S, S, 3)`, to
        `(B, S/32, S/32, 8 * embed_dim)` (4 stages).

    Example:
    >>> model = swin_backbone(
    ...     "swin_tiny", image_size=32, embed_dim=8, depths=(1, 1),
    ...     num_heads=(1, 2), window_size=2)
    >>> model.output_shape
    (None, 4, 4, 16)
    """
    cls = keras_hub.models.SwinTransformerBackbone
    token_backbones.check_weights(name, weights, tuple(cls.presets))
    if weights is None:
        config = {"drop_path": 0.1, **SWIN_CONFIGS[name], **overrides}
        backbone, image_size = token_backbones.random_backbone(
            cls, config, image_size, _multiple(config), _MULTIPLE
        )
    else:
        backbone, image_size = token_backbones.preset_at_size(
            cls,
            name,
            "Swin Transformer",
            weights,
            image_size,
            overrides,
            multiple=lambda backbone: _multiple(backbone.get_config()),
            what=_MULTIPLE,
        )
    return token_backbones.family_model(
        name,
        backbone,
        image_size,
        _stride(backbone.get_config()),
        0,
        weights,
        pixel_normalization,
        token_backbones.IMAGENET,
    )


def _multiple(config) -> int:
    """The input sides whose every stage is a whole number of windows."""
    return _stride(config) * int(config["window_size"])


def _stride(config) -> int:
    """Input pixels per token of the last stage: patch, then one 2x per merge."""
    return int(config["patch_size"]) * 2 ** (len(config["depths"]) - 1)


token_backbones.register_family(SWIN_CONFIGS, swin_backbone)
