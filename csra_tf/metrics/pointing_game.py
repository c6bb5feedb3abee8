"""The pointing game: do attention peaks fall on the objects of their class?

For every class present in an image, the peak of its attention map (the argmax
cell, taken at its centre) is a hit when it lies within a tolerance of a box of
that class: by default half a feature-map cell, the attention's own resolution
(Zhang et al., ECCV 2016 allow 15 px at 224 px); tolerance 0 is also reported,
and the score a uniformly random peak would get. Pure NumPy on maps and boxes;
`csra_tf.inference.pointing_game` runs a model to get the maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from csra_tf.config.class_names import check_class_names
from csra_tf.errors import UserError

Box = Mapping[str, object]
"""One object: `{"label": class name, "box": [x0, y0, x1, y1]}`, normalised."""


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


def class_index(class_names: Sequence[str]) -> dict[str, int]:
    """Class name -> output index, after checking the names.

    Args:
        class_names: the model's classes, in output order.

    Returns:
        The mapping.
    """
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
        raise UserError(
            f"`tolerance` must be in [0, 1) or None. Received: tolerance={tolerance}"
        )
    return float(tolerance), float(tolerance)


def count_hits(
    maps: np.ndarray,
    boxes_per_image: Sequence[Sequence[Box]],
    index: dict[str, int],
    tolerance: float | None = None,
) -> dict[str, np.ndarray]:
    """Per-class pointing-game counts of a batch of attention maps.

    Args:
        maps: attention `(B, h, w, C)`.
        boxes_per_image: per image, `{"label": name, "box": [x0, y0, x1, y1]}`
            dicts, coordinates normalised to [0, 1].
        index: class name -> output index (`class_index`).
        tolerance: in image sides; None for half a cell, 0 for strictly inside.

    Returns:
        `{"hits", "strict_hits", "chance", "pairs"}`: float64 `(C,)` counts.
    """
    if len(maps) != len(boxes_per_image):
        raise UserError(
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
                raise UserError(
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


def summarize_hits(
    counts: Mapping[str, np.ndarray], class_names: Sequence[str]
) -> dict:
    """The pointing-game report of accumulated `count_hits` counts.

    Args:
        counts: per-class counts (sums of `count_hits` over batches).
        class_names: the model's classes, in output order.

    Returns:
        `{"score", "score_strict", "chance", "hits", "pairs", "per_class"}`
        (see `csra_tf.inference.pointing_game_report`).
    """
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
