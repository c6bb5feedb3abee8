"""Bad records: what makes a record unusable, and what to do about it.

Sources that read annotation files (`manifest`, `wider`) check every record
before returning a dataset, so that a bad one fails the run before training
starts rather than halfway through an epoch. Each bad record becomes a
`BadRecord`; `resolve_bad_records` then raises one `ValueError` listing them
(`on_bad_record="error"`) or counts them by reason (`on_bad_record="skip"`).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence

from absl import logging

from csra_tf.config.choices import ON_BAD_RECORD
from csra_tf.errors import UserError

# Reasons a record can be bad, as counted by the skip mode.
BAD_RECORD_REASONS = (
    "malformed",  # not parseable, or fields of the wrong type
    "unlabelled",  # neither labels nor a target vector
    "duplicate",  # the same image as an earlier record
    "unknown_label",  # a label name outside the class list
    "label_out_of_range",  # a label index outside [0, C)
    "wrong_length",  # a target vector of the wrong length
    "bad_value",  # a target value outside {-1, 0, 1}
    "bad_box",  # a box that is empty once clipped to its image
    "missing_file",  # the image file does not exist
    "empty_file",  # the image file has zero bytes
    "unreadable_image",  # the file does not decode (corrupt, truncated, no image)
)
# How many bad records a message lists before summarising the rest.
MAX_LISTED_BAD_RECORDS = 10


@dataclasses.dataclass(frozen=True)
class BadRecord:
    """A record that failed validation.

    Args:
        line: The 1-based line of the record in its file (manifests), or its
            1-based position among the file's records; used for ordering.
        reason: One of `BAD_RECORD_REASONS`.
        detail: A human-readable explanation.
        location: Where the record is, when "line N" does not say it (for
            example `"images[3].targets[1]"` in a WIDER annotation file).
    """

    line: int
    reason: str
    detail: str
    location: str = ""

    def __post_init__(self):
        if self.reason not in BAD_RECORD_REASONS:
            raise UserError(
                f"`reason` must be one of {BAD_RECORD_REASONS}. "
                f"Received: reason={self.reason!r}"
            )

    @property
    def where(self) -> str:
        """The record's position, as shown in messages."""
        return self.location or f"line {self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.detail}"


def check_on_bad_record(on_bad_record: object) -> str:
    """Validates an `on_bad_record` argument.

    Args:
        on_bad_record: The value to check.

    Returns:
        The value, one of `ON_BAD_RECORD`.
    """
    if on_bad_record not in ON_BAD_RECORD:
        raise UserError(
            f"`on_bad_record` must be one of {ON_BAD_RECORD}. "
            f"Received: on_bad_record={on_bad_record!r}"
        )
    return on_bad_record


def resolve_bad_records(
    path: str | os.PathLike,
    bad_records: Sequence[BadRecord],
    num_good: int,
    on_bad_record: str,
    kind: str = "manifest",
) -> dict[str, int]:
    """Raises for bad records, or counts them when they are to be skipped.

    Args:
        path: The file the records come from, named in messages.
        bad_records: The bad records, in any order.
        num_good: How many records passed validation.
        on_bad_record: `"error"` raises when there is any bad record; `"skip"`
            only raises when no good record is left.
        kind: What the file is, for messages (`"manifest"`, `"WIDER file"`).

    Returns:
        The number of bad records per reason (empty when there are none), in
        the order of `BAD_RECORD_REASONS`.

    Raises:
        ValueError: With the file, the total count and the first
            `MAX_LISTED_BAD_RECORDS` bad records (position, reason, detail).
    """
    check_on_bad_record(on_bad_record)
    if not bad_records:
        return {}
    if on_bad_record == "error" or num_good == 0:
        hint = (
            "Fix them, or pass on_bad_record='skip' to drop them."
            if num_good
            else "No usable record is left."
        )
        raise UserError(bad_records_message(path, bad_records, kind) + "\n" + hint)
    counts = collections.Counter(bad.reason for bad in bad_records)
    counts = {reason: counts[reason] for reason in BAD_RECORD_REASONS if counts[reason]}
    logging.warning(
        "Skipped %d bad record(s) of %s: %s",
        len(bad_records),
        os.fspath(path),
        ", ".join(f"{reason}={count}" for reason, count in counts.items()),
    )
    return counts


def bad_records_message(
    path: str | os.PathLike, bad_records: Sequence[BadRecord], kind: str = "manifest"
) -> str:
    """Formats a list of bad records for an error message.

    Args:
        path: The file the records come from.
        bad_records: The bad records.
        kind: What the file is (`"manifest"`, `"WIDER file"`).

    Returns:
        One line naming the file and the count, then one line per listed record.
    """
    ordered = sorted(bad_records, key=lambda bad: bad.line)
    listed = "\n".join(f"  {bad}" for bad in ordered[:MAX_LISTED_BAD_RECORDS])
    more = len(ordered) - MAX_LISTED_BAD_RECORDS
    suffix = f"\n  ... and {more} more" if more > 0 else ""
    return (
        f"Invalid {kind} '{os.fspath(path)}' "
        f"({len(ordered)} bad record(s)):\n{listed}{suffix}"
    )
