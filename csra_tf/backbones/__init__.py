"""Feature-map backbones created by name."""

# Importing these modules registers their backbones.
from csra_tf.backbones import keras_cv_backbones, vit  # noqa: F401
from csra_tf.backbones.registry import available, create, register
from csra_tf.backbones.tiny import tiny_backbone
from csra_tf.backbones.vit import (
    VIT_CONFIGS,
    TokensToFeatureMap,
    interpolate_position_embeddings,
    vit_backbone,
)

__all__ = [
    "VIT_CONFIGS",
    "TokensToFeatureMap",
    "available",
    "create",
    "interpolate_position_embeddings",
    "register",
    "tiny_backbone",
    "vit_backbone",
]
