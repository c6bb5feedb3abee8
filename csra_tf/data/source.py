"""The `Source` contract: what every data source function returns."""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Source:
    """A multi-label dataset before decoding-independent preprocessing.

    Every source function (`manifest`, `shapes`, ...) returns one. Targets follow
    the label encoding of the design: `1` present, `0` absent, `-1` unknown.

    Args:
        dataset: A `tf.data.Dataset` of `(image, target)` pairs, unbatched, in a
            stable order: `image` is uint8 of shape `(H, W, 3)` (sizes may differ
            between examples), `target` is float32 of shape `(C,)`.
        class_names: The `C` class names, in target-vector order.
        num_examples: The number of examples, or `None` when unknown.

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

    @property
    def num_classes(self) -> int:
        """The number of classes, `len(class_names)`."""
        return len(self.class_names)
