"""Multi-label classifier: backbone + CSRA (or global-average-pooling) head."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from csra_tf import backbones
from csra_tf.layers import CSRA, ClassAttentionPooling

HEADS = ("csra", "gap", "attention")
HEAD_LAYER_NAME = "head"
"""Name of the classifier layer; its variables get the head learning rate."""


def build_classifier(
    backbone: str | keras.Model,
    num_classes: int,
    head: str = "csra",
    num_heads: int = 1,
    lam: float = 0.1,
    image_size: int = 448,
    weights: str | None = None,
    dropout: float = 0.0,
    temperatures: Sequence[float] | None = None,
    normalize: bool = True,
) -> keras.Model:
    """Builds a classifier from raw RGB pixels in [0, 255] to per-class logits.

    Args:
        backbone: a registered backbone name (see `csra_tf.backbones.available`)
            or a `keras.Model` that maps pixels in [0, 255] to a feature map.
        num_classes: number of classes `C`.
        head: `"csra"` for class-specific residual attention, `"gap"` for the
            baseline (global average pooling + Dense with bias), `"attention"`
            for class-specific attention pooling alone (paper Table 6 "spatial";
            `csra_tf.layers.ClassAttentionPooling`).
        num_heads: CSRA / attention heads (ignored for `"gap"`).
        lam: CSRA's `lambda` (ignored for `"gap"` and `"attention"`, whose
            logit is the attention term alone, the paper's `f = a`).
        image_size: side of the square input images.
        weights: backbone weights when `backbone` is a name: None, a preset
            name or a local preset directory.
        dropout: dropout rate on the feature map before the head.
        temperatures: CSRA / attention temperatures; defaults to the paper's
            for `num_heads`.
        normalize: L2-normalise the CSRA / attention classifier columns.

    Returns:
        A `keras.Model` `(B, image_size, image_size, 3) -> (B, C)` float32 logits.
        Its head layer is named `"head"`.

    Example:
    >>> model = build_classifier("tiny", num_classes=10, image_size=32)
    >>> model.output_shape
    (None, 10)
    """
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}. Received: head={head}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    if isinstance(backbone, str):
        backbone = backbones.create(backbone, weights=weights, image_size=image_size)
    elif weights is not None:
        raise ValueError(
            "`weights` applies only when `backbone` is a name. "
            f"Received: weights={weights}"
        )
    inputs = keras.Input((image_size, image_size, 3), name="images")
    features = backbone(inputs)
    if dropout:
        features = keras.layers.Dropout(dropout, name="feature_dropout")(features)
    if head == "csra":
        logits = CSRA(
            num_classes,
            num_heads=num_heads,
            lam=lam,
            temperatures=temperatures,
            normalize=normalize,
            name=HEAD_LAYER_NAME,
        )(features)
    elif head == "attention":
        logits = ClassAttentionPooling(
            num_classes,
            num_heads=num_heads,
            temperatures=temperatures,
            normalize=normalize,
            name=HEAD_LAYER_NAME,
        )(features)
    else:
        pool = (
            keras.layers.GlobalAveragePooling2D
            if len(features.shape) == 4
            else keras.layers.GlobalAveragePooling1D
        )
        pooled = pool(name="avg_pool")(features)
        logits = keras.layers.Dense(num_classes, dtype="float32", name=HEAD_LAYER_NAME)(
            pooled
        )
    return keras.Model(inputs, logits, name=f"{head}_classifier")
