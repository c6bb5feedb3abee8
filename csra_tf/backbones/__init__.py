"""Feature-map backbones created by name."""

# Importing these modules registers their backbones.
import csra_tf.backbones.foundation_models  # noqa: F401
from csra_tf.backbones import keras_cv_backbones, keras_hub_backbones, vit  # noqa: F401
from csra_tf.backbones.keras_hub_backbones import (
    EFFICIENTNET_CONFIGS,
    MOBILENET_V3_CONFIGS,
    RESNET_VD_CONFIGS,
    TORCHVISION_RESNET_CONFIGS,
    keras_hub_backbone,
)
from csra_tf.backbones.registry import available, check_name, create, register
from csra_tf.backbones.tiny import tiny_backbone
from csra_tf.backbones.vit import (
    VIT_CONFIGS,
    TokensToFeatureMap,
    interpolate_position_embeddings,
    vit_backbone,
)

__all__ = [
    "EFFICIENTNET_CONFIGS",
    "MOBILENET_V3_CONFIGS",
    "RESNET_VD_CONFIGS",
    "TORCHVISION_RESNET_CONFIGS",
    "VIT_CONFIGS",
    "TokensToFeatureMap",
    "available",
    "check_name",
    "create",
    "interpolate_position_embeddings",
    "keras_hub_backbone",
    "register",
    "tiny_backbone",
    "vit_backbone",
]
