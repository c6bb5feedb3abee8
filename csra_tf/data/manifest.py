"""Manifest files: the format users bring their own multi-label data in.

A manifest lists one image per record, with its labels given as class names,
as class indices, or as a target vector (`1` present, `0` absent, `-1`
unknown). Two formats:

JSON lines (`.jsonl`), one object per line; keys other than those below (for
example `"boxes"`) are allowed and ignored by `manifest`::

    {"image": "images/0001.jpg", "labels": ["cat", "dog"]}
    {"image": "images/0002.jpg", "labels": [0, 3]}
    {"image": "/abs/path/0003.png", "target": [1, 0, -1]}

CSV (`.csv`) with a header naming an `image` column and a `labels` (or `target`)
column; several labels (or target values) in one field are joined by the
manifest's label separator::

    image,labels
    images/0001.jpg,cat dog

Every record is checked before a dataset is returned, its image included (see
`csra_tf.data.image_files`); bad records raise one `ValueError` naming the file
and each bad line, or are skipped and counted (`on_bad_record="skip"`).
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from csra_tf.config.class_names import check_class_names
from csra_tf.data.image_files import (
    bad_image_records,
    check_image_files,
    decode_image_file,
)
from csra_tf.data.manifest_format import (
    CSV_SUFFIXES,
    RawRecord,
    read_records,
    write_csv,
)
from csra_tf.data.records import BadRecord, check_on_bad_record, resolve_bad_records
from csra_tf.data.source import Source
from csra_tf.errors import UserError


def manifest(
    path: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    label_separator: str = " ",
    on_bad_record: str = "error",
    progress: bool = True,
) -> Source:
    """Loads a JSON-lines or CSV manifest as a `Source`.

    The format follows the file suffix (`.jsonl`, `.json`, `.ndjson` or `.csv`);
    other suffixes are sniffed from the first character. Every record is
    checked first: its fields, its labels against the class list, and its image
    file, which must exist, be non-empty and decode (each file is decoded once,
    in parallel, with a progress bar). Images are then decoded in the `tf.data`
    graph (JPEG, PNG, BMP or GIF; grayscale and RGBA become RGB, only the first
    frame of an animation is kept), in manifest order.

    Bad records (see `BAD_RECORD_REASONS`): malformed or unlabelled records, a
    missing, empty or undecodable image, an unknown label name, a label index
    outside the class list, a target vector of the wrong length or with values
    outside {-1, 0, 1}, and a second record for an image already listed.

    Args:
        path: The manifest file.
        image_root: The folder relative image paths resolve against. Defaults to
            the manifest's folder. Absolute image paths are used as they are.
        class_names: The class list, in target order. Defaults to the sorted set
            of label names in the manifest; a manifest of class indices gets
            `class_0` ... up to the largest index, and one of target vectors
            gets `class_0`, `class_1`, ... from its (most common) vector length.
        label_separator: What joins several labels (or target values) in one
            CSV field. Use for example `";"` when class names contain spaces.
        on_bad_record: `"error"` raises if any record is bad; `"skip"` drops bad
            records and counts them in `Source.bad_records`.
        progress: Whether to show a progress bar while checking images.

    Returns:
        A `Source` of `(image uint8 (H, W, 3), target float32 (C,))` pairs.

    Raises:
        ValueError: If an argument is invalid, the manifest has no records, no
            record is usable, or (with `on_bad_record="error"`) any record is
            bad; the message names the file, the number of bad records and the
            line and reason of the first ten.

    Example:

    >>> import json, os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("a.png", "b.png"):
    ...     Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
    ...         os.path.join(folder, name)
    ...     )
    >>> records = [
    ...     {"image": "a.png", "labels": ["cat"]},
    ...     {"image": "b.png", "labels": ["cat", "dog"]},
    ...     {"image": "gone.png", "labels": ["dog"]},
    ... ]
    >>> path = os.path.join(folder, "train.jsonl")
    >>> with open(path, "w") as file:
    ...     for record in records:
    ...         print(json.dumps(record), file=file)
    >>> source = manifest(path, on_bad_record="skip", progress=False)
    >>> source.class_names, source.num_examples, source.bad_records
    (['cat', 'dog'], 2, {'missing_file': 1})
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"Manifest file not found. Received: path={path!r}")
    if not isinstance(label_separator, str) or not label_separator:
        raise UserError(
            "`label_separator` must be a non-empty string. "
            f"Received: label_separator={label_separator!r}"
        )
    check_on_bad_record(on_bad_record)
    if class_names is not None:
        class_names = check_class_names(class_names)
    if image_root is None:
        image_root = os.path.dirname(os.path.abspath(path))

    items = read_records(path, os.fspath(image_root), label_separator)
    if not items:
        raise UserError(f"Manifest '{path}' has no records.")
    raw_records = [item for item in items if isinstance(item, RawRecord)]
    bad_records = [item for item in items if isinstance(item, BadRecord)]
    if class_names is None:
        # With no parseable record there is nothing to infer; the bad records
        # are reported below.
        class_names = _infer_class_names(path, raw_records) if raw_records else []
    class_index = {name: i for i, name in enumerate(class_names)}

    candidates, targets = [], []
    first_line: dict[str, int] = {}
    for record in raw_records:
        if record.image in first_line:
            detail = f"the same image as line {first_line[record.image]}"
            bad_records.append(BadRecord(record.line, "duplicate", detail))
            continue
        first_line[record.image] = record.line
        result = _record_target(record, class_index)
        if isinstance(result, BadRecord):
            bad_records.append(result)
        else:
            candidates.append(record)
            targets.append(result)

    _, problems = check_image_files(
        [record.image for record in candidates],
        progress=progress,
        description=f"Checking {os.path.basename(path)}",
    )
    bad_records += bad_image_records(problems, [record.line for record in candidates])
    good = [i for i in range(len(candidates)) if i not in problems]
    counts = resolve_bad_records(path, bad_records, len(good), on_bad_record)

    image_paths = [candidates[i].image for i in good]
    target_array = np.asarray([targets[i] for i in good], np.float32)
    records = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(image_paths, tf.string),
            tf.constant(target_array.reshape(len(good), len(class_names))),
        )
    )
    return Source.from_records(
        records,
        _decode,
        class_names=class_names,
        num_examples=len(good),
        bad_records=counts,
        encoded_fn=_read,
    )


def write_manifest(
    path: str | os.PathLike,
    records: Iterable[Mapping[str, Any]],
    label_separator: str = " ",
) -> None:
    """Writes records as a JSON-lines manifest, or as CSV for a `.csv` path.

    The file is written to a temporary name and then moved into place, so a
    reader never sees a half-written manifest.

    Args:
        path: The manifest file to write.
        records: Mappings with an `"image"` key and a `"labels"` (list of names)
            or `"target"` (list of numbers) key. JSON lines keep every other key
            (such as `"boxes"`); CSV keeps only the image and labels or target.
        label_separator: What joins labels or target values in a CSV field.

    Raises:
        ValueError: If a record lacks `"image"` or a labels/target key, or a CSV
            record mixes the two kinds or has a label containing the separator.
    """
    path = os.fspath(path)
    records = list(records)
    for index, record in enumerate(records):
        if "image" not in record or not ("labels" in record or "target" in record):
            raise UserError(
                "Each record needs an 'image' key and a 'labels' or 'target' key. "
                f"Received: records[{index}]={dict(record)!r}"
            )
    tmp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp_path, "w", encoding="utf-8", newline="") as f:
            if path.lower().endswith(CSV_SUFFIXES):
                write_csv(f, records, label_separator)
            else:
                for record in records:
                    f.write(json.dumps(dict(record)) + "\n")
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def load_boxes(path: str | os.PathLike) -> list[list[dict[str, Any]]]:
    """Reads the `"boxes"` of every record of a JSON-lines manifest.

    Args:
        path: A JSON-lines manifest, or a folder holding `manifest.jsonl` (such
            as a split folder written by `generate_shapes`).

    Returns:
        One list per record, in manifest order, of `{"label": name, "box":
        [x0, y0, x1, y1]}` dicts with coordinates normalised to [0, 1]; an
        empty list for a record without boxes. The lists line up with the
        examples of `manifest` when it skipped no record.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.jsonl")
    boxes = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                boxes.append(list(json.loads(line).get("boxes", [])))
    return boxes


def _infer_class_names(path: str, records: list[RawRecord]) -> list[str]:
    """Infers the class list from labels, or from target-vector lengths."""
    named = [r for r in records if r.labels and isinstance(r.labels[0], str)]
    indexed = [r for r in records if r.labels and not isinstance(r.labels[0], str)]
    vectors = [r for r in records if r.target is not None]
    kinds = [
        (kind, group[0].line)
        for kind, group in (
            ("label names", named),
            ("class indices", indexed),
            ("target vectors", vectors),
        )
        if group
    ]
    if len(kinds) > 1:
        (kind_a, line_a), (kind_b, line_b) = kinds[:2]
        raise UserError(
            f"Manifest '{path}' mixes {kind_a} (line {line_a}) and {kind_b} "
            f"(line {line_b}); pass `class_names` to load it."
        )
    if named:
        return sorted({label for record in named for label in record.labels})
    if indexed:
        largest = max(max(record.labels) for record in indexed)
        return [f"class_{i}" for i in range(max(largest, 0) + 1)]
    if not vectors:
        raise UserError(
            f"Manifest '{path}' has no labels to infer classes from; pass "
            "`class_names`."
        )
    # The most common length (the first one on ties) is taken as right, so that
    # the records of another length are the ones reported.
    lengths = collections.Counter(len(record.target) for record in vectors)
    num_classes = lengths.most_common(1)[0][0]
    if num_classes == 0:
        raise UserError(
            f"Manifest '{path}' has empty target vectors; pass `class_names`."
        )
    return [f"class_{i}" for i in range(num_classes)]


def _record_target(
    record: RawRecord, class_index: dict[str, int]
) -> np.ndarray | BadRecord:
    """The target vector of one record, or why it has none."""
    line, num_classes = record.line, len(class_index)
    if record.labels is not None:
        target = np.zeros(num_classes, np.float32)
        for label in record.labels:
            if isinstance(label, str):
                if label not in class_index:
                    unknown = sorted({x for x in record.labels if x not in class_index})
                    return BadRecord(
                        line,
                        "unknown_label",
                        f"unknown label(s) {unknown} "
                        f"(classes: {_short_list(list(class_index))})",
                    )
                target[class_index[label]] = 1.0
            elif 0 <= label < num_classes:
                target[label] = 1.0
            else:
                return BadRecord(
                    line,
                    "label_out_of_range",
                    f"label index {label} is outside [0, {num_classes})",
                )
        return target
    if len(record.target) != num_classes:
        return BadRecord(
            line,
            "wrong_length",
            f"target has {len(record.target)} values, expected {num_classes}",
        )
    values = []
    for value in record.target:
        number = _as_number(value)
        if number not in (-1.0, 0.0, 1.0):
            return BadRecord(
                line, "bad_value", f"target value {value!r} is not one of -1, 0, 1"
            )
        values.append(number)
    return np.asarray(values, np.float32)


def _as_number(value: Any) -> float | None:
    """Returns `value` as a float, or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _short_list(names: list[str], limit: int = 10) -> str:
    """Formats the first few class names for an error message."""
    text = ", ".join(names[:limit])
    return text + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _read(path: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads one image file's bytes (decoded later, maybe only a crop of it)."""
    return tf.io.read_file(path), target


def _decode(path: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads and decodes one image to uint8 RGB."""
    return decode_image_file(path), target
