"""Manifest files: the format users bring their own multi-label data in.

A manifest lists one image per record, with its labels given either as class
names or as a target vector (`1` present, `0` absent, `-1` unknown). Two formats:

JSON lines (`.jsonl`), one object per line; keys other than those below (for
example `"boxes"`) are allowed and ignored by `manifest`::

    {"image": "images/0001.jpg", "labels": ["cat", "dog"]}
    {"image": "/abs/path/0002.png", "target": [1, 0, -1]}

CSV (`.csv`) with a header naming an `image` column and a `labels` (or `target`)
column; several labels (or target values) in one field are joined by the
manifest's label separator::

    image,labels
    images/0001.jpg,cat dog

Every record is checked before a dataset is returned; each bad record yields a
`BadRecord` (line, reason, detail), and `manifest` raises one `ValueError` that
names the file and lists them.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from csra_tf.data.source import Source

# Reasons a record can be bad, as counted by a skip mode.
BAD_RECORD_REASONS = (
    "malformed",  # not parseable, or fields of the wrong type
    "unlabelled",  # neither labels nor a target vector
    "missing_file",  # the image file does not exist
    "unreadable_image",  # the file is not a JPEG, PNG, GIF or BMP image
    "unknown_label",  # a label name outside the class list
    "wrong_length",  # a target vector of the wrong length
    "bad_value",  # a target value outside {-1, 0, 1}
)

_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
_CSV_SUFFIXES = (".csv",)
# File signatures of the formats `tf.io.decode_image` reads.
_IMAGE_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"GIF87a",  # GIF
    b"GIF89a",  # GIF
    b"BM",  # BMP
)
_SIGNATURE_LENGTH = max(len(s) for s in _IMAGE_SIGNATURES)
# How many bad records an error message lists before summarising the rest.
_MAX_LISTED_BAD_RECORDS = 10


@dataclasses.dataclass(frozen=True)
class BadRecord:
    """A manifest record that failed validation.

    Args:
        line: The 1-based line number of the record in the manifest file.
        reason: One of `BAD_RECORD_REASONS`, for counting.
        detail: A human-readable explanation.
    """

    line: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class _RawRecord:
    """A parsed record before it is checked against files and classes."""

    line: int
    image: str
    labels: tuple[str, ...] | None
    target: tuple[Any, ...] | None


@dataclasses.dataclass(frozen=True)
class _CheckedManifest:
    """The result of validating every record of a manifest."""

    image_paths: list[str]
    targets: np.ndarray
    class_names: list[str]
    bad_records: list[BadRecord]
    lines: list[int]


def manifest(
    path: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    label_separator: str = " ",
) -> Source:
    """Loads a JSON-lines or CSV manifest as a `Source`.

    The format follows the file suffix (`.jsonl`, `.json`, `.ndjson` or `.csv`);
    other suffixes are sniffed from the first character. Images are decoded in
    the `tf.data` graph (JPEG, PNG, BMP or GIF; grayscale and RGBA become RGB,
    only the first frame of an animation is kept), in manifest order.

    Args:
        path: The manifest file.
        image_root: The folder relative image paths resolve against. Defaults to
            the manifest's folder. Absolute image paths are used as they are.
        class_names: The class list, in target order. Defaults to the sorted set
            of label names in the manifest; a manifest of target vectors without
            class names gets `class_0`, `class_1`, ... from its vector length.
        label_separator: What joins several labels (or target values) in one
            CSV field. Use for example `";"` when class names contain spaces.

    Returns:
        A `Source` of `(image uint8 (H, W, 3), target float32 (C,))` pairs.

    Raises:
        ValueError: If an argument is invalid, the manifest is empty, or any
            record is bad (malformed, unlabelled, missing or unreadable image,
            unknown label, wrong target length, target value outside
            {-1, 0, 1}); the message names the file and each bad line.

    Example:

    >>> source = manifest("data/train.jsonl")  # doctest: +SKIP
    >>> source.class_names  # doctest: +SKIP
    ['cat', 'dog']
    """
    checked = _check_manifest(path, image_root, class_names, label_separator)
    if checked.bad_records:
        raise ValueError(_bad_records_message(path, checked.bad_records))
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(checked.image_paths), tf.constant(checked.targets))
    ).map(_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return Source(
        dataset=dataset,
        class_names=checked.class_names,
        num_examples=len(checked.image_paths),
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
            raise ValueError(
                "Each record needs an 'image' key and a 'labels' or 'target' key. "
                f"Received: records[{index}]={dict(record)!r}"
            )
    tmp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp_path, "w", encoding="utf-8", newline="") as f:
            if path.lower().endswith(_CSV_SUFFIXES):
                _write_csv(f, records, label_separator)
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
        empty list for a record without boxes.
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


def _check_manifest(
    path: str | os.PathLike,
    image_root: str | os.PathLike | None,
    class_names: Sequence[str] | None,
    label_separator: str,
) -> _CheckedManifest:
    """Parses and checks every record; bad ones are collected, not raised."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Manifest file not found. Received: path={path!r}")
    if not isinstance(label_separator, str) or not label_separator:
        raise ValueError(
            "`label_separator` must be a non-empty string. "
            f"Received: label_separator={label_separator!r}"
        )
    if class_names is not None:
        class_names = _check_class_names(class_names)
    if image_root is None:
        image_root = os.path.dirname(os.path.abspath(path))
    image_root = os.fspath(image_root)

    raw_records, bad_records = _read_records(path, image_root, label_separator)
    if not raw_records and not bad_records:
        raise ValueError(f"Manifest '{path}' has no records.")
    if class_names is None:
        class_names = _infer_class_names(path, raw_records)
    class_index = {name: i for i, name in enumerate(class_names)}

    image_paths, targets, lines = [], [], []
    for record in raw_records:
        result = _check_record(record, class_index)
        if isinstance(result, BadRecord):
            bad_records.append(result)
        else:
            image_paths.append(record.image)
            targets.append(result)
            lines.append(record.line)
    bad_records.sort(key=lambda bad: bad.line)
    targets = np.asarray(targets, np.float32).reshape(len(targets), len(class_names))
    return _CheckedManifest(image_paths, targets, class_names, bad_records, lines)


def _check_class_names(class_names: Sequence[str]) -> list[str]:
    """Validates a user-given class list."""
    names = list(class_names) if not isinstance(class_names, str) else None
    if (
        not names
        or not all(isinstance(name, str) and name for name in names)
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            "`class_names` must be a non-empty list of distinct non-empty strings. "
            f"Received: class_names={class_names!r}"
        )
    return names


def _read_records(
    path: str, image_root: str, label_separator: str
) -> tuple[list[_RawRecord], list[BadRecord]]:
    """Parses a manifest file into raw records and format-level bad records."""
    if _is_csv(path):
        items = _read_csv(path, label_separator)
    else:
        items = _read_jsonl(path)
    raw_records, bad_records = [], []
    for item in items:
        if isinstance(item, BadRecord):
            bad_records.append(item)
        else:
            image = os.path.normpath(os.path.join(image_root, item.image))
            raw_records.append(dataclasses.replace(item, image=image))
    return raw_records, bad_records


def _is_csv(path: str) -> bool:
    """Tells the manifest format from the suffix, else from the first character."""
    lowered = path.lower()
    if lowered.endswith(_CSV_SUFFIXES):
        return True
    if lowered.endswith(_JSONL_SUFFIXES):
        return False
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                return not line.lstrip().startswith("{")
    return False


def _read_jsonl(path: str) -> list[_RawRecord | BadRecord]:
    """Parses JSON lines; blank lines are skipped."""
    items = []
    with open(path, encoding="utf-8-sig") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                items.append(
                    BadRecord(line_number, "malformed", f"not valid JSON ({error.msg})")
                )
                continue
            items.append(_parse_json_record(line_number, record))
    return items


def _parse_json_record(line: int, record: Any) -> _RawRecord | BadRecord:
    """Checks the keys and types of one JSON record."""
    if not isinstance(record, dict):
        return BadRecord(line, "malformed", "a record must be a JSON object")
    image = record.get("image")
    if not isinstance(image, str) or not image:
        return BadRecord(line, "malformed", "'image' must be a non-empty string")
    has_labels, has_target = "labels" in record, "target" in record
    if has_labels and has_target:
        return BadRecord(line, "malformed", "both 'labels' and 'target' are given")
    if not has_labels and not has_target:
        return BadRecord(line, "unlabelled", "the record has no 'labels' or 'target'")
    if has_labels:
        labels = record["labels"]
        if not isinstance(labels, list) or not all(
            isinstance(label, str) for label in labels
        ):
            return BadRecord(line, "malformed", "'labels' must be a list of strings")
        return _RawRecord(line, image, tuple(labels), None)
    target = record["target"]
    if not isinstance(target, list):
        return BadRecord(line, "malformed", "'target' must be a list of numbers")
    return _RawRecord(line, image, None, tuple(target))


def _read_csv(path: str, label_separator: str) -> list[_RawRecord | BadRecord]:
    """Parses a CSV manifest with an `image` and a `labels` or `target` column."""
    items = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return items
        header = [name.strip() for name in header]
        label_column = "labels" if "labels" in header else "target"
        if "image" not in header or label_column not in header:
            raise ValueError(
                f"Invalid manifest '{path}': line 1: the CSV header must name an "
                f"'image' column and a 'labels' or 'target' column. "
                f"Received: header={header!r}"
            )
        image_index, label_index = header.index("image"), header.index(label_column)
        for row in reader:
            line = reader.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                items.append(
                    BadRecord(
                        line,
                        "malformed",
                        f"expected {len(header)} fields, found {len(row)}",
                    )
                )
                continue
            image = row[image_index].strip()
            if not image:
                items.append(BadRecord(line, "malformed", "the image field is empty"))
                continue
            values = [
                value.strip()
                for value in row[label_index].split(label_separator)
                if value.strip()
            ]
            if label_column == "labels":
                items.append(_RawRecord(line, image, tuple(values), None))
            else:
                items.append(_RawRecord(line, image, None, tuple(values)))
    return items


def _infer_class_names(path: str, records: list[_RawRecord]) -> list[str]:
    """Infers the class list from label names, or from target-vector lengths."""
    named = [record for record in records if record.labels is not None]
    vectors = [record for record in records if record.target is not None]
    if named and vectors:
        raise ValueError(
            f"Manifest '{path}' mixes label names (line {named[0].line}) and target "
            f"vectors (line {vectors[0].line}); pass `class_names` to load it."
        )
    if named:
        return sorted({label for record in named for label in record.labels})
    if not vectors:
        return []
    # The most common length (the first one on ties) is taken as right, so that
    # the records of another length are the ones reported.
    lengths = collections.Counter(len(record.target) for record in vectors)
    num_classes = lengths.most_common(1)[0][0]
    return [f"class_{i}" for i in range(num_classes)]


def _check_record(
    record: _RawRecord, class_index: dict[str, int]
) -> np.ndarray | BadRecord:
    """Checks one record against the file system and the class list."""
    line = record.line
    if not os.path.isfile(record.image):
        return BadRecord(line, "missing_file", f"image file not found: {record.image}")
    try:
        with open(record.image, "rb") as f:
            head = f.read(_SIGNATURE_LENGTH)
    except OSError as error:
        detail = f"cannot read {record.image}: {error}"
        return BadRecord(line, "unreadable_image", detail)
    if not head.startswith(_IMAGE_SIGNATURES):
        return BadRecord(
            line,
            "unreadable_image",
            f"not a JPEG, PNG, GIF or BMP image: {record.image}",
        )
    num_classes = len(class_index)
    if record.labels is not None:
        unknown = sorted({label for label in record.labels if label not in class_index})
        if unknown:
            return BadRecord(
                line,
                "unknown_label",
                f"unknown label(s) {unknown} (classes: {_short_list(class_index)})",
            )
        target = np.zeros(num_classes, np.float32)
        target[[class_index[label] for label in record.labels]] = 1.0
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


def _short_list(class_index: dict[str, int], limit: int = 10) -> str:
    """Formats the first few class names for an error message."""
    names = list(class_index)
    text = ", ".join(names[:limit])
    return text + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _bad_records_message(path: str | os.PathLike, bad_records: list[BadRecord]) -> str:
    """Formats the error for a manifest with bad records."""
    listed = "\n".join(f"  {bad}" for bad in bad_records[:_MAX_LISTED_BAD_RECORDS])
    more = len(bad_records) - _MAX_LISTED_BAD_RECORDS
    suffix = f"\n  ... and {more} more" if more > 0 else ""
    return (
        f"Invalid manifest '{os.fspath(path)}' "
        f"({len(bad_records)} bad record(s)):\n{listed}{suffix}"
    )


def _decode(path: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads and decodes one image to uint8 RGB."""
    image = tf.io.decode_image(
        tf.io.read_file(path), channels=3, expand_animations=False
    )
    image = tf.ensure_shape(image, [None, None, 3])
    return image, target


def _write_csv(f: Any, records: list[Mapping[str, Any]], label_separator: str) -> None:
    """Writes records as CSV with an `image` and a `labels` or `target` column."""
    column = "target" if records and "target" in records[0] else "labels"
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["image", column])
    for index, record in enumerate(records):
        if column not in record:
            raise ValueError(
                "A CSV manifest cannot mix 'labels' and 'target' records. "
                f"Received: records[{index}]={dict(record)!r}"
            )
        values = [str(value) for value in record[column]]
        if any(label_separator in value for value in values):
            raise ValueError(
                f"A CSV label contains the separator {label_separator!r}; pass "
                f"another `label_separator`. Received: records[{index}]="
                f"{dict(record)!r}"
            )
        writer.writerow([record["image"], label_separator.join(values)])
