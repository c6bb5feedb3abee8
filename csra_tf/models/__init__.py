"""Classifier models."""

from csra_tf.models.classifier import HEAD_LAYER_NAME, HEADS, build_classifier

__all__ = ["HEAD_LAYER_NAME", "HEADS", "build_classifier"]
