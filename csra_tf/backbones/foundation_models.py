"""Today's pretrained transformer backbones, registered by name.

Importing this module registers `dinov2_small|base|large|giant` (and `_reg`,
with registers), `dinov3_vits16|vitb16|vitl16`, `swin_tiny|small|base|large`,
`siglip2_base|large|so400m`, `clip_vitb16|vitl14` and `deit_base`. Each
returns the reference model's final, normalised patch tokens as a
`(B, h, w, d)` map and takes `weights` as a keras-hub preset, an `hf://`
handle or a local preset directory (see `csra_tf.backbones.token_backbones`).
"""

from csra_tf.backbones.clip import CLIP_CONFIGS, clip_backbone
from csra_tf.backbones.deit import DEIT_CONFIGS, deit_backbone
from csra_tf.backbones.dinov2 import DINOV2_CONFIGS, dinov2_backbone
from csra_tf.backbones.dinov3 import DINOV3_CONFIGS, dinov3_backbone
from csra_tf.backbones.siglip2 import SIGLIP2_CONFIGS, siglip2_backbone
from csra_tf.backbones.swin import SWIN_CONFIGS, swin_backbone

__all__ = [
    "CLIP_CONFIGS",
    "DEIT_CONFIGS",
    "DINOV2_CONFIGS",
    "DINOV3_CONFIGS",
    "SIGLIP2_CONFIGS",
    "SWIN_CONFIGS",
    "clip_backbone",
    "deit_backbone",
    "dinov2_backbone",
    "dinov3_backbone",
    "siglip2_backbone",
    "swin_backbone",
]
