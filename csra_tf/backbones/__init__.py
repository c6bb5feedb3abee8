"""Feature-map backbones created by name."""

from csra_tf.backbones.registry import available, create, register
from csra_tf.backbones.tiny import tiny_backbone

__all__ = ["available", "create", "register", "tiny_backbone"]
