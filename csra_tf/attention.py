"""Class-specific attention maps (paper Fig. 4) and the pointing game.

`attention_maps` runs a classifier's backbone and asks its CSRA (or attention
pooling) head for the first head's per-class softmax over locations.
`pointing_game` scores those maps against object boxes: for every class present
in an image, the attention peak (the argmax cell, taken at its centre) is a hit
when it lies within half a cell of a box of that class (the attention's own
resolution; tolerance 0 is also reported). `attention_report` does both for a
trained run's validation split, as `experiments/attention_maps.py` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from csra_tf.data import load_boxes, shapes_dir
from csra_tf.data.class_names import check_class_names
from csra_tf.export.images import attention_overlay
from csra_tf.metrics import sigmoid
from csra_tf.models import HEAD_LAYER_NAME
from csra_tf.training.config import TrainConfig
from csra_tf.training.saved_run import load_run

POINTING_GAME_FILE = "pointing_game.json"
ATTENTION_DIR = "attention"

Box = Mapping[str, object]
"""One object: `{"label": class name, "box": [x0, y0, x1, y1]}`, normalised."""


def _attention_head(model: keras.Model):
    try:
        head = model.get_layer(HEAD_LAYER_NAME)
    except ValueError as error:
        raise ValueError(
            f"The model has no layer named {HEAD_LAYER_NAME!r}. "
            f"Received: model={model.name}"
        ) from error
    if not callable(getattr(head, "attention", None)):
        raise ValueError(
            "Attention maps need a CSRA or attention-pooling head (a GAP head has "
            f"no class-specific attention). Received: head={type(head).__name__}"
        )
    return head


def _model_inputs(model: keras.Model, images) -> np.ndarray:
    """Stacks images, resizing (stretching) each to the model's input side."""
    height, width = model.input_shape[1:3]
    if len(images) == 0:
        raise ValueError(f"Need at least one image. Received: {len(images)} images")
    resized = []
    for image in images:
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(
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
            `"attention"`; `model.layers[1]` is its backbone.
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
    backbone = model.layers[1]
    pixels = _model_inputs(model, images)
    maps = []
    for start in range(0, len(pixels), batch_size):
        features = backbone(pixels[start : start + batch_size], training=False)
        maps.append(np.asarray(head.attention(features), np.float32))
    result = np.concatenate(maps) if maps else np.zeros((0,), np.float32)
    if result.ndim != 4:
        raise ValueError(
            "Attention maps need a backbone that returns a feature map "
            f"(B, h, w, d). Received: attention shape={result.shape}"
        )
    return result


def peak_points(maps: np.ndarray) -> np.ndarray:
    """The attention peak of every (image, class), at its cell centre.

    Args:
        maps: attention `(B, h, w, C)`.

    Returns:
        float `(B, C, 2)` points `(x, y)` normalised to [0, 1] over the image
        (the model sees the image stretched to a square).
    """
    maps = np.asarray(maps)
    batch, height, width, num_classes = maps.shape
    flat = maps.reshape(batch, height * width, num_classes).argmax(axis=1)
    rows, cols = np.divmod(flat, width)
    return np.stack([(cols + 0.5) / width, (rows + 0.5) / height], axis=-1)


def _class_index(class_names: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(check_class_names(class_names))}


def _within(points: np.ndarray, boxes: np.ndarray, tolerance) -> np.ndarray:
    """`(P,)` bool: each point `(x, y)` lies within `tolerance` of some box."""
    tol_x, tol_y = tolerance
    x, y = points[:, :1], points[:, 1:]
    return np.any(
        (boxes[:, 0] - tol_x <= x)
        & (x <= boxes[:, 2] + tol_x)
        & (boxes[:, 1] - tol_y <= y)
        & (y <= boxes[:, 3] + tol_y),
        axis=1,
    )


def _tolerance(tolerance: float | None, height: int, width: int) -> tuple:
    if tolerance is None:
        return 0.5 / width, 0.5 / height
    if not 0 <= tolerance < 1:
        raise ValueError(
            f"`tolerance` must be in [0, 1) or None. Received: tolerance={tolerance}"
        )
    return float(tolerance), float(tolerance)


def _count_hits(
    maps: np.ndarray,
    boxes_per_image: Sequence[Sequence[Box]],
    index: dict[str, int],
    tolerance: float | None = None,
) -> dict[str, np.ndarray]:
    """Per-class counts of a batch: `hits`, `strict_hits`, `chance`, `pairs`."""
    if len(maps) != len(boxes_per_image):
        raise ValueError(
            "Need one box list per image. Received: "
            f"{len(maps)} images, {len(boxes_per_image)} box lists"
        )
    _, height, width, _ = maps.shape
    tol = _tolerance(tolerance, height, width)
    points = peak_points(maps)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    centres = np.stack(
        [(cols.ravel() + 0.5) / width, (rows.ravel() + 0.5) / height], axis=-1
    )
    counts = {
        key: np.zeros(len(index), np.float64)
        for key in ("hits", "strict_hits", "chance", "pairs")
    }
    for image_points, boxes in zip(points, boxes_per_image, strict=True):
        by_class: dict[int, list] = {}
        for box in boxes:
            label = box["label"]
            if label not in index:
                raise ValueError(
                    f"A box names an unknown class. Received: label={label!r}"
                )
            by_class.setdefault(index[label], []).append(box["box"])
        for c, class_boxes in by_class.items():
            class_boxes = np.asarray(class_boxes, np.float64).reshape(-1, 4)
            peak = image_points[c][None]
            counts["pairs"][c] += 1
            counts["hits"][c] += _within(peak, class_boxes, tol)[0]
            counts["strict_hits"][c] += _within(peak, class_boxes, (0.0, 0.0))[0]
            counts["chance"][c] += _within(centres, class_boxes, tol).mean()
    return counts


def _report(counts: Mapping[str, np.ndarray], class_names: Sequence[str]) -> dict:
    total = counts["pairs"].sum()

    def share(key, c=None):
        num = counts[key].sum() if c is None else counts[key][c]
        den = total if c is None else counts["pairs"][c]
        return float(num / den) if den else (float("nan") if c is None else None)

    return {
        "score": share("hits"),
        "score_strict": share("strict_hits"),
        "chance": share("chance"),
        "hits": int(counts["hits"].sum()),
        "pairs": int(total),
        "per_class": {
            name: {
                "score": share("hits", c),
                "hits": int(counts["hits"][c]),
                "pairs": int(counts["pairs"][c]),
            }
            for c, name in enumerate(class_names)
        },
    }


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
    index = _class_index(class_names)
    if maps.shape[-1] != len(index):
        raise ValueError(
            "`class_names` must match the model's classes. Received: "
            f"{len(index)} names for {maps.shape[-1]} classes"
        )
    return _report(_count_hits(maps, boxes_per_image, index, tolerance), class_names)


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
    index = _class_index(class_names)
    maps = attention_maps(model, images)
    logits = model.predict_on_batch(_model_inputs(model, images))
    probs = sigmoid(logits)
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        if classes_per_image is None:
            chosen = [c for c in np.argsort(-probs[i]) if probs[i, c] >= 0.5]
            chosen = chosen or [int(np.argmax(probs[i]))]
        else:
            chosen = [index[name] for name in classes_per_image[i]]
        for c in chosen:
            name = class_names[c]
            overlay = attention_overlay(
                np.asarray(image, np.uint8),
                maps[i, ..., c],
                f"{name} p={probs[i, c]:.2f}",
            )
            path = os.path.join(output_dir, f"{i:04d}_{_file_safe(name)}.png")
            overlay.save(path)
            paths.append(path)
    return paths


def _file_safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _validation_boxes(config: TrainConfig) -> list[list[dict]]:
    if config.dataset == "shapes":
        return load_boxes(
            shapes_dir(
                config.resolved_data_dir(),
                "val",
                image_size=config.shapes_image_size,
                num_train=config.num_train,
                num_val=config.num_val,
                seed=config.seed,
                progress=False,
            )
        )
    if config.val_dataset:
        return load_boxes(config.val_dataset)
    raise ValueError(
        "The pointing game needs boxes: the embedded shapes data or a JSON-lines "
        f"validation manifest with `boxes`. Received: dataset={config.dataset}"
    )


def attention_report(
    workdir: str,
    num_images: int = 8,
    batch_size: int = 64,
    tolerance: float | None = None,
) -> dict:
    """Overlays and the pointing game of a trained run on its validation split.

    Reads `workdir/config.json` and `workdir/model.keras`; writes per-class
    overlays of the present classes of the first `num_images` validation images
    into `workdir/attention/`, and the pointing game over the whole split into
    `workdir/pointing_game.json`.

    Args:
        workdir: a finished training run's folder.
        num_images: validation images to draw.
        batch_size: images per forward pass.
        tolerance: see `pointing_game` (None: half a cell).

    Returns:
        The `pointing_game_report` dict, plus `num_images` and `overlays` (the
        written PNG paths).
    """
    run = load_run(workdir)
    config, model, val_source = run.config, run.model, run.val_source
    class_names = list(val_source.class_names)
    boxes = _validation_boxes(config)
    if val_source.num_examples is not None and len(boxes) != val_source.num_examples:
        raise ValueError(
            "The validation boxes do not line up with its images (were bad records "
            f"skipped?). Received: {len(boxes)} box lists, "
            f"{val_source.num_examples} images"
        )
    index = _class_index(class_names)
    counts = None
    start = 0
    for images, _ in run.val_batches(batch_size):
        maps = attention_maps(model, images.numpy(), batch_size=batch_size)
        batch = _count_hits(maps, boxes[start : start + len(maps)], index, tolerance)
        counts = batch if counts is None else {k: counts[k] + batch[k] for k in counts}
        start += len(maps)
    if counts is None:
        raise ValueError(f"The validation split is empty. Received: workdir={workdir}")
    report = _report(counts, class_names)
    report["num_images"] = start

    originals = [
        image.numpy() for image, _ in val_source.dataset.take(max(num_images, 0))
    ]
    present = [sorted({b["label"] for b in boxes[i]}) for i in range(len(originals))]
    report["overlays"] = (
        write_overlays(
            model,
            originals,
            class_names,
            os.path.join(workdir, ATTENTION_DIR),
            classes_per_image=present,
        )
        if originals
        else []
    )
    with open(os.path.join(workdir, POINTING_GAME_FILE), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in report.items() if k != "overlays"}, f, indent=2)
    return report
