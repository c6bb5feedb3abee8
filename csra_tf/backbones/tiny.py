"""A tiny convolutional backbone for tests and the embedded quick start."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from csra_tf.errors import UserError


def tiny_backbone(
    image_size: int | None = 64,
    stage_widths: Sequence[int] = (32, 64, 128, 128),
    blocks_per_stage: int = 2,
    name: str = "tiny_backbone",
) -> keras.Model:
    """Builds a small VGG-style CNN: stages of conv-BN-ReLU blocks.

    Every stage but the last ends with 2x2 max pooling, so the last stage widens
    the receptive field (to about 100 px with the defaults) without coarsening
    the map. The model takes raw RGB pixels in [0, 255] and rescales them
    itself. With the default four stages the output stride is 8 (64 px -> an 8x8
    feature map).

    Args:
        image_size: side of the square input, or None for any size.
        stage_widths: number of channels of each stage.
        blocks_per_stage: 3x3 convolutions per stage.
        name: model name.

    Returns:
        A `keras.Model` mapping `(B, S, S, 3)` pixels to `(B, S/2^n, S/2^n, d)`
        features, `d = stage_widths[-1]`, `n = len(stage_widths) - 1`.
    """
    if not stage_widths or blocks_per_stage < 1:
        raise UserError(
            "tiny_backbone needs at least one stage and one block per stage. "
            f"Received: stage_widths={stage_widths}, "
            f"blocks_per_stage={blocks_per_stage}"
        )
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for stage, width in enumerate(stage_widths):
        for block in range(blocks_per_stage):
            prefix = f"stage{stage}_block{block}"
            x = keras.layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"{prefix}_conv"
            )(x)
            # Synchronised across replicas, so N replicas x batch b train
            # exactly like one device with batch N * b.
            x = keras.layers.BatchNormalization(synchronized=True, name=f"{prefix}_bn")(
                x
            )
            x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        if stage < len(stage_widths) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    return keras.Model(inputs, x, name=name)
