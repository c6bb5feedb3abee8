"""SavedModel export: `serving_default` (logits, probabilities) and `attention`.

The signatures take float32 images `(B, S, S, 3)` with pixels in [0, 255] and a
dynamic batch; input rescaling is inside the model, so clients send plain
pixels. Models return logits; the sigmoid is applied here (design, rule 6).
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from csra_tf.acceleration import accelerate
from csra_tf.inference.attention import attention_parts
from csra_tf.inference.runners import (
    ATTENTION_KEY,
    INPUT_NAME,
    SERVING_KEY,
    model_image_size,
)


def export_saved_model(model: keras.Model, path: str | os.PathLike) -> str:
    """Writes a classifier as a SavedModel with serving signatures.

    Signatures (input `images`: float32 `(B, S, S, 3)`, pixels in [0, 255]):
    `serving_default` -> `logits`, `probabilities` (float32 `(B, C)`); for a
    CSRA model also `attention` -> the same plus `attention` (float32
    `(B, h, w, C)`, the first head's per-class attention, summing to 1 over
    locations).

    Args:
        model: a classifier `(B, S, S, 3) -> (B, C)` logits; it is exported
            on its inference speed paths, BatchNormalization folded into the
            convolutions (`csra_tf.acceleration.accelerate`).
        path: the SavedModel folder to write (replaced if it exists).

    Returns:
        The folder, as a string.

    Example:
    >>> from csra_tf.models import build_classifier
    >>> model = build_classifier("tiny", num_classes=3, image_size=32)
    >>> path = export_saved_model(model, "/tmp/csra_saved_model")  # doctest: +SKIP
    """
    model = accelerate(model, for_training=False)  # BatchNorm inside the convs
    image_size = model_image_size(model)
    spec = [tf.TensorSpec((None, image_size, image_size, 3), tf.float32, INPUT_NAME)]
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        logits = tf.cast(model(images, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.sigmoid(logits)}

    archive.add_endpoint(SERVING_KEY, serve, input_signature=spec)
    parts = attention_parts(model)
    if parts is not None:
        backbone, head = parts

        def attend(images):
            feature_map = backbone(images, training=False)
            logits = tf.cast(head(feature_map), tf.float32)
            return {
                "logits": logits,
                "probabilities": tf.sigmoid(logits),
                "attention": head.attention(feature_map),
            }

        archive.add_endpoint(ATTENTION_KEY, attend, input_signature=spec)
    path = os.fspath(path)
    if os.path.isdir(path):
        tf.io.gfile.rmtree(path)
    archive.write_out(path, verbose=False)
    return path
