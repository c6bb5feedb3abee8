"""WIDER-Attribute: one example per annotated person, cropped by its box.

Reads the official annotation files (`wider_attribute_trainval.json`,
`wider_attribute_test.json`)::

    {"attribute_id_map": {"0": "Male", ...}, "scene_id_map": {...},
     "images": [{"file_name": "train/0--Parade/x.jpg", "scene_id": 0,
                 "targets": [{"attribute": [1, -1, 0, ...], "bbox": [x, y, w, h]},
                             ...]},
                ...]}

Attribute values map to the label encoding of the design: `1` (positive) to
`1`, `-1` (negative) to `0` and `0` (unspecified) to `-1` (unknown).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from csra_tf.data.image_files import check_image_files, decode_image_bytes
from csra_tf.data.records import BadRecord, check_on_bad_record, resolve_bad_records
from csra_tf.data.source import Source
from csra_tf.errors import UserError

WIDER_SPLITS = ("train", "val", "test")
# Official attribute value -> target value.
_ATTRIBUTE_TO_TARGET = {1: 1.0, -1: 0.0, 0: -1.0}


def wider(
    annotation_json: str | os.PathLike,
    image_root: str | os.PathLike,
    split: str | None = None,
    on_bad_record: str = "error",
    progress: bool = True,
) -> Source:
    """Loads WIDER-Attribute person crops as a `Source`.

    Each person box `[x, y, w, h]` (pixels) is clipped to its image and cropped
    out; a box that is empty once clipped is a bad record, as are malformed
    entries, attribute vectors of the wrong length or with values outside
    {-1, 0, 1}, and missing, empty or undecodable images (every image is
    decoded once up front, as `manifest` does). Crops of JPEG images are
    decoded with `tf.image.decode_and_crop_jpeg`, which only decodes the
    region (the same pixels as decoding the whole image and cropping, except
    for chroma upsampling along the crop's far edges of 4:2:0 JPEGs, a few
    levels at most).

    Args:
        annotation_json: An official WIDER-Attribute annotation file.
        image_root: The folder the images' `file_name`s are relative to (the
            dataset's `Image` folder).
        split: `"train"`, `"val"` or `"test"` keeps the images whose
            `file_name` starts with that folder (the official trainval file
            holds both `train/` and `val/` images); None keeps them all.
        on_bad_record: `"error"` raises if any record is bad; `"skip"` drops bad
            records and counts them in `Source.bad_records`.
        progress: Whether to show a progress bar while checking images.

    Returns:
        A `Source` of `(person crop uint8 (h, w, 3), target float32 (14,))`
        pairs, image by image and person by person in file order, with class
        names from `attribute_id_map` in id order.

    Raises:
        ValueError: If an argument or the file's structure is invalid, the split
            has no person, or (with `on_bad_record="error"`) any record is bad;
            the message lists the first ten bad records.

    Example:

    >>> path = "Anno/wider_attribute_trainval.json"
    >>> train = wider(path, "Image", split="train")  # doctest: +SKIP
    >>> train.class_names[:2]  # doctest: +SKIP
    ['Male', 'longHair']

    (Not run as a doctest: it needs the WIDER-Attribute download, several GB.)
    """
    path = os.fspath(annotation_json)
    if not os.path.isfile(path):
        raise UserError(
            f"WIDER annotation file not found. Received: annotation_json={path!r}"
        )
    if split is not None and split not in WIDER_SPLITS:
        raise UserError(
            f"`split` must be None or one of {WIDER_SPLITS}. Received: split={split!r}"
        )
    check_on_bad_record(on_bad_record)
    with open(path, encoding="utf-8") as f:
        annotations = json.load(f)
    class_names = _class_names(path, annotations)
    images = [
        (index, entry)
        for index, entry in enumerate(annotations["images"])
        if split is None
        or not isinstance(entry, dict)
        or str(entry.get("file_name", "")).startswith(f"{split}/")
    ]

    people, bad_records = _parse_people(images, len(class_names), os.fspath(image_root))
    if not people and not bad_records:
        raise UserError(
            f"WIDER file '{path}' has no person"
            + (f" in split {split!r}." if split else ".")
        )
    image_paths = sorted({person["path"] for person in people})
    sizes, problems = check_image_files(
        image_paths, progress=progress, description=f"Checking {split or 'WIDER'}"
    )
    size_of = dict(zip(image_paths, sizes, strict=True))
    problem_of = {image_paths[i]: problem for i, problem in problems.items()}

    windows, targets, files = [], [], []
    for person in people:
        problem = problem_of.get(person["path"])
        window = (
            None if problem else _crop_window(person["bbox"], size_of[person["path"]])
        )
        if problem or window is None:
            reason, detail = problem or (
                "bad_box",
                f"box {person['bbox']} is empty inside the image "
                f"(height, width {size_of[person['path']]})",
            )
            bad_records.append(
                BadRecord(person["number"], reason, detail, person["location"])
            )
            continue
        windows.append(window)
        targets.append(person["target"])
        files.append(person["path"])
    counts = resolve_bad_records(
        path, bad_records, len(files), on_bad_record, kind="WIDER file"
    )
    records = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(files, tf.string),
            tf.constant(np.asarray(windows, np.int32).reshape(-1, 4)),
            tf.constant(np.asarray(targets, np.float32).reshape(-1, len(class_names))),
        )
    )
    return Source.from_records(
        records,
        _decode_crop,
        class_names=class_names,
        num_examples=len(files),
        bad_records=counts,
    )


def _class_names(path: str, annotations: Any) -> list[str]:
    """The attribute names in id order; checks the file's top-level structure."""
    if (
        not isinstance(annotations, dict)
        or not isinstance(annotations.get("images"), list)
        or not isinstance(annotations.get("attribute_id_map"), dict)
        or not annotations["attribute_id_map"]
    ):
        raise UserError(
            f"WIDER file '{path}' must be an object with an 'images' list and a "
            "non-empty 'attribute_id_map'. Received: keys="
            f"{sorted(annotations) if isinstance(annotations, dict) else annotations!r}"
        )
    id_map = annotations["attribute_id_map"]
    try:
        ids = sorted(int(key) for key in id_map)
    except ValueError:
        ids = None
    if ids != list(range(len(id_map))):
        raise UserError(
            f"WIDER file '{path}': 'attribute_id_map' keys must be 0 ... N-1. "
            f"Received: keys={sorted(id_map)}"
        )
    return [str(id_map[str(i)]) for i in ids]


def _parse_people(
    images: Sequence[tuple[int, Any]], num_classes: int, image_root: str
) -> tuple[list[dict[str, Any]], list[BadRecord]]:
    """One dict per well-formed person (path, bbox, target, position), and the
    bad records of the malformed ones."""
    people, bad_records = [], []
    number = 0
    for image_index, entry in images:
        where = f"images[{image_index}]"
        targets = entry.get("targets") if isinstance(entry, dict) else None
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        if (
            not isinstance(file_name, str)
            or not file_name
            or not isinstance(targets, list)
        ):
            number += 1
            detail = "an image needs a 'file_name' string and a 'targets' list"
            bad_records.append(BadRecord(number, "malformed", detail, where))
            continue
        where = f"{where} ({file_name})"
        image_path = os.path.normpath(os.path.join(image_root, file_name))
        for target_index, person in enumerate(targets):
            number += 1
            location = f"{where} targets[{target_index}]"
            parsed = _parse_person(person, num_classes)
            if isinstance(parsed, tuple):
                reason, detail = parsed
                bad_records.append(BadRecord(number, reason, detail, location))
                continue
            parsed.update(path=image_path, number=number, location=location)
            people.append(parsed)
    return people, bad_records


def _parse_person(person: Any, num_classes: int) -> dict[str, Any] | tuple[str, str]:
    """The bbox and target of one person, or a `(reason, detail)` pair."""
    if not isinstance(person, dict):
        return "malformed", "a target must be an object"
    attributes, bbox = person.get("attribute"), person.get("bbox")
    if not isinstance(attributes, list):
        return "malformed", "'attribute' must be a list"
    if not (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(_is_finite_number(value) for value in bbox)
    ):
        return "bad_box", f"'bbox' must be 4 numbers [x, y, w, h], got {bbox!r}"
    if len(attributes) != num_classes:
        detail = f"'attribute' has {len(attributes)} values, expected {num_classes}"
        return "wrong_length", detail
    if not all(
        not isinstance(value, bool) and value in _ATTRIBUTE_TO_TARGET
        for value in attributes
    ):
        return "bad_value", f"attribute values must be -1, 0 or 1, got {attributes}"
    target = [_ATTRIBUTE_TO_TARGET[int(value)] for value in attributes]
    return {"bbox": [float(value) for value in bbox], "target": target}


def _is_finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _crop_window(
    bbox: list[float], size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The `[y, x, height, width]` pixel window of a box clipped to an image of
    `size = (height, width)`, or None when nothing is left."""
    x, y, w, h = bbox
    height, width = size
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(width, math.ceil(x + w)), min(height, math.ceil(y + h))
    if x1 <= x0 or y1 <= y0:
        return None
    return y0, x0, y1 - y0, x1 - x0


def _decode_crop(
    path: tf.Tensor, window: tf.Tensor, target: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads one person crop; JPEGs only decode the window."""
    contents = tf.io.read_file(path)

    def jpeg():
        return tf.image.decode_and_crop_jpeg(contents, window, channels=3)

    def other():
        image = decode_image_bytes(contents)
        return tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3])

    crop = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    return tf.ensure_shape(crop, [None, None, 3]), target
