"""Reading and writing the two manifest file formats, JSON lines and CSV.

Parsing turns each line into a `RawRecord` (image path and labels or target, not
yet checked against the class list or the file system) or, when the line
cannot be understood, a `BadRecord`. See `csra_tf.data.manifest` for the format.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

from csra_tf.data.records import BadRecord
from csra_tf.errors import UserError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_SUFFIXES = (".csv",)


@dataclasses.dataclass(frozen=True)
class RawRecord:
    """A parsed record before it is checked against files and classes.

    Args:
        line: The 1-based line of the record.
        image: The image path, resolved against the image root.
        labels: Label names (str) or class indices (int), or None.
        target: The raw target values, or None.
    """

    line: int
    image: str
    labels: tuple[str | int, ...] | None
    target: tuple[Any, ...] | None


def read_records(
    path: str, image_root: str, label_separator: str
) -> list[RawRecord | BadRecord]:
    """Parses a manifest into raw records and format-level bad records.

    Args:
        path: The manifest file.
        image_root: The folder relative image paths resolve against.
        label_separator: What joins several values in one CSV field.

    Returns:
        One item per non-blank record line, in file order.

    Raises:
        ValueError: If a CSV header lacks the required columns.
    """
    items = _read_csv(path, label_separator) if is_csv(path) else _read_jsonl(path)
    return [
        dataclasses.replace(
            item, image=os.path.normpath(os.path.join(image_root, item.image))
        )
        if isinstance(item, RawRecord)
        else item
        for item in items
    ]


def is_csv(path: str) -> bool:
    """Tells the manifest format from the suffix, else from the first character.

    Args:
        path: The manifest file.

    Returns:
        Whether the manifest is CSV (rather than JSON lines).
    """
    lowered = path.lower()
    if lowered.endswith(CSV_SUFFIXES):
        return True
    if lowered.endswith(JSONL_SUFFIXES):
        return False
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                return not line.lstrip().startswith("{")
    return False


def write_csv(f: Any, records: list[Mapping[str, Any]], label_separator: str) -> None:
    """Writes records as CSV with an `image` and a `labels` or `target` column.

    Args:
        f: A text file open for writing.
        records: Mappings with `"image"` and `"labels"` or `"target"` keys.
        label_separator: What joins several values in one field.

    Raises:
        ValueError: If records mix labels and targets, or a value contains the
            separator.
    """
    column = "target" if records and "target" in records[0] else "labels"
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["image", column])
    for index, record in enumerate(records):
        if column not in record:
            raise UserError(
                "A CSV manifest cannot mix 'labels' and 'target' records. "
                f"Received: records[{index}]={dict(record)!r}"
            )
        values = [str(value) for value in record[column]]
        if any(label_separator in value for value in values):
            raise UserError(
                f"A CSV label contains the separator {label_separator!r}; pass "
                f"another `label_separator`. Received: records[{index}]="
                f"{dict(record)!r}"
            )
        writer.writerow([record["image"], label_separator.join(values)])


def _read_jsonl(path: str) -> list[RawRecord | BadRecord]:
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


def _parse_json_record(line: int, record: Any) -> RawRecord | BadRecord:
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
        if not isinstance(labels, list) or not (
            all(isinstance(label, str) for label in labels)
            or all(_is_int(label) for label in labels)
        ):
            return BadRecord(
                line,
                "malformed",
                "'labels' must be a list of class names or of class indices",
            )
        return RawRecord(line, image, tuple(labels), None)
    target = record["target"]
    if not isinstance(target, list):
        return BadRecord(line, "malformed", "'target' must be a list of numbers")
    return RawRecord(line, image, None, tuple(target))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_csv(path: str, label_separator: str) -> list[RawRecord | BadRecord]:
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
            raise UserError(
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
                detail = f"expected {len(header)} fields, found {len(row)}"
                items.append(BadRecord(line, "malformed", detail))
                continue
            image = row[image_index].strip()
            if not image:
                items.append(BadRecord(line, "malformed", "the image field is empty"))
                continue
            values = tuple(
                value.strip()
                for value in row[label_index].split(label_separator)
                if value.strip()
            )
            if label_column == "labels":
                items.append(RawRecord(line, image, values, None))
            else:
                items.append(RawRecord(line, image, None, values))
    return items
