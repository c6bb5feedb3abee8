"""Class-specific attention maps of a classifier (paper Fig. 4) and the pointing game.

`attention_maps` runs a `CSRAClassifier`'s backbone and asks its CSRA (or
attention pooling) head for the first head's per-class softmax over locations;
`pointing_game` scores those maps against object boxes
(`csra_tf.metrics.pointing_game`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from csra_tf.errors import UserError
from csra_tf.inference.overlays import write_class_overlays
from csra_tf.metrics import sigmoid
from csra_tf.metrics.pointing_game import (
    Box,
    class_index,
    count_hits,
    summarize_hits,
)
from csra_tf.models import CSRAClassifier


def attention_parts(model: keras.Model) -> tuple[keras.Model, object] | None:
    """The backbone and head of a classifier whose head has attention maps.

    Args:
        model: any classifier.

    Returns:
        `(model.backbone, model.head)` for a `CSRAClassifier` whose head has an
        `attention` method (CSRA, attention pooling), else None.
    """
    if isinstance(model, CSRAClassifier) and callable(
        getattr(model.head, "attention", None)
    ):
        return model.backbone, model.head
    return None


def _attention_head(model: keras.Model):
    head = getattr(model, "head", None)
    if head is None or not isinstance(model, CSRAClassifier):
        raise UserError(
            "Attention maps need a CSRAClassifier (build_classifier or a .keras "
            f"file csra-tf wrote). Received: model={type(model).__name__}"
        )
    if not callable(getattr(head, "attention", None)):
        raise UserError(
            "Attention maps need a CSRA or attention-pooling head (a GAP head has "
            f"no class-specific attention). Received: head={type(head).__name__}"
        )
    return head


def model_inputs(model: keras.Model, images) -> np.ndarray:
    """Stacks images, resizing (stretching) each to the model's input side.

    Args:
        model: a classifier taking `(B, S, S, 3)` pixels.
        images: RGB pixels in [0, 255]: `(B, H, W, 3)` or a sequence of arrays.

    Returns:
        float32 `(B, S, S, 3)`.
    """
    height, width = model.input_shape[1:3]
    if len(images) == 0:
        raise UserError(f"Need at least one image. Received: {len(images)} images")
    resized = []
    for image in images:
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise UserError(
                f"Images must be (H, W, 3) RGB. Received: shape={image.shape}"
            )
        if height is not None and image.shape[:2] != (height, width):
            image = tf.image.resize(image, (height, width)).numpy()
        resized.append(image)
    return np.stack(resized)


def attention_maps(model: keras.Model, images, batch_size: int = 32) -> np.ndarray:
    """Per-class spatial attention of a classifier's first head.

    Args:
        model: a classifier from `build_classifier` with `head="csra"` or
            `"attention"` (a `CSRAClassifier`: its `.backbone` and `.head` are used).
        images: RGB pixels in [0, 255]: an array `(B, H, W, 3)` or a sequence of
            `(H, W, 3)` arrays; images are resized to the model's input size.
        batch_size: images per forward pass.

    Returns:
        float32 `(B, h, w, C)`: for each image and class a softmax over the
        `h x w` feature-map cells (sums to 1 over cells).

    Example:
    >>> from csra_tf.models import build_classifier
    >>> model = build_classifier("tiny", num_classes=3, image_size=32)
    >>> attention_maps(model, np.zeros((2, 32, 32, 3))).shape
    (2, 4, 4, 3)
    """
    head = _attention_head(model)
    pixels = model_inputs(model, images)
    maps = []
    for start in range(0, len(pixels), batch_size):
        features = model.features(pixels[start : start + batch_size])
        maps.append(np.asarray(head.attention(features), np.float32))
    result = np.concatenate(maps) if maps else np.zeros((0,), np.float32)
    if result.ndim != 4:
        raise UserError(
            "Attention maps need a backbone that returns a feature map "
            f"(B, h, w, d). Received: attention shape={result.shape}"
        )
    return result


def pointing_game_report(
    model: keras.Model,
    dataset_images,
    boxes_per_image: Sequence[Sequence[Box]],
    class_names: Sequence[str],
    batch_size: int = 32,
    tolerance: float | None = None,
) -> dict:
    """The pointing game with per-class counts (see `pointing_game`).

    Args:
        model: a CSRA / attention-pooling classifier (see `attention_maps`).
        dataset_images: RGB images in [0, 255], `(B, H, W, 3)` or a sequence.
        boxes_per_image: per image, its objects as `{"label": name, "box":
            [x0, y0, x1, y1]}` with coordinates normalised to [0, 1] (the
            `boxes` of a shapes manifest, `csra_tf.data.load_boxes`).
        class_names: the model's classes, in output order.
        batch_size: images per forward pass.
        tolerance: how far (in image sides) the peak may lie outside a box;
            None for half a feature-map cell, 0 for strictly inside.

    Returns:
        `{"score", "score_strict", "chance", "hits", "pairs", "per_class":
        {name: {"score", "hits", "pairs"}}}`: `score` is hits / pairs over the
        present (image, class) pairs (NaN without any), `score_strict` the
        same with tolerance 0, `chance` the expected score of a peak at a
        uniformly random cell; per-class `score` is None for an absent class.
    """
    maps = attention_maps(model, dataset_images, batch_size=batch_size)
    index = class_index(class_names)
    if maps.shape[-1] != len(index):
        raise UserError(
            "`class_names` must match the model's classes. Received: "
            f"{len(index)} names for {maps.shape[-1]} classes"
        )
    return summarize_hits(
        count_hits(maps, boxes_per_image, index, tolerance), class_names
    )


def pointing_game(
    model: keras.Model,
    dataset_images,
    boxes_per_image: Sequence[Sequence[Box]],
    class_names: Sequence[str],
    batch_size: int = 32,
    tolerance: float | None = None,
) -> float:
    """Share of present (image, class) pairs whose attention peak hits a box.

    The peak is the argmax of the class's attention over the `h x w` grid,
    mapped to image coordinates at the cell centre; it hits when it lies
    within `tolerance` of any box of that class in the image (borders
    included). As in the pointing game of Zhang et al. (ECCV 2016), which
    allows 15 px at 224 px, the default tolerance is the resolution of the
    attention: half a cell, so the peak cell hits when it covers part of the
    box (an 8 x 8 map cannot put a cell centre inside a 5 px object).

    Args:
        model: a CSRA / attention-pooling classifier (see `attention_maps`).
        dataset_images: RGB images in [0, 255], `(B, H, W, 3)` or a sequence.
        boxes_per_image: per image, `{"label": name, "box": [x0, y0, x1, y1]}`
            dicts, coordinates normalised to [0, 1].
        class_names: the model's classes, in output order.
        batch_size: images per forward pass.
        tolerance: in image sides; None for half a cell, 0 for strictly inside.

    Returns:
        The score in [0, 1] (NaN when no class is present in any image).
    """
    return pointing_game_report(
        model, dataset_images, boxes_per_image, class_names, batch_size, tolerance
    )["score"]


def write_overlays(
    model: keras.Model,
    images: Sequence[np.ndarray],
    class_names: Sequence[str],
    output_dir: str,
    classes_per_image: Sequence[Sequence[str]] | None = None,
) -> list[str]:
    """Writes one attention-overlay PNG per (image, class).

    Args:
        model: a CSRA / attention-pooling classifier (see `attention_maps`).
        images: uint8 RGB images `(H, W, 3)` (any size).
        class_names: the model's classes, in output order.
        output_dir: folder for `NNNN_<class>.png` (created if needed).
        classes_per_image: the classes to draw for each image; None draws the
            classes predicted with probability >= 0.5 (at least the top one).

    Returns:
        The written paths.
    """
    index = class_index(class_names)
    maps = attention_maps(model, images)
    probs = sigmoid(model.predict_on_batch(model_inputs(model, images)))
    paths = []
    for i, image in enumerate(images):
        if classes_per_image is None:
            chosen = [c for c in np.argsort(-probs[i]) if probs[i, c] >= 0.5]
            chosen = chosen or [int(np.argmax(probs[i]))]
        else:
            chosen = [index[name] for name in classes_per_image[i]]
        classes = [
            (c, class_names[c], f"{class_names[c]} p={probs[i, c]:.2f}") for c in chosen
        ]
        paths += write_class_overlays(output_dir, f"{i:04d}", image, maps[i], classes)
    return paths
