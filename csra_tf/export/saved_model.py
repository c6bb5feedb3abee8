"""SavedModel export: `serving_default` (logits, probabilities) and `attention`.

The signatures take float32 images `(B, S, S, 3)` with pixels in [0, 255] and a
dynamic batch; input rescaling is inside the model, so clients send plain
pixels. Models return logits; the sigmoid is applied here (design, rule 6).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from csra_tf.layers import CSRA
from csra_tf.models.classifier import HEAD_LAYER_NAME

SERVING_KEY = "serving_default"
"""Signature: images -> {"logits", "probabilities"} (contract)."""

ATTENTION_KEY = "attention"
"""Signature of CSRA models: images -> {"logits", "probabilities", "attention"}."""

INPUT_NAME = "images"
"""Name of the image input of every signature."""


def model_image_size(model: keras.Model) -> int:
    """The side of the square images a classifier takes.

    Args:
        model: a classifier `(B, S, S, 3) -> (B, C)`.

    Returns:
        `S`.
    """
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ValueError(
            "Export needs a model taking square RGB images of a fixed size "
            f"(B, S, S, 3). Received: input_shape={shape}"
        )
    return int(shape[1])


def attention_model(model: keras.Model) -> tuple[keras.Model, CSRA] | None:
    """Splits a CSRA classifier into its feature extractor and CSRA head.

    Args:
        model: a classifier from `build_classifier`.

    Returns:
        `(features, head)` where `features` maps the model's images to the
        head's input, or None when the model has no CSRA layer named `"head"`.
    """
    try:
        head = model.get_layer(HEAD_LAYER_NAME)
    except ValueError:
        return None
    if not isinstance(head, CSRA):
        return None
    return keras.Model(model.input, head.input, name="features"), head


def export_saved_model(model: keras.Model, path: str | os.PathLike) -> str:
    """Writes a classifier as a SavedModel with serving signatures.

    Signatures (input `images`: float32 `(B, S, S, 3)`, pixels in [0, 255]):
    `serving_default` -> `logits`, `probabilities` (float32 `(B, C)`); for a
    CSRA model also `attention` -> the same plus `attention` (float32
    `(B, h, w, C)`, the first head's per-class attention, summing to 1 over
    locations).

    Args:
        model: a classifier `(B, S, S, 3) -> (B, C)` logits.
        path: the SavedModel folder to write (replaced if it exists).

    Returns:
        The folder, as a string.

    Example:
    >>> from csra_tf.models import build_classifier
    >>> model = build_classifier("tiny", num_classes=3, image_size=32)
    >>> path = export_saved_model(model, "/tmp/csra_saved_model")  # doctest: +SKIP
    """
    image_size = model_image_size(model)
    spec = [tf.TensorSpec((None, image_size, image_size, 3), tf.float32, INPUT_NAME)]
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        logits = tf.cast(model(images, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.sigmoid(logits)}

    archive.add_endpoint(SERVING_KEY, serve, input_signature=spec)
    split = attention_model(model)
    if split is not None:
        features, head = split
        archive.track(features)

        def attend(images):
            feature_map = features(images, training=False)
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


class SavedModelRunner:
    """Runs a SavedModel's signatures on NumPy image batches.

    Args:
        path: a SavedModel folder written by `export_saved_model`.

    Example:
    >>> runner = SavedModelRunner("runs/shapes/export/saved_model")  # doctest: +SKIP
    >>> runner(images)["probabilities"].shape  # doctest: +SKIP
    (8, 10)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        loaded = tf.saved_model.load(self.path)
        if SERVING_KEY not in loaded.signatures:
            raise ValueError(
                f"The SavedModel has no '{SERVING_KEY}' signature. "
                f"Received: path={self.path}"
            )
        self._loaded = loaded  # keeps the signatures' variables alive
        self._signatures = dict(loaded.signatures)
        spec = self._signatures[SERVING_KEY].structured_input_signature[1]
        self.image_size = int(spec[INPUT_NAME].shape[1])

    @property
    def signature_keys(self) -> list[str]:
        """The SavedModel's signature names, sorted."""
        return sorted(self._signatures)

    @property
    def has_attention(self) -> bool:
        """Whether the SavedModel has the `attention` signature."""
        return ATTENTION_KEY in self._signatures

    def __call__(
        self, images: np.ndarray, signature_key: str = SERVING_KEY
    ) -> dict[str, np.ndarray]:
        """Runs one signature.

        Args:
            images: float pixels `(B, S, S, 3)` in [0, 255].
            signature_key: `"serving_default"` or `"attention"`.

        Returns:
            The signature's outputs as NumPy arrays.
        """
        if signature_key not in self._signatures:
            raise ValueError(
                f"The SavedModel has no '{signature_key}' signature. "
                f"Received: signature_key={signature_key}"
            )
        outputs = self._signatures[signature_key](
            **{INPUT_NAME: tf.convert_to_tensor(images, tf.float32)}
        )
        return {name: value.numpy() for name, value in outputs.items()}
