"""The `Source` contract: what every data source function returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import tensorflow as tf

from csra_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class Source:
    """A multi-label dataset before decoding-independent preprocessing.

    Every source function (`manifest`, `shapes`, `voc`, ...) returns one. Targets
    follow the label encoding of the design: `1` present, `0` absent, `-1`
    unknown.

    A source built from files also keeps its undecoded `records` and the
    `decode_fn` that turns one record into an example (`dataset` is
    `records.map(decode_fn)`), so that `build_dataset` can shard and shuffle
    records before paying for decoding.

    Args:
        dataset: A `tf.data.Dataset` of `(image, target)` pairs, unbatched, in a
            stable order: `image` is uint8 of shape `(H, W, 3)` (sizes may differ
            between examples), `target` is float32 of shape `(C,)`.
        class_names: The `C` class names, in target-vector order.
        num_examples: The number of examples, or `None` when unknown.
        bad_records: How many records were skipped, by reason (see
            `BAD_RECORD_REASONS`); empty when none were.
        records: The undecoded records `dataset` is made from, or `None`.
        decode_fn: The function mapping one element of `records` to an
            `(image, target)` pair, or `None`.
        encoded_fn: Optionally, the function mapping one element of `records`
            to `(encoded image bytes, target)`: training then decodes only the
            random crop's window of a JPEG (`build_dataset`).

    Example:

    >>> import tensorflow as tf
    >>> images = tf.zeros((2, 8, 8, 3), tf.uint8)
    >>> targets = tf.constant([[1.0, 0.0], [0.0, -1.0]])
    >>> source = Source(
    ...     dataset=tf.data.Dataset.from_tensor_slices((images, targets)),
    ...     class_names=["cat", "dog"],
    ...     num_examples=2,
    ... )
    >>> source.num_classes
    2
    """

    dataset: tf.data.Dataset
    class_names: list[str]
    num_examples: int | None
    bad_records: dict[str, int] = dataclasses.field(default_factory=dict)
    records: tf.data.Dataset | None = None
    decode_fn: Callable[..., tuple[tf.Tensor, tf.Tensor]] | None = None
    encoded_fn: Callable[..., tuple[tf.Tensor, tf.Tensor]] | None = None

    def __post_init__(self):
        if (self.records is None) != (self.decode_fn is None):
            raise UserError(
                "`records` and `decode_fn` must be given together. Received: "
                f"records={self.records!r}, decode_fn={self.decode_fn!r}"
            )

    @classmethod
    def from_records(
        cls,
        records: tf.data.Dataset,
        decode_fn: Callable[..., tuple[tf.Tensor, tf.Tensor]],
        class_names: list[str],
        num_examples: int | None,
        bad_records: Mapping[str, int] | None = None,
        encoded_fn: Callable[..., tuple[tf.Tensor, tf.Tensor]] | None = None,
    ) -> Source:
        """Builds a source whose dataset decodes `records` with `decode_fn`.

        Args:
            records: Undecoded records, such as `(path, target)` pairs.
            decode_fn: Maps one record (its components as arguments) to an
                `(image uint8 (H, W, 3), target float32 (C,))` pair.
            class_names: The class names.
            num_examples: The number of records.
            bad_records: The per-reason counts of skipped records.
            encoded_fn: Maps one record to `(encoded image bytes, target)`.

        Returns:
            A `Source` whose `dataset` decodes in parallel, in record order.
        """
        dataset = records.map(
            decode_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return cls(
            dataset=dataset,
            class_names=class_names,
            num_examples=num_examples,
            bad_records=dict(bad_records or {}),
            records=records,
            decode_fn=decode_fn,
            encoded_fn=encoded_fn,
        )

    @property
    def num_classes(self) -> int:
        """The number of classes, `len(class_names)`."""
        return len(self.class_names)
