"""The image towers of the text-image families, SigLIP2 and CLIP.

Both are a keras-hub vision encoder (`SigLIPVisionEncoder`,
`CLIPVisionEncoder`) taken from one of the family's keras-hub presets or
converted from a transformers checkpoint
(`csra_tf.backbones.transformers_towers`), or built at random; its position
table is resized to the input size and its position ids set
(`csra_tf.backbones.token_backbones`).
"""

from __future__ import annotations

import keras_hub

from csra_tf.backbones import token_backbones, transformers_towers
from csra_tf.errors import UserError

_TOWERS = {
    "SigLIP": (
        keras_hub.models.SigLIPBackbone,
        keras_hub.models.SigLIPVisionEncoder,
        transformers_towers.siglip_encoder_from_transformers,
    ),
    "CLIP": (
        keras_hub.models.CLIPBackbone,
        keras_hub.models.CLIPVisionEncoder,
        transformers_towers.clip_encoder_from_transformers,
    ),
}
"""Per family: keras-hub's backbone class (its presets), its vision encoder
class and the converter of transformers checkpoints."""


def vision_tower(
    name: str,
    weights,
    image_size,
    overrides: dict,
    configs: dict,
    family: str,
    num_prefix_tokens: int,
):
    """A SigLIP or CLIP vision encoder for `image_size` inputs.

    Args:
        name: the registered name, a key of `configs`.
        weights: None (random initialisation), a keras-hub preset of the
            family or handle of one, a transformers checkpoint
            (`hf://` handle or local folder) or a local preset directory.
        image_size: the requested side, a multiple of the patch size.
        overrides: more encoder arguments, for random initialisation only.
        configs: the family's encoder arguments by registered name.
        family: `"SigLIP"` or `"CLIP"`.
        num_prefix_tokens: tokens before the patch tokens (CLIP: 1).

    Returns:
        `(encoder, image_size)`: the encoder with its position table resized
        to `image_size` and its position ids set, and the side as an int.

    Raises:
        UserError: for wrong `weights`, overrides with `weights`, or a side
            that is no multiple of the patch size.
    """
    backbone_cls, encoder_cls, convert = _TOWERS[family]
    token_backbones.check_weights(name, weights, tuple(backbone_cls.presets))
    if weights is None:
        encoder, image_size = token_backbones.random_backbone(
            encoder_cls, {**configs[name], **overrides}, image_size
        )
    else:
        if overrides:
            raise UserError(
                f"{name} takes its architecture from `weights`; no overrides "
                f"({', '.join(sorted(overrides))}). Received: weights={weights}"
            )
        if transformers_towers.transformers_model_type(weights) is not None:
            source = convert(weights)
        else:
            source = token_backbones.load_preset(
                backbone_cls, name, family, weights
            ).vision_encoder
        image_size = token_backbones.check_multiple(
            image_size, source.patch_size, token_backbones.PATCH_SIZE
        )
        encoder = token_backbones.encoder_at_size(source, image_size, num_prefix_tokens)
    token_backbones.fill_position_ids(encoder)
    return encoder, image_size
